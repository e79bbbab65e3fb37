package cri

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// fakeImages is an in-memory imageService: images by ID, found by ID or by
// any of their names. Pull hands out what pullResult holds.
type fakeImages struct {
	mu         sync.Mutex
	images     map[string]image.Image
	pullResult image.Image
	pullErr    error
	pullBlocks bool // Pull waits for its ctx to end
	pulled     []pullCall
	fsErr      error
}

type pullCall struct {
	ref  string
	auth *image.Auth
}

func newFakeImages(imgs ...image.Image) *fakeImages {
	f := &fakeImages{images: map[string]image.Image{}}
	for _, img := range imgs {
		f.images[img.ID] = img
	}
	return f
}

func (f *fakeImages) lookup(ref string) (image.Image, bool) {
	for _, img := range f.images {
		if img.ID == ref || slices.Contains(img.RepoTags, ref) || slices.Contains(img.RepoDigests, ref) {
			return img, true
		}
	}
	return image.Image{}, false
}

func (f *fakeImages) Pull(ctx context.Context, ref string, auth *image.Auth) (image.Image, error) {
	f.mu.Lock()
	f.pulled = append(f.pulled, pullCall{ref: ref, auth: auth})
	block, img, err := f.pullBlocks, f.pullResult, f.pullErr
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return image.Image{}, fmt.Errorf("pull %s: %w", ref, ctx.Err())
	}
	if err != nil {
		return image.Image{}, err
	}
	f.mu.Lock()
	f.images[img.ID] = img
	f.mu.Unlock()
	return img, nil
}

