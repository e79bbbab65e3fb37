package image

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// endless counts what is read from it: zeros without end.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	clear(p)
	e.n += int64(len(p))
	return len(p), nil
}

func TestVerifiedReader(t *testing.T) {
	blob := []byte("0123456789")
	digest := sha256Digest(blob)
	for _, tc := range []struct {
		name    string
		body    []byte
		wantErr string // "" : the blob is good
	}{
		{"exact", blob, ""},
		{"short", blob[:7], "ended after 7 of its 10 bytes"},
		{"long", append(bytes.Clone(blob), 'x'), "longer than the 10 bytes"},
		{"tampered", []byte("0123456780"), "content has digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifiedReader(bytes.NewReader(tc.body), 10, digest)
			got, err := io.ReadAll(v)
			if tc.wantErr == "" {
				if err != nil || !bytes.Equal(got, blob) {
					t.Fatalf("ReadAll = %q, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errdefs.IsUnavailable(err) {
				t.Fatalf("err = %v, want Unavailable %q", err, tc.wantErr)
			}
			if len(got) > 10 {
				t.Errorf("passed on %d bytes of a 10-byte blob", len(got))
			}
			// The verdict sticks: reading on gives the same error.
			if _, again := v.Read(make([]byte, 4)); again == nil || again.Error() != err.Error() {
				t.Errorf("second read: %v", again)
			}
		})
	}
	// A body that never ends is read one byte past the size, no more.
	src := &endless{}
	_, err := io.ReadAll(newVerifiedReader(src, 1000, digest))
	if err == nil || !strings.Contains(err.Error(), "longer") {
		t.Fatalf("endless body: %v", err)
	}
	if src.n != 1001 {
		t.Errorf("read %d bytes of an endless body for a 1000-byte blob, want 1001", src.n)
	}
}

func TestCapReader(t *testing.T) {
	limit := errors.New("over")
	for _, tc := range []struct {
		in      string
		max     int64
		wantErr bool
	}{
		{"", 5, false},
		{"01234", 5, false},
		{"012345", 5, true},
		{"0123456789", 5, true},
	} {
		got, err := io.ReadAll(&capReader{r: strings.NewReader(tc.in), left: tc.max, err: limit})
		if (err != nil) != tc.wantErr || (err != nil && err != limit) {
			t.Errorf("%q max %d: err = %v", tc.in, tc.max, err)
		}
		if want := tc.in[:min(len(tc.in), int(tc.max))]; string(got) != want {
			t.Errorf("%q max %d: passed on %q, want %q", tc.in, tc.max, got, want)
		}
	}
	// No overflow at the largest limit a config may set.
	if got, err := io.ReadAll(&capReader{r: strings.NewReader("abc"), left: math.MaxInt64, err: limit}); err != nil || string(got) != "abc" {
		t.Errorf("max limit: %q, %v", got, err)
	}
	src := &endless{}
	if _, err := io.ReadAll(&capReader{r: src, left: 1 << 20, err: limit}); err != limit {
		t.Fatalf("endless: %v", err)
	}
	if src.n != 1<<20+1 {
		t.Errorf("read %d bytes of an endless stream capped at %d", src.n, 1<<20)
	}
}

func TestLimitErrorIsInvalidArgument(t *testing.T) {
	err := limitErrorf("layer creates more than %d inodes, the limit (max_layer_inodes)", 5)
	if !errdefs.IsInvalidArgument(err) || err.Error() != "layer creates more than 5 inodes, the limit (max_layer_inodes)" {
		t.Errorf("err = %v", err)
	}
}
