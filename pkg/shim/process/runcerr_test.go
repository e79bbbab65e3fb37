package process

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestRuncError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		detail string
		class  string
	}{
		{"missing container", errors.New("exit status 1: container does not exist"), "", "NotFound"},
		{"not running", errors.New("exit status 1: cannot kill: container not running"), "", "FailedPrecondition"},
		{"bad binary from log", errors.New("exit status 1"), `exec: "/nope": stat /nope: no such file or directory`, "InvalidArgument"},
		{"deadline", context.DeadlineExceeded, "", "DeadlineExceeded"},
		{"unknown", errors.New("exit status 1: something odd"), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runcError("op", tc.err, tc.detail)
			if errdefs.ClassName(got) != tc.class {
				t.Fatalf("%v: class %q, want %q", got, errdefs.ClassName(got), tc.class)
			}
		})
	}
	if runcError("op", nil, "x") != nil {
		t.Fatal("nil error classified as an error")
	}
}

func TestLastRuncError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	os.WriteFile(path, []byte(`{"level":"warning","msg":"w"}
{"level":"error","msg":"first"}
not json
{"level":"error","msg":"second"}
{"level":"info","msg":"i"}
`), 0o600)
	if got := lastRuncError(path); got != "second" {
		t.Fatalf("got %q", got)
	}
	if got := lastRuncError(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Fatalf("missing file: %q", got)
	}
}
