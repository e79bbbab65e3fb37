package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// checkErr fails unless err matches want: nil wants no error, otherwise
// err must be of class want.
func checkErr(t *testing.T, err, want error) bool {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return true
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want class %v", err, want)
	}
	return false
}

// apply runs opt on a bare spec.
func apply(t *testing.T, opt SpecOpt) (*specs.Spec, error) {
	t.Helper()
	s := &specs.Spec{}
	return s, opt(s)
}

// writeFiles creates files (relative path → content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var errInvalid = errdefs.ErrInvalidArgument

func checkClass(err, class error) bool { return errors.Is(err, class) }
