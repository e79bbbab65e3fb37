package cri

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cri-runtime/cri-runtime/pkg/cri/host"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
)

// Anonymous image volumes ([cri.containers] image_volumes = "anonymous"):
// each path an image declares as a VOLUME gets a directory of the
// container's own under <root>/volumes/<container id>/, filled with what
// the image has at that path, as Docker does. They go with the container.

// volumesDir holds a container's anonymous volumes.
func (s *Service) volumesDir(id string) string { return filepath.Join(s.volumesParentDir(), id) }

// createVolumes makes and fills the anonymous volumes of container id
// from its mounted rootfs, in the container's dir: private to root, or to
// the pod's root group gid (hostdirs.go), since what they hold, set-id
// bits and all, is the image's and then the container's.
func (s *Service) createVolumes(id string, gid uint32, rootfs string, vols []spec.Volume) error {
	if err := host.EnsureSharedDir(s.volumesParentDir()); err != nil {
		return err
	}
	if err := host.EnsurePrivateDir(s.volumesDir(id), gid); err != nil {
		return err
	}
	for _, v := range vols {
		if err := os.MkdirAll(v.HostPath, 0o755); err != nil {
			return fmt.Errorf("create image volume %s: %w", v.ContainerPath, err)
		}
		if err := host.PopulateVolume(rootfs, v.ContainerPath, v.HostPath); err != nil {
			return fmt.Errorf("fill image volume %s: %w", v.ContainerPath, err)
		}
	}
	return nil
}
