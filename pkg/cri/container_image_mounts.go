package cri

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
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// imageVolume is one image volume of a container, kept in its record.
type imageVolume struct {
	Index   int    `json:"index"` // in config.mounts
	ImageID string `json:"imageID"`
}

// maxSubPathLinks bounds the symlinks followed while resolving a sub path
// (the kernel's MAXSYMLINKS).
const maxSubPathLinks = 40

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
	if err := ensureSharedDir(s.imageMountsParentDir()); err != nil {
		return nil, err
	}
	if err := ensurePrivateDir(s.imageMountsDir(meta.ID), gid); err != nil {
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
		if err := os.Mkdir(target, privateDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		undo.add("unmount image volume", func(context.Context) error { return unmountAndRemove(target) })
		for _, mnt := range mounts {
			if err := mnt.Mount(target); err != nil {
				return nil, fmt.Errorf("mount image volume config.mounts[%d]: %w", i, err)
			}
		}
		host, err := resolveSubPath(target, m.GetImageSubPath())
		if err != nil {
			return nil, fmt.Errorf("config.mounts[%d].image_sub_path: %w", i, err)
		}
		m.HostPath, m.Readonly, m.Propagation = host, true, runtimeapi.MountPropagation_PROPAGATION_PRIVATE
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
	if _, err := cleanSubPath(m.GetImageSubPath()); err != nil {
		return fmt.Errorf("config.mounts[%d].image_sub_path: %w", i, err)
	}
	return nil
}

// cleanSubPath cleans a sub path lexically; "" and "." are the view's
// root (""). Absolute paths, NUL bytes and paths that climb out ("..",
// "a/../../x") are InvalidArgument.
func cleanSubPath(sub string) (string, error) {
	if sub == "" {
		return "", nil
	}
	if strings.ContainsRune(sub, 0) || path.IsAbs(sub) {
		return "", fmt.Errorf("%q must be a relative path: %w", sub, errdefs.ErrInvalidArgument)
	}
	c := path.Clean(sub)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q escapes the image: %w", sub, errdefs.ErrInvalidArgument)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// resolveSubPath resolves sub inside the view mounted at root, following
// symlinks the way the image's own root would: an absolute target starts
// again from root (as securejoin does), but a ".." that would climb above
// root is refused rather than clamped. The result must be an existing
// directory. The view is read-only, so what is resolved stays as it is.
// (spec.ResolveInRoot, used for image files, clamps such a ".." instead:
// an image_sub_path must fail rather than quietly name another dir.)
func resolveSubPath(root, sub string) (string, error) {
	clean, err := cleanSubPath(sub)
	if err != nil {
		return "", err
	}
	var resolved []string
	pending := strings.Split(clean, "/")
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) == 0 {
				return "", fmt.Errorf("%q escapes the image through a symlink: %w", sub, errdefs.ErrInvalidArgument)
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		p := filepath.Join(root, filepath.Join(append(resolved, c)...))
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return "", fmt.Errorf("%q does not exist in the image: %w", sub, errdefs.ErrInvalidArgument)
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = append(resolved, c)
			continue
		}
		if links++; links > maxSubPathLinks {
			return "", fmt.Errorf("%q: too many levels of symlinks: %w", sub, errdefs.ErrInvalidArgument)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = nil
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	p := filepath.Join(root, filepath.Join(resolved...))
	fi, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%q is not a directory: %w", sub, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// releaseImageVolumes unmounts the container's image volume views and
// releases them in the image service. What is already gone is fine (a
// reboot empties the state dir; the image service's records stay).
func (s *Service) releaseImageVolumes(ctx context.Context, m containerMeta) error {
	for _, v := range m.ImageVolumes {
		if err := unmountAndRemove(s.imageMountTarget(m.ID, v.Index)); err != nil {
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
				if err := unmountAndRemove(filepath.Join(dir, v.Name())); err != nil {
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
