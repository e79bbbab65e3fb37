package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestListenSocketNeverMoreOpen: with the most permissive umask (0) in
// force, the socket file is 0600 the moment bind creates it, the umask is
// put back, and listen then opens it to the group only (0660).
func TestListenSocketNeverMoreOpen(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()

	p := filepath.Join(dir, "bound.sock")
	lis, err := listenPrivate(p)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("socket as bound: mode %v, want a socket with 0600", st.Mode())
	}
	if got := syscall.Umask(0); got != 0 {
		t.Errorf("umask after listenPrivate = %#o, want the caller's 0 back", got)
	}

	// A stale file of an earlier run is replaced.
	p = filepath.Join(dir, "sub", "cri.sock")
	if err := os.Mkdir(filepath.Dir(p), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	lis2, err := listen(p)
	if err != nil {
		t.Fatal(err)
	}
	defer lis2.Close()
	if st, err := os.Stat(p); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o660 {
		t.Errorf("socket after listen: %v %v, want 0660", st.Mode(), err)
	}
	if got := syscall.Umask(0); got != 0 {
		t.Errorf("umask after listen = %#o, want the caller's 0 back", got)
	}
}
