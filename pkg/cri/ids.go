package cri

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// newID returns a random 64-hex-digit id, as the kubelet expects of
// sandbox and container ids.
func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
