package host

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/internal/testutil"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes root-owned dirs and runs a process as uid 65534")
	}
}

func TestPrivateDirModes(t *testing.T) {
	requireRoot(t)
	dir := testutil.OpenTempDir(t)
	for _, tc := range []struct {
		name     string
		existing os.FileMode // 0: created by EnsurePrivateDir
		gid      uint32
		want     uint32
	}{
		{name: "new, host user namespace", want: 0o700},
		{name: "new, pod user namespace", gid: 300000, want: 0o710},
		{name: "existing 0755 fixed", existing: 0o755, want: 0o700},
		{name: "existing 0777 with set-gid, pod user namespace", existing: 0o777 | fs.ModeSetgid, gid: 300000, want: 0o710},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if tc.existing != 0 {
				if err := os.Mkdir(p, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, tc.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(p, 1000, 1000); err != nil {
					t.Fatal(err)
				}
			}
			if err := EnsurePrivateDir(p, tc.gid); err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode&0o7777 != tc.want || st.Uid != 0 || st.Gid != tc.gid {
				t.Errorf("mode %#o owner %d:%d, want %#o 0:%d", st.Mode&0o7777, st.Uid, st.Gid, tc.want, tc.gid)
			}
		})
	}
	// A symlink where the dir should be is refused, its target untouched.
	target := filepath.Join(dir, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(link, 0); !errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.ELOOP) {
		t.Errorf("EnsurePrivateDir over a symlink = %v, want ENOTDIR or ELOOP", err)
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o755 {
		t.Errorf("the symlink's target became %v", st.Mode())
	}
	// The shared parent: 0711 whatever it was.
	shared := filepath.Join(dir, "shared", "parent")
	if err := os.MkdirAll(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSharedDir(shared); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(shared); st.Mode().Perm() != 0o711 {
		t.Errorf("shared parent: %v, want 0711", st.Mode())
	}
}
