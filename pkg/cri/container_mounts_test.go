package cri

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestValidateImageVolume(t *testing.T) {
	img := &runtimeapi.ImageSpec{Image: "sha256:abc"}
	for _, tc := range []struct {
		name    string
		m       *runtimeapi.Mount
		wantErr bool
	}{
		{name: "plain bind", m: &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/y"}},
		{name: "image", m: &runtimeapi.Mount{ContainerPath: "/x", Image: img, Readonly: true}},
		{name: "image, readonly false", m: &runtimeapi.Mount{ContainerPath: "/x", Image: img}, wantErr: true},
		{name: "plain bind, readonly false", m: &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/y", Readonly: false}},
		{name: "image with sub path", m: &runtimeapi.Mount{ContainerPath: "/x", Image: img, Readonly: true, ImageSubPath: "a/b"}},
		{name: "image and host path", m: &runtimeapi.Mount{ContainerPath: "/x", Image: img, Readonly: true, HostPath: "/y"}, wantErr: true},
		{name: "absolute sub path", m: &runtimeapi.Mount{ContainerPath: "/x", Image: img, Readonly: true, ImageSubPath: "/abs"}, wantErr: true},
		{name: "escaping sub path", m: &runtimeapi.Mount{ContainerPath: "/x", Image: img, Readonly: true, ImageSubPath: "../.."}, wantErr: true},
		{name: "sub path without image", m: &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/y", ImageSubPath: "a"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateImageVolume(0, tc.m)
			if tc.wantErr != (err != nil) || (err != nil && !errdefs.IsInvalidArgument(err)) {
				t.Errorf("validateImageVolume = %v, want error %v (InvalidArgument)", err, tc.wantErr)
			}
		})
	}
}

func TestStatusMountsCarryImageRef(t *testing.T) {
	cfg := &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{
		{ContainerPath: "/host", HostPath: "/srv"},
		{ContainerPath: "/img", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "busybox", UserSpecifiedImage: "busybox"}, ImageSubPath: "etc"},
	}}
	orig := proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	m := containerMeta{config: cfg, ImageVolumes: []imageVolume{{Index: 1, ImageID: "sha256:abc"}, {Index: 7, ImageID: "sha256:bad"}}}
	got := statusMounts(m)
	if len(got) != 2 {
		t.Fatalf("mounts = %v", got)
	}
	if got[0] != cfg.Mounts[0] {
		t.Errorf("a plain mount was copied or changed: %v", got[0])
	}
	if ref := got[1].GetImage().GetImageRef(); ref != "sha256:abc" {
		t.Errorf("image_ref = %q, want sha256:abc", ref)
	}
	if got[1].GetImage().GetImage() != "busybox" || got[1].GetImageSubPath() != "etc" || got[1].GetContainerPath() != "/img" {
		t.Errorf("image mount lost its fields: %v", got[1])
	}
	if !proto.Equal(cfg, orig) {
		t.Errorf("statusMounts changed the recorded config")
	}
	if got := statusMounts(containerMeta{config: cfg}); got[1].GetImage().GetImageRef() != "" {
		t.Errorf("no image volumes recorded, yet image_ref = %q", got[1].GetImage().GetImageRef())
	}
}

// TestValidateContainerConfigRefusesWritableImageVolume: the check runs
// with the rest of the config's, before anything is reserved or mounted.
func TestValidateContainerConfigRefusesWritableImageVolume(t *testing.T) {
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
		Image:    &runtimeapi.ImageSpec{Image: "busybox"},
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/data", HostPath: "/tmp"},
			{ContainerPath: "/vol", Image: &runtimeapi.ImageSpec{Image: "sha256:abc"}, Readonly: false},
		},
	}
	err := validateContainerConfig(cfg)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "config.mounts[1].readonly") {
		t.Fatalf("validateContainerConfig = %v, want InvalidArgument naming config.mounts[1].readonly", err)
	}
	cfg.Mounts[1].Readonly = true
	if err := validateContainerConfig(cfg); err != nil {
		t.Fatalf("read-only image volume: %v", err)
	}
}
