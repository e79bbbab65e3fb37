package cri

// The mounts of a container that the facade makes on the host besides its
// rootfs: image volumes and anonymous image volumes; and the pod's user
// namespace that a rootfs is idmapped into (host.IDMapOverlay).
//
// Image volumes (KEP-4639): a CRI mount with image set is a read-only view
// of that (already pulled) image, mounted on the host under
// <state>/imagemounts/<containerID>/<n> (n: the mount's index in
// config.mounts) and bound into the container from there, or from the
// directory image_sub_path names inside it. The image service records each
// view under the mount ID <containerID>-<n>, so the image's layers stay
// until the container is removed, across restarts and reboots.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/host"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// imageVolume is one image volume of a container, kept in its record.
type imageVolume struct {
	Index   int    `json:"index"` // in config.mounts
	ImageID string `json:"imageID"`
}

func imageMountID(containerID string, index int) string {
	return containerID + "-" + strconv.Itoa(index)
}

// imageMountsDir holds the views of a container's image volumes.
func (s *Service) imageMountsDir(containerID string) string {
	return filepath.Join(s.imageMountsParentDir(), containerID)
}

func (s *Service) imageMountTarget(containerID string, index int) string {
	return filepath.Join(s.imageMountsDir(containerID), strconv.Itoa(index))
}

// mountImageVolumes mounts the view of every image volume of the
// container and returns the config for spec generation, in which each of
// them is a read-only, private bind of its view (or of the sub path in
// it). meta.ImageVolumes records what was mounted; undo unmounts and
// releases it. A config without image volumes is returned as it is.
func (s *Service) mountImageVolumes(ctx context.Context, meta *containerMeta, gid uint32, undo *rollback) (*runtimeapi.ContainerConfig, error) {
	cfg := meta.config
	if !hasImageVolumes(cfg) {
		return cfg, nil
	}
	out := proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	// The views are mounted one level below a dir private to root, or to
	// the pod's root (hostdirs.go): an image's set-uid files are no host
	// user's to run.
	if err := host.EnsureSharedDir(s.imageMountsParentDir()); err != nil {
		return nil, err
	}
	if err := host.EnsurePrivateDir(s.imageMountsDir(meta.ID), gid); err != nil {
		return nil, err
	}
	undo.add("remove image mounts dir", func(context.Context) error { return os.Remove(s.imageMountsDir(meta.ID)) })
	for i, m := range out.GetMounts() {
		ref := m.GetImage().GetImage()
		if ref == "" {
			continue
		}
		img, err := s.images.Get(ctx, ref)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil, fmt.Errorf("config.mounts[%d].image %q is not present: %w", i, ref, errdefs.ErrNotFound)
			}
			return nil, err
		}
		id := imageMountID(meta.ID, i)
		mounts, err := s.images.ImageMount(ctx, id, img.ID)
		if err != nil {
			return nil, err
		}
		undo.add("release image mount", func(ctx context.Context) error { return s.images.RemoveImageMount(ctx, id) })
		target := s.imageMountTarget(meta.ID, i)
		if err := os.Mkdir(target, host.PrivateDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		undo.add("unmount image volume", func(context.Context) error { return host.UnmountAndRemove(target) })
		for _, mnt := range mounts {
			if err := mnt.Mount(target); err != nil {
				return nil, fmt.Errorf("mount image volume config.mounts[%d]: %w", i, err)
			}
		}
		hostPath, err := host.ResolveSubPath(target, m.GetImageSubPath())
		if err != nil {
			return nil, fmt.Errorf("config.mounts[%d].image_sub_path: %w", i, err)
		}
		m.HostPath, m.Readonly, m.Propagation = hostPath, true, runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		m.Image, m.ImageSubPath = nil, ""
		meta.ImageVolumes = append(meta.ImageVolumes, imageVolume{Index: i, ImageID: img.ID})
	}
	return out, nil
}

func hasImageVolumes(cfg *runtimeapi.ContainerConfig) bool {
	for _, m := range cfg.GetMounts() {
		if m.GetImage().GetImage() != "" {
			return true
		}
	}
	return false
}

