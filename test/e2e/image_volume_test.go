package e2e

// Image volumes (KEP-4639, issue "Modern pod features"): a CRI mount with
// image set shows that image's files, read-only, at the mount path.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const volumeImage = "gcr.io/k8s-staging-cri-tools/test-image-1:latest"

func TestImageVolume(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	pullImage(t, e2eBusybox)
	resp, err := env.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: volumeImage}})
	if err != nil {
		t.Fatalf("pull %s: %v", volumeImage, err)
	}
	volID := resp.GetImageRef()
	p := runPod(t, "image-volume")
	vol := func(path, sub string) *runtimeapi.Mount {
		return &runtimeapi.Mount{ContainerPath: path, Readonly: true, ImageSubPath: sub,
			Image: &runtimeapi.ImageSpec{Image: volID, UserSpecifiedImage: volumeImage}}
	}
	cfg := sh("sleep 3600")
	cfg.Mounts = []*runtimeapi.Mount{vol("/mnt/vol", ""), vol("/mnt/sub", "bin")}
	id := p.container(t, "reader", cfg, true)

	if out, code := execSync(t, id, "ls", "/mnt/vol"); code != 0 || !strings.Contains(out, "test-image-1") {
		t.Errorf("ls /mnt/vol = %q (exit %d), want the image's test-image-1 file", out, code)
	}
	if out, code := execSync(t, id, "/mnt/sub/busybox", "true"); code != 0 {
		t.Errorf("running a binary from the sub path bin/: %q (exit %d)", out, code)
	}
	if out, code := execSync(t, id, "touch", "/mnt/vol/new"); code == 0 || !strings.Contains(out, "Read-only file system") {
		t.Errorf("touch in the image volume = %q (exit %d), want Read-only file system", out, code)
	}
	var found int
	for _, m := range containerStatus(t, id).GetMounts() {
		if m.GetImage() != nil {
			found++
			if m.GetImage().GetImageRef() != volID {
				t.Errorf("status mount %s image_ref = %q, want %q", m.GetContainerPath(), m.GetImage().GetImageRef(), volID)
			}
		}
	}
	if found != 2 {
		t.Errorf("ContainerStatus shows %d image mounts, want 2", found)
	}
	if recs, _ := os.ReadDir(filepath.Join(env.root, "imagemounts")); len(recs) != 2 {
		t.Errorf("%d image mount records while the container lives, want 2", len(recs))
	}

	// The image goes; the running container keeps its files, across a
	// daemon crash, until it is removed.
	if _, err := env.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: volID}}); err != nil {
		t.Fatalf("RemoveImage of an image in use by a volume: %v", err)
	}
	restartDaemon(t, syscall.SIGKILL, 0)
	if out, code := execSync(t, id, "cat", "/mnt/vol/test-image-1"); code != 0 {
		t.Errorf("image volume after the image went and the daemon restarted: %q (exit %d)", out, code)
	}
	if _, err := env.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if m := mountsUnder(filepath.Join(env.state, "imagemounts")); len(m) != 0 {
		t.Errorf("image volume mounts left after RemoveContainer: %v", m)
	}
	if recs, _ := os.ReadDir(filepath.Join(env.root, "imagemounts")); len(recs) != 0 {
		t.Errorf("%d image mount records left after RemoveContainer", len(recs))
	}

	// Refused: a sub path that climbs out, an image that is not pulled.
	for _, tc := range []struct {
		name string
		m    *runtimeapi.Mount
		want codes.Code
	}{
		{"sub path ../..", vol("/mnt/x", "../.."), codes.InvalidArgument},
		{"absolute sub path", vol("/mnt/x", "/etc"), codes.InvalidArgument},
		{"missing sub path", vol("/mnt/x", "not-existing"), codes.InvalidArgument},
		{"image not pulled", &runtimeapi.Mount{ContainerPath: "/mnt/x", Readonly: true,
			Image: &runtimeapi.ImageSpec{Image: "gcr.io/k8s-staging-cri-tools/test-image-2:latest"}}, codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == codes.InvalidArgument {
				pullImage(t, volumeImage)
			} else {
				_, _ = env.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: tc.m.GetImage()})
			}
			cfg := sh("true")
			cfg.Metadata = &runtimeapi.ContainerMetadata{Name: "refused"}
			cfg.Image = &runtimeapi.ImageSpec{Image: e2eBusybox}
			cfg.Mounts = []*runtimeapi.Mount{tc.m}
			err := createErr(ctx, p, cfg)
			if status.Code(err) != tc.want {
				t.Errorf("CreateContainer = %v, want %v", err, tc.want)
			}
			if m := mountsUnder(filepath.Join(env.state, "imagemounts")); len(m) != 0 {
				t.Errorf("a refused create left mounts: %v", m)
			}
		})
	}
}

// TestImageVolumeAfterReboot: a reboot empties the state dir (the views
// are gone), and removing the pod still releases the image mount records.
func TestImageVolumeAfterReboot(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	pullImage(t, e2eBusybox)
	pullImage(t, volumeImage)
	p := runPod(t, "image-volume-reboot")
	cfg := sh("sleep 100000")
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt/vol", Readonly: true, Image: &runtimeapi.ImageSpec{Image: volumeImage}}}
	c := p.container(t, "survivor", cfg, true)
	records := func() int {
		recs, _ := os.ReadDir(filepath.Join(env.root, "imagemounts"))
		return len(recs)
	}
	if n := records(); n != 1 {
		t.Fatalf("%d image mount records while the container lives, want 1", n)
	}
	rebootDaemon(t)
	if _, err := env.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatal(err)
	}
	if n := records(); n != 0 {
		t.Errorf("%d image mount records left after the pod went", n)
	}
	if l := leaks(p.id, c); len(l) > 0 {
		t.Errorf("leaks: %v", l)
	}
}
