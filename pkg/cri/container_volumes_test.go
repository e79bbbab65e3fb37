package cri

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
)

func TestPopulateVolume(t *testing.T) {
	rootfs := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600))
	must(os.MkdirAll(filepath.Join(rootfs, "data", "sub"), 0o750))
	must(os.WriteFile(filepath.Join(rootfs, "data", "seed.txt"), []byte("from the image"), 0o640))
	must(os.WriteFile(filepath.Join(rootfs, "data", "sub", "deep"), []byte("deep"), 0o644))
	must(os.Symlink("seed.txt", filepath.Join(rootfs, "data", "link")))
	must(os.Symlink(outside, filepath.Join(rootfs, "escape")))
	// /var/run -> /run, as in Debian images: absolute, but inside the rootfs.
	must(os.MkdirAll(filepath.Join(rootfs, "run"), 0o755))
	must(os.WriteFile(filepath.Join(rootfs, "run", "pidfile"), []byte("1"), 0o644))
	must(os.MkdirAll(filepath.Join(rootfs, "var"), 0o755))
	must(os.Symlink("/run", filepath.Join(rootfs, "var", "run")))

	vols := t.TempDir()
	s := &Service{rootDir: vols}
	for _, tc := range []struct {
		name, containerPath string
		want                map[string]string // relative file → content ("" for a dir)
	}{
		{name: "image content is copied", containerPath: "/data", want: map[string]string{"seed.txt": "from the image", "sub/deep": "deep"}},
		{name: "a path the image lacks stays empty", containerPath: "/nothing", want: map[string]string{}},
		{name: "an absolute symlink resolves inside the rootfs", containerPath: "/var/run", want: map[string]string{"pidfile": "1"}},
		{name: "a symlink to a host path reads the rootfs, not the host", containerPath: "/escape", want: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(s.volumesDir("c1"), filepath.Base(tc.containerPath))
			err := s.createVolumes("c1", 0, rootfs, []spec.Volume{{ContainerPath: tc.containerPath, HostPath: dir}})
			if err != nil {
				t.Fatal(err)
			}
			for rel, content := range tc.want {
				got, err := os.ReadFile(filepath.Join(dir, rel))
				if err != nil || string(got) != content {
					t.Fatalf("%s: %q %v, want %q", rel, got, err, content)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "secret")); err == nil {
				t.Fatal("a host file outside the rootfs was copied into the volume")
			}
			entries, _ := os.ReadDir(dir)
			if len(tc.want) == 0 && len(entries) != 0 {
				t.Fatalf("volume of a missing path has %d entries", len(entries))
			}
		})
	}
	fi, err := os.Stat(filepath.Join(s.volumesDir("c1"), "data", "seed.txt"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode not kept: %v %v", fi.Mode(), err)
	}
	if link, err := os.Readlink(filepath.Join(s.volumesDir("c1"), "data", "link")); err != nil || link != "seed.txt" {
		t.Fatalf("symlink not kept: %q %v", link, err)
	}
}
