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

	"github.com/cri-runtime/cri-runtime/internal/testutil"

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

// TestAnonymousVolumesOutOfHostUsersReach: the image's set-uid file copied
// into an anonymous volume (set-id bits and all) cannot be run or read by a
// host user through the volume's host path, with --root at 0755.
func TestAnonymousVolumesOutOfHostUsersReach(t *testing.T) {
	requireRoot(t)
	root := testutil.OpenTempDir(t)
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