func (f *fakeImages) Get(ctx context.Context, ref string) (image.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img, ok := f.lookup(ref); ok {
		return img, nil
	}
	return image.Image{}, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

func (f *fakeImages) List(ctx context.Context) ([]image.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []image.Image
	for _, img := range f.images {
		out = append(out, img)
	}
	slices.SortFunc(out, func(a, b image.Image) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (f *fakeImages) Remove(ctx context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.lookup(ref)
	if !ok {
		return fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	delete(f.images, img.ID)
	return nil
}

func (f *fakeImages) FsInfo(ctx context.Context) (uint64, uint64, string, error) {
	if f.fsErr != nil {
		return 0, 0, "", f.fsErr
	}
	return 4096, 7, "/var/lib/cri-runtime/images/layers", nil
}

// PrepareRootfs hands out an empty rootfs (no mounts) of a known image.
func (f *fakeImages) PrepareRootfs(ctx context.Context, containerID, imageID string) ([]image.Mount, error) {
	if _, err := f.Get(ctx, imageID); err != nil {
		return nil, err
	}
	return nil, nil
}

func (f *fakeImages) RemoveRootfs(ctx context.Context, containerID string) error { return nil }

func (f *fakeImages) ImageMount(ctx context.Context, mountID, imageRef string) ([]image.Mount, error) {
	return nil, errdefs.ErrNotImplemented
}

func (f *fakeImages) ImageMounts(ctx context.Context) ([]string, error) { return nil, nil }

func (f *fakeImages) RemoveImageMount(ctx context.Context, mountID string) error {
	return errdefs.ErrNotImplemented
}

// serveImages serves a Service over images through the real interceptors
// on an in-memory gRPC connection.
func serveImages(t *testing.T, images imageService) runtimeapi.ImageServiceClient {
	t.Helper()
	s := &Service{images: images}
	s.ready.Store(true)
	conn := testutil.ServeInMemory(t, s.Register,
		grpc.ChainUnaryInterceptor(UnaryInterceptor(s)), grpc.ChainStreamInterceptor(StreamInterceptor(s)))
	return runtimeapi.NewImageServiceClient(conn)
}

const (
	busyboxID  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	nginxID    = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	busyboxTag = "docker.io/library/busybox:1.36"
	busyboxDig = "docker.io/library/busybox@sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

func busyboxImage() image.Image {
	return image.Image{
		ID:             busyboxID,
		RepoTags:       []string{busyboxTag},
		RepoDigests:    []string{busyboxDig},
		Size:           2 << 20,
		ManifestDigest: "sha256:4444444444444444444444444444444444444444444444444444444444444444",
		Config:         image.ImageConfig{User: "1000:1000"},
		RawConfig:      json.RawMessage(`{"architecture":"amd64","os":"linux","config":{"User":"1000:1000"}}`),
		DiffIDs:        []string{"sha256:aa", "sha256:bb"},
		ChainIDs:       []string{"sha256:aa", "sha256:cc"},
	}
}

func nginxImage() image.Image {
	return image.Image{
		ID:       nginxID,
		RepoTags: []string{"docker.io/library/nginx:latest"},
		Size:     100,
		Config:   image.ImageConfig{User: "nginx"},
		Pinned:   true,
	}
}

func TestImageServiceContract(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakeImages)
		call  func(context.Context, runtimeapi.ImageServiceClient) error
		want  codes.Code
	}{
		{
			name: "PullImage with an empty image is InvalidArgument",
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				_, err := c.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{}})
				return err
			},
			want: codes.InvalidArgument,
		},
		{
			name: "PullImage without an image spec is InvalidArgument",
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				_, err := c.PullImage(ctx, &runtimeapi.PullImageRequest{})
				return err
			},
			want: codes.InvalidArgument,
		},
		{
			name:  "PullImage keeps the image service's class",
			setup: func(f *fakeImages) { f.pullErr = fmt.Errorf("pull: manifest unknown: %w", errdefs.ErrNotFound) },
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				_, err := c.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox:nope"}})
				return err
			},
			want: codes.NotFound,
		},
		{
			name:  "PullImage past its deadline is DeadlineExceeded",
			setup: func(f *fakeImages) { f.pullBlocks = true },
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				_, err := c.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
				return err
			},
			want: codes.DeadlineExceeded,
		},
		{
			name: "ImageStatus of an absent image is OK with no image",
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				resp, err := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "docker.io/library/absent:1"}, Verbose: true})
				if err == nil && (resp.GetImage() != nil || len(resp.GetInfo()) != 0) {
					return fmt.Errorf("absent image: got image %v, info %v; want neither", resp.GetImage(), resp.GetInfo())
				}
				return err
			},
			want: codes.OK,
		},
		{
			name: "ImageStatus with an empty image is InvalidArgument",
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				_, err := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{})
				return err
			},
			want: codes.InvalidArgument,
		},
		{
			name: "RemoveImage of an absent image is OK",
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				_, err := c.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: nginxID}})
				return err
			},
			want: codes.OK,
		},
		{
			name: "RemoveImage with an empty image is InvalidArgument",
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				_, err := c.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{}})
				return err
			},
			want: codes.InvalidArgument,
		},
		{
			name: "ListImages filtered on an absent image is OK and empty",
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				resp, err := c.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: nginxID}}})
				if err == nil && len(resp.GetImages()) != 0 {
					return fmt.Errorf("got %d images, want none", len(resp.GetImages()))
				}
				return err
			},
			want: codes.OK,
		},
		{
			name:  "ImageFsInfo keeps the image service's class",
			setup: func(f *fakeImages) { f.fsErr = fmt.Errorf("layers gone: %w", errdefs.ErrUnavailable) },
			call: func(ctx context.Context, c runtimeapi.ImageServiceClient) error {
				_, err := c.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
				return err
			},
			want: codes.Unavailable,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			f := newFakeImages(busyboxImage())
			if tc.setup != nil {
				tc.setup(f)
			}
			err := tc.call(ctx, serveImages(t, f))
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code %v, want %v (err: %v)", got, tc.want, err)
			}
			if tc.want == codes.OK && err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPullImageReturnsTheImageID(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFakeImages()
	f.pullResult = busyboxImage()
	c := serveImages(t, f)
	auth := &runtimeapi.AuthConfig{
		Username: "u", Password: "p", Auth: "dTpw", ServerAddress: "docker.io",
		IdentityToken: "id-token", RegistryToken: "reg-token",
	}
	resp, err := c.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busyboxTag}, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetImageRef() != busyboxID {
		t.Errorf("image_ref %q, want the image ID %q", resp.GetImageRef(), busyboxID)
	}
	st, err := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: resp.GetImageRef()}})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetImage().GetId() != resp.GetImageRef() {
		t.Errorf("ImageStatus(image_ref).Id = %q, want %q", st.GetImage().GetId(), resp.GetImageRef())
	}
	wantAuth := &image.Auth{Username: "u", Password: "p", Auth: "dTpw", ServerAddress: "docker.io", IdentityToken: "id-token", RegistryToken: "reg-token"}
	if len(f.pulled) != 1 || f.pulled[0].ref != busyboxTag || *f.pulled[0].auth != *wantAuth {
		t.Errorf("image service got %+v, want one pull of %s with %+v", f.pulled, busyboxTag, wantAuth)
	}

	// No credentials in the request: none passed on.
	if _, err := c.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busyboxTag}}); err != nil {
		t.Fatal(err)
	}
	if f.pulled[1].auth != nil {
		t.Errorf("pull without auth passed %+v, want nil", f.pulled[1].auth)
	}
}

