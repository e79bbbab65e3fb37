package host

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
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
			dir := filepath.Join(vols, filepath.Base(tc.containerPath))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := PopulateVolume(rootfs, tc.containerPath, dir); err != nil {
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
	fi, err := os.Stat(filepath.Join(vols, "data", "seed.txt"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode not kept: %v %v", fi.Mode(), err)
	}
	if link, err := os.Readlink(filepath.Join(vols, "data", "link")); err != nil || link != "seed.txt" {
		t.Fatalf("symlink not kept: %q %v", link, err)
	}
}

// viewTree builds a small image view: a/b/, etc/, a file, and symlinks
// that stay inside, climb out, or loop.
func viewTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"a/b", "etc", "usr/lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"lib":      "usr/lib",     // relative, inside
		"a/up":     "../etc",      // relative, inside
		"abs":      "/etc",        // absolute: from the view's root
		"esc":      "../../..",    // climbs out
		"a/esc":    "../../etc",   // climbs out from a subdir
		"loop":     "loop",        // a cycle
		"dangling": "nonexistent", // target missing
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolveSubPath(t *testing.T) {
	root := viewTree(t)
	for _, tc := range []struct {
		name, sub string
		want      string // relative to root; "" with wantErr unset means root
		wantErr   bool
	}{
		{name: "empty is the root", sub: ""},
		{name: "dot is the root", sub: "."},
		{name: "nested dir", sub: "a/b", want: "a/b"},
		{name: "cleaned", sub: "a//b/./", want: "a/b"},
		{name: "dot-dot that stays inside", sub: "a/../etc", want: "etc"},
		{name: "absolute", sub: "/etc", wantErr: true},
		{name: "dot-dot", sub: "../..", wantErr: true},
		{name: "dot-dot after a dir", sub: "a/../../x", wantErr: true},
		{name: "symlink inside", sub: "lib", want: "usr/lib"},
		{name: "relative symlink inside", sub: "a/up", want: "etc"},
		{name: "absolute symlink from the view's root", sub: "abs", want: "etc"},
		{name: "symlink escaping", sub: "esc", wantErr: true},
		{name: "symlink escaping from a subdir", sub: "a/esc", wantErr: true},
		{name: "symlink loop", sub: "loop", wantErr: true},
		{name: "missing", sub: "not-existing", wantErr: true},
		{name: "dangling symlink", sub: "dangling", wantErr: true},
		{name: "through a file", sub: "file/x", wantErr: true},
		{name: "a file", sub: "file", wantErr: true},
		{name: "NUL", sub: "a\x00b", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveSubPath(root, tc.sub)
			if tc.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ResolveSubPath(%q) = %q, %v; want InvalidArgument", tc.sub, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveSubPath(%q): %v", tc.sub, err)
			}
			if want := filepath.Join(root, tc.want); got != want {
				t.Errorf("ResolveSubPath(%q) = %q, want %q", tc.sub, got, want)
			}
		})
	}
}
