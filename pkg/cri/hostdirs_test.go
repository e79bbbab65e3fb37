package cri

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes root-owned dirs and runs a process as uid 65534")
	}
}

// asNobody runs argv as uid/gid 65534 without supplementary groups.
func asNobody(argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// openTempDir is a temp dir others may traverse and list (0755), as
// --root and --state may be.
func openTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hostdirs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPrivateDirModes(t *testing.T) {
	requireRoot(t)
	dir := openTempDir(t)
	for _, tc := range []struct {
		name     string
		existing os.FileMode // 0: created by ensurePrivateDir
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
			if err := ensurePrivateDir(p, tc.gid); err != nil {
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
	if err := ensurePrivateDir(link, 0); !errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.ELOOP) {
		t.Errorf("ensurePrivateDir over a symlink = %v, want ENOTDIR or ELOOP", err)
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o755 {
		t.Errorf("the symlink's target became %v", st.Mode())
	}
	// The shared parent: 0711 whatever it was.
	shared := filepath.Join(dir, "shared", "parent")
	if err := os.MkdirAll(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := ensureSharedDir(shared); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(shared); st.Mode().Perm() != 0o711 {
		t.Errorf("shared parent: %v, want 0711", st.Mode())
	}
}

// TestAnonymousVolumesOutOfHostUsersReach: the image's set-uid file copied
// into an anonymous volume (set-id bits and all) cannot be run or read by a
// host user through the volume's host path, with --root at 0755.
func TestAnonymousVolumesOutOfHostUsersReach(t *testing.T) {
	requireRoot(t)
	root := openTempDir(t)
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(rootfs, "data", "planted")
	if err := os.WriteFile(planted, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(planted, 0o755|fs.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	s := &Service{rootDir: root}
	host := filepath.Join(s.volumesDir("c1"), "v1")
	if err := s.createVolumes("c1", 0, rootfs, []spec.Volume{{ContainerPath: "/data", HostPath: host}}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(host, "planted")
	st, err := os.Stat(p)
	if err != nil || st.Mode()&fs.ModeSetuid == 0 {
		t.Fatalf("the volume's copy: %v %v, want set-uid (the image's bits are kept)", st.Mode(), err)
	}
	if out, err := asNobody(p); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("a host user ran %s: %v %.80q, want EACCES", p, err, out)
	}
	if out, err := asNobody("cat", p); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("a host user read %s: %v %.80q, want Permission denied", p, err, out)
	}
}
