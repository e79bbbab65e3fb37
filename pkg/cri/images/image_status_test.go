package images

import (
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/image"
)

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

func TestToCRIImage(t *testing.T) {
	uid := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	for _, tc := range []struct {
		name string
		user string
		// the rest of the input is busyboxImage()
		pinned   bool
		size     int64
		wantUID  *runtimeapi.Int64Value
		wantName string
	}{
		{name: "no user", user: ""},
		{name: "numeric uid", user: "1000", wantUID: uid(1000)},
		{name: "uid:gid", user: "1000:1000", wantUID: uid(1000)},
		{name: "root uid", user: "0", wantUID: uid(0)},
		{name: "username", user: "nobody", wantName: "nobody"},
		{name: "username:group", user: "nobody:nogroup", wantName: "nobody"},
		{name: "username:gid", user: "www-data:33", wantName: "www-data"},
		{name: "pinned", user: "", pinned: true},
		{name: "negative size is clamped", user: "", size: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := busyboxImage()
			in.Config.User = tc.user
			in.Pinned = tc.pinned
			if tc.size != 0 {
				in.Size = tc.size
			}
			want := &runtimeapi.Image{
				Id:          busyboxID,
				RepoTags:    []string{busyboxTag},
				RepoDigests: []string{busyboxDig},
				Size:        uint64(max(in.Size, 0)),
				Uid:         tc.wantUID,
				Username:    tc.wantName,
				Spec:        &runtimeapi.ImageSpec{Image: busyboxID},
				Pinned:      tc.pinned,
			}
			if got := toCRIImage(in); !proto.Equal(got, want) {
				t.Errorf("toCRIImage:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestImageServiceContract checks each RPC's gRPC code against the CRI
// contract (STYLE.md §4): absent images are not errors for ImageStatus and
// RemoveImage, empty references are InvalidArgument, and the image
// service's classes come through as their codes.
func TestVerboseInfoWithoutRawConfig(t *testing.T) {
	img := nginxImage() // no RawConfig, no chain IDs
	s, err := verboseImageInfo(img)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid([]byte(s)) {
		t.Fatalf("not JSON: %s", s)
	}
}
