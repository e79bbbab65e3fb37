package cri

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/store"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

// TestImageServiceOverRealImages drives the CRI image RPCs over the real
// image service, pulling from a real registry through a mirror: the image
// ID is the pull's image_ref, every reference resolves to the same status,
// ImageFsInfo counts the unpacked layers, and removal by one tag drops
// the image with all its names.
func TestImageServiceOverRealImages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the image service unpacks layers with their owners)")
	}
	_, ctx := ktesting.NewTestContext(t)
	addr := testutil.StartRegistry(t)

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.User = "www-data:33"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"1", "2"} {
		ref, err := name.ParseReference(addr+"/cri/test:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	wantID, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	st, err := store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := image.DefaultConfig()
	cfg.Platform = "linux/amd64"
	no := false
	cfg.Registry.Mirrors = map[string]image.Mirror{"registry.example": {Endpoints: []string{"http://" + addr}, Fallback: &no}}
	svc, err := image.New(filepath.Join(root, "images"), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	c := serveImages(t, svc)

	const tag1, tag2 = "registry.example/cri/test:1", "registry.example/cri/test:2"
	var ref string
	for _, tag := range []string{tag1, tag2} {
		resp, err := c.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: tag}})
		if err != nil {
			t.Fatalf("pull %s: %v", tag, err)
		}
		ref = resp.GetImageRef()
	}
	if ref != wantID.String() {
		t.Fatalf("image_ref %q, want the config digest %q", ref, wantID)
	}

	st1, err := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatal(err)
	}
	got := st1.GetImage()
	if got.GetUsername() != "www-data" || got.GetUid() != nil || len(got.GetRepoTags()) != 2 || len(got.GetRepoDigests()) != 1 || got.GetSize() == 0 {
		t.Fatalf("status: %v", got)
	}
	for _, r := range append(append([]string{}, got.GetRepoTags()...), got.GetRepoDigests()...) {
		s, err := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: r}})
		if err != nil || !proto.Equal(s.GetImage(), got) {
			t.Fatalf("status by %s: %v (err %v), want %v", r, s.GetImage(), err, got)
		}
	}

	fs, err := c.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if u := fs.GetImageFilesystems()[0]; u.GetUsedBytes().GetValue() == 0 || u.GetInodesUsed().GetValue() == 0 {
		t.Fatalf("ImageFsInfo after a pull: %v", u)
	}

	if _, err := c.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: tag1}}); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: tag2}}); s.GetImage().GetRepoTags()[0] != tag2 {
		t.Fatalf("after removing %s, %s: %v", tag1, tag2, s.GetImage())
	}
	if _, err := c.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{ref, tag1, tag2} {
		s, err := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: r}})
		if err != nil || s.GetImage() != nil {
			t.Fatalf("status by %s after removal: %v (err %v), want none", r, s.GetImage(), err)
		}
	}
	list, err := c.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.GetImages()) != 0 {
		t.Fatalf("list after removal: %v (err %v)", list.GetImages(), err)
	}
	fs, err = c.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if u := fs.GetImageFilesystems()[0]; u.GetUsedBytes().GetValue() != 0 {
		t.Fatalf("ImageFsInfo after removing the only image: %v", u)
	}
}