func TestImageStatusByEveryReference(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	c := serveImages(t, newFakeImages(busyboxImage(), nginxImage()))
	byID, err := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: busyboxID}})
	if err != nil || byID.GetImage().GetId() != busyboxID {
		t.Fatalf("status by ID: %v, %v", byID.GetImage(), err)
	}
	want := byID.GetImage() // its conversion: images.TestToCRIImage
	for _, ref := range []string{busyboxTag, busyboxDig} {
		resp, err := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if !proto.Equal(resp.GetImage(), want) {
			t.Errorf("%s: got %v, want %v", ref, resp.GetImage(), want)
		}
		if resp.GetInfo() != nil {
			t.Errorf("%s: not verbose, got info %v", ref, resp.GetInfo())
		}
	}
}

func TestImageStatusVerbose(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	c := serveImages(t, newFakeImages(busyboxImage()))
	resp, err := c.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: busyboxTag}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ChainID   string   `json:"chainID"`
		ChainIDs  []string `json:"chainIDs"`
		ImageSpec struct {
			OS     string `json:"os"`
			Config struct {
				User string `json:"User"`
			} `json:"config"`
		} `json:"imageSpec"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
		t.Fatalf("info[\"info\"] = %q: %v", resp.GetInfo()["info"], err)
	}
	if info.ChainID != "sha256:cc" || !slices.Equal(info.ChainIDs, []string{"sha256:aa", "sha256:cc"}) {
		t.Errorf("chain IDs: got %q %q", info.ChainID, info.ChainIDs)
	}
	if info.ImageSpec.OS != "linux" || info.ImageSpec.Config.User != "1000:1000" {
		t.Errorf("image spec: got %+v", info.ImageSpec)
	}
}

func TestListImages(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	c := serveImages(t, newFakeImages(busyboxImage(), nginxImage()))
	for _, tc := range []struct {
		name   string
		filter *runtimeapi.ImageFilter
		want   []string
	}{
		{name: "no filter", want: []string{busyboxID, nginxID}},
		{name: "empty filter", filter: &runtimeapi.ImageFilter{}, want: []string{busyboxID, nginxID}},
		{name: "by ID", filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: nginxID}}, want: []string{nginxID}},
		{name: "by tag", filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: busyboxTag}}, want: []string{busyboxID}},
		{name: "by digest", filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: busyboxDig}}, want: []string{busyboxID}},
		{name: "absent", filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: "docker.io/library/absent:1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, img := range resp.GetImages() {
				got = append(got, img.GetId())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRemoveImageByEveryReference(t *testing.T) {
	for _, ref := range []string{busyboxID, busyboxTag, busyboxDig} {
		t.Run(ref, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			f := newFakeImages(busyboxImage(), nginxImage())
			c := serveImages(t, f)
			if _, err := c.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
				t.Fatal(err)
			}
			if _, ok := f.images[busyboxID]; ok {
				t.Error("busybox is still there")
			}
			if _, ok := f.images[nginxID]; !ok {
				t.Error("nginx is gone too")
			}
			// Again: idempotent.
			if _, err := c.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
				t.Fatalf("second remove: %v", err)
			}
		})
	}
}

func TestImageFsInfo(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	c := serveImages(t, newFakeImages())
	before := time.Now().UnixNano()
	resp, err := c.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetImageFilesystems()) != 1 {
		t.Fatalf("got %d image filesystems, want 1", len(resp.GetImageFilesystems()))
	}
	fs := resp.GetImageFilesystems()[0]
	if fs.GetFsId().GetMountpoint() != "/var/lib/cri-runtime/images/layers" || fs.GetUsedBytes().GetValue() != 4096 || fs.GetInodesUsed().GetValue() != 7 {
		t.Errorf("got %v", fs)
	}
	if fs.GetTimestamp() < before {
		t.Errorf("timestamp %d is before the call (%d)", fs.GetTimestamp(), before)
	}
	// Shared with the image fs, as containerd reports it: none of their own.
	if n := len(resp.GetContainerFilesystems()); n != 0 {
		t.Errorf("got %d container filesystems, want none", n)
	}
}

// An error without a class reaches the client as Unknown: the interceptor's
// default, which the image service's errors must never hit.
func TestUnclassifiedImageErrorIsUnknown(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFakeImages()
	f.pullErr = errors.New("boom")
	_, err := serveImages(t, f).PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
	if status.Code(err) != codes.Unknown {
		t.Fatalf("got %v, want Unknown", err)
	}
}
