package image

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// TestImageMountIsReadOnlyView mounts the view of a two-layer image (an
// overlay of lowers only) and of a one-layer image (a read-only bind):
// the image's files are there, whiteouts apply, and writes fail EROFS.
func TestImageMountIsReadOnlyView(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	cfg := mirrorConfig("http://" + f.addr)
	cfg.Registry.Mirrors[f.addr] = Mirror{Endpoints: []string{"http://" + f.addr}}
	e := newService(t, t.TempDir(), cfg)
	for _, ref := range []string{"busybox", f.addr + "/oci/single:v1"} {
		if _, err := e.svc.Pull(ctx, ref, nil); err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
	}
	for _, tc := range []struct {
		name, ref, typ, file, content, gone string
	}{
		{name: "two layers", ref: "busybox", typ: "overlay", file: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\n", gone: "etc/deleteme"},
		{name: "one layer", ref: f.addr + "/oci/single:v1", typ: "bind", file: "oci", content: "yes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "view-" + tc.typ
			mounts, err := e.svc.ImageMount(ctx, id, tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			if len(mounts) != 1 || mounts[0].Type != tc.typ {
				t.Fatalf("mounts = %+v, want one %s", mounts, tc.typ)
			}
			again, err := e.svc.ImageMount(ctx, id, tc.ref)
			if err != nil || !reflect.DeepEqual(again, mounts) {
				t.Errorf("second ImageMount = %+v, %v; want %+v", again, err, mounts)
			}
			dir := mountRootfs(t, mounts)
			if got, err := os.ReadFile(filepath.Join(dir, tc.file)); err != nil || string(got) != tc.content {
				t.Errorf("%s = %q, %v; want %q", tc.file, got, err, tc.content)
			}
			if tc.gone != "" {
				if _, err := os.Lstat(filepath.Join(dir, tc.gone)); !os.IsNotExist(err) {
					t.Errorf("whited-out %s: %v, want not exist", tc.gone, err)
				}
			}
			err = os.WriteFile(filepath.Join(dir, "new"), []byte("x"), 0o644)
			if !errors.Is(err, unix.EROFS) {
				t.Errorf("write into the view: %v, want EROFS", err)
			}
			if err := os.Remove(filepath.Join(dir, tc.file)); !errors.Is(err, unix.EROFS) {
				t.Errorf("remove from the view: %v, want EROFS", err)
			}
		})
	}
	if _, err := e.svc.ImageMount(ctx, "view-overlay", f.addr+"/oci/single:v1"); !errdefs.IsAlreadyExists(err) {
		t.Errorf("same mount ID over another image: %v, want AlreadyExists", err)
	}
	if _, err := e.svc.ImageMount(ctx, "absent", "nosuch:v1"); !errdefs.IsNotFound(err) {
		t.Errorf("absent image: %v, want NotFound", err)
	}
	if _, err := e.svc.ImageMount(ctx, "../x", "busybox"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad mount ID: %v, want InvalidArgument", err)
	}
}

// TestImageMountHoldsLayers: removing an image whose view is in use
// removes its record but keeps its layers, across a restart, until the
// last RemoveImageMount.
func TestImageMountHoldsLayers(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	root := t.TempDir()
	cfg := mirrorConfig("http://" + f.addr)
	e := newService(t, root, cfg)
	layersOnDisk := func() int { return len(listDir(t, filepath.Join(root, "image/layers"))) }

	img, err := e.svc.Pull(ctx, "busybox", nil)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := e.svc.ImageMount(ctx, "c1-0", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ImageMount(ctx, "c2-0", img.ID); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := mounts[0].Mount(dir); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Remove(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get(ctx, img.ID); !errdefs.IsNotFound(err) {
		t.Errorf("removed image still there: %v", err)
	}
	if n := layersOnDisk(); n != 2 {
		t.Errorf("%d layers on disk while image mounts use them, want 2", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin/busybox")); err != nil {
		t.Errorf("mounted view lost its files: %v", err)
	}

	// A restarted service knows its image mounts and gives the same mounts.
	e.close()
	e = newService(t, root, cfg)
	if ids, _ := e.svc.ImageMounts(ctx); !reflect.DeepEqual(ids, []string{"c1-0", "c2-0"}) {
		t.Errorf("image mounts after restart = %v", ids)
	}
	again, err := e.svc.ImageMount(ctx, "c1-0", img.ID)
	if err != nil || !reflect.DeepEqual(again, mounts) {
		t.Errorf("ImageMount after restart = %+v, %v; want %+v", again, err, mounts)
	}
	if n := layersOnDisk(); n != 2 {
		t.Errorf("%d layers on disk after restart, want 2", n)
	}

	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RemoveImageMount(ctx, "c1-0"); err != nil {
		t.Fatal(err)
	}
	if n := layersOnDisk(); n != 2 {
		t.Errorf("%d layers on disk while c2-0 holds them, want 2", n)
	}
	if err := e.svc.RemoveImageMount(ctx, "c2-0"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RemoveImageMount(ctx, "c2-0"); err != nil {
		t.Errorf("second RemoveImageMount: %v", err)
	}
	if n := layersOnDisk(); n != 0 {
		t.Errorf("%d layers left after the last image mount went", n)
	}
	if got := listDir(t, filepath.Join(root, "image/imagemounts")); len(got) != 0 {
		t.Errorf("image mount records left: %v", got)
	}
}