// validateImageVolume checks what can be checked of an image volume
// before anything is mounted (validateContainerConfig). Image volumes are
// read-only by definition (the CRI's Mount.image): readonly = false is
// refused, as critest expects, rather than quietly mounted read-only.
func validateImageVolume(i int, m *runtimeapi.Mount) error {
	if m.GetImage().GetImage() == "" {
		if m.GetImageSubPath() != "" {
			return fmt.Errorf("config.mounts[%d].image_sub_path is set without image: %w", i, errdefs.ErrInvalidArgument)
		}
		return nil
	}
	if m.GetHostPath() != "" {
		return fmt.Errorf("config.mounts[%d]: host_path and image are both set: %w", i, errdefs.ErrInvalidArgument)
	}
	if !m.GetReadonly() {
		return fmt.Errorf("config.mounts[%d].readonly is false: an image volume is read-only: %w", i, errdefs.ErrInvalidArgument)
	}
	if _, err := host.CleanSubPath(m.GetImageSubPath()); err != nil {
		return fmt.Errorf("config.mounts[%d].image_sub_path: %w", i, err)
	}
	return nil
}

// releaseImageVolumes unmounts the container's image volume views and
// releases them in the image service. What is already gone is fine (a
// reboot empties the state dir; the image service's records stay).
func (s *Service) releaseImageVolumes(ctx context.Context, m containerMeta) error {
	for _, v := range m.ImageVolumes {
		if err := host.UnmountAndRemove(s.imageMountTarget(m.ID, v.Index)); err != nil {
			return err
		}
		if err := s.images.RemoveImageMount(ctx, imageMountID(m.ID, v.Index)); err != nil {
			return err
		}
	}
	if err := os.Remove(s.imageMountsDir(m.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// statusMounts is config.mounts as ContainerStatus reports them: each
// image volume carries the ID of the image it was made from in
// image.image_ref.
func statusMounts(m containerMeta) []*runtimeapi.Mount {
	mounts := m.config.GetMounts()
	if len(m.ImageVolumes) == 0 {
		return mounts
	}
	out := make([]*runtimeapi.Mount, len(mounts))
	copy(out, mounts)
	for _, v := range m.ImageVolumes {
		if v.Index < 0 || v.Index >= len(out) {
			continue
		}
		c := proto.Clone(out[v.Index]).(*runtimeapi.Mount)
		if c.Image == nil {
			c.Image = &runtimeapi.ImageSpec{}
		}
		c.Image.ImageRef = v.ImageID
		out[v.Index] = c
	}
	return out
}

// removeOrphanImageMounts releases image volume views that belong to no
// container: the remains of a create that a crash cut short. It runs at
// start-up, after the containers are loaded.
func (s *Service) removeOrphanImageMounts(ctx context.Context) {
	logger := klog.FromContext(ctx)
	known := func(id string) bool {
		c, err := s.containers.Get(id)
		return err == nil && c.Meta.ID == id
	}
	if entries, err := os.ReadDir(s.imageMountsParentDir()); err == nil {
		for _, e := range entries {
			if known(e.Name()) {
				continue
			}
			dir := s.imageMountsDir(e.Name())
			logger.Info("Removing image volume mounts that belong to no container", "path", dir)
			views, _ := os.ReadDir(dir)
			for _, v := range views {
				if err := host.UnmountAndRemove(filepath.Join(dir, v.Name())); err != nil {
					logger.Error(err, "Failed to unmount an orphan image volume", "path", filepath.Join(dir, v.Name()))
				}
			}
			if err := os.Remove(dir); err != nil {
				logger.Error(err, "Failed to remove an orphan image volume dir", "path", dir)
			}
		}
	}
	if s.images == nil { // a Service built for sandboxes only (tests)
		return
	}
	ids, err := s.images.ImageMounts(ctx)
	if err != nil {
		logger.Error(err, "Failed to list image mounts")
		return
	}
	for _, id := range ids {
		i := strings.LastIndexByte(id, '-')
		if i > 0 && known(id[:i]) {
			continue
		}
		logger.Info("Releasing an image mount that belongs to no container", "mountID", id)
		if err := s.images.RemoveImageMount(ctx, id); err != nil {
			logger.Error(err, "Failed to release an orphan image mount", "mountID", id)
		}
	}
}

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

// podUserNS is the user namespace of a running pod's pause: its file and
// the pod's mappings; nil when the pod uses the host's.
type podUserNS struct {
	file     *os.File
	uid, gid specs.LinuxIDMapping
}

// openPodUserNS opens the user namespace of sb's pause process when the
// pod has its own; (nil, nil) when it uses the host's.
func openPodUserNS(sb *sandbox) (*podUserNS, error) {
	uid, gid, ok := spec.PodUserNS(sb.Meta.config)
	if !ok {
		return nil, nil
	}
	pid := sb.Status().Pid
	if pid <= 0 {
		return nil, fmt.Errorf("pod sandbox %s has no running pause process: %w", sb.Meta.ID, errdefs.ErrFailedPrecondition)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace of pod sandbox %s: %w", sb.Meta.ID, errdefs.ErrFailedPrecondition)
	}
	return &podUserNS{file: f, uid: uid, gid: gid}, nil
}
