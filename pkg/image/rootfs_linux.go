package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Mount is one mount of a container's root file system, for the caller to
// perform (mount(2) source, type, comma-joined options).
type Mount struct {
	Type    string   `json:"type"`
	Source  string   `json:"source"`
	Options []string `json:"options"`
}

// Mount mounts m on target. The options "ro", "bind" and "rbind" become
// mount flags (a read-only bind takes a second, remounting call, as the
// kernel ignores MS_RDONLY on the first); the rest go to the file system.
func (m Mount) Mount(target string) error {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		switch o {
		case "ro":
			flags |= unix.MS_RDONLY
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		default:
			data = append(data, o)
		}
	}
	if m.Type == "bind" {
		flags |= unix.MS_BIND
	}
	if err := unix.Mount(m.Source, target, m.Type, flags, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
	}
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("make bind of %s on %s read-only: %w", m.Source, target, err)
		}
	}
	return nil
}

// rootfsRecord is kept as <root>/containers/<id>/rootfs.json, beside the
// upper and work directories it describes: the directory is the record,
// so removing it is one rename, and the layer GC reads them all at New.
type rootfsRecord struct {
	ContainerID string    `json:"containerID"`
	ImageID     string    `json:"imageID"`
	DiffIDs     []string  `json:"diffIDs"` // bottom first, as in the image
	Created     time.Time `json:"created"`
}

var containerIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$`)

func (s *Service) containerDir(id string) string { return filepath.Join(s.containersDir(), id) }

func (s *Service) loadRootfs(ctx context.Context) error {
	entries, err := os.ReadDir(s.containersDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(s.containersDir(), e.Name())
		raw, err := os.ReadFile(filepath.Join(dir, "rootfs.json"))
		var rec rootfsRecord
		if err == nil {
			err = json.Unmarshal(raw, &rec)
		}
		if err != nil || rec.ContainerID != e.Name() {
			// Prepare died before writing its record: nothing refers to it.
			klog.FromContext(ctx).Info("Removed incomplete container rootfs", "containerID", e.Name())
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			continue
		}
		// Root's only (an older daemon made some 0755): upper/ holds
		// what the container wrote.
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
		s.rootfs[rec.ContainerID] = rec
	}
	return nil
}

// PrepareRootfs creates the writable layer of container containerID over
// the layers of the image imageID (an ID or any reference Get accepts) and
// returns the overlay mount of its root file system. The container holds
// the layers until RemoveRootfs, even if the image is removed meanwhile.
// Preparing an existing rootfs again (after a daemon restart) returns the
// same mounts; preparing it over another image is ErrAlreadyExists.
func (s *Service) PrepareRootfs(ctx context.Context, containerID, imageID string) ([]Mount, error) {
	if !containerIDRE.MatchString(containerID) {
		return nil, fmt.Errorf("container ID %q: %w", containerID, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.rootfs[containerID]; ok {
		if img, _, err := s.lookupLocked(imageID); err == nil && img.ID != rec.ImageID {
			return nil, fmt.Errorf("rootfs of container %s exists over image %s: %w", containerID, rec.ImageID, errdefs.ErrAlreadyExists)
		}
		return s.mountsLocked(rec)
	}
	img, _, err := s.lookupLocked(imageID)
	if err != nil {
		return nil, err
	}
	rec := rootfsRecord{ContainerID: containerID, ImageID: img.ID, DiffIDs: slices.Clone(img.DiffIDs), Created: time.Now().UTC()}
	mounts, err := s.mountsLocked(rec)
	if err != nil {
		return nil, err
	}
	dir := s.containerDir(containerID)
	if err := s.createRootfsDir(dir, rec); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("prepare rootfs of container %s: %w", containerID, err)
	}
	s.rootfs[containerID] = rec
	klog.FromContext(ctx).V(2).Info("Prepared container rootfs", "containerID", containerID, "image", img.ID)
	return mounts, nil
}

func (s *Service) createRootfsDir(dir string, rec rootfsRecord) error {
	os.RemoveAll(dir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	// upper's own mode and owner become those of the container's "/":
	// take them from the top layer's root, as containerd does.
	mode, uid, gid := os.FileMode(0o755), 0, 0
	if n := len(rec.DiffIDs); n > 0 {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(s.layerDir(rec.DiffIDs[n-1]), "diff"), &st) == nil {
			mode, uid, gid = os.FileMode(st.Mode&0o7777), int(st.Uid), int(st.Gid)
		}
	}
	upper := filepath.Join(dir, "upper")
	if err := os.Mkdir(upper, 0o700); err != nil {
		return err
	}
	if err := os.Lchown(upper, uid, gid); err != nil {
		return err
	}
	if err := os.Chmod(upper, mode); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil {
		return err
	}
	// The record last: a directory without it is removed at New.
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "rootfs.json.tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "rootfs.json"))
}

// pageSize bounds mount(2)'s data argument.
var pageSize = os.Getpagesize()

// mountsLocked builds the overlay mount of rec. Caller holds s.mu.
func (s *Service) mountsLocked(rec rootfsRecord) ([]Mount, error) {
	if len(rec.DiffIDs) == 0 {
		return nil, fmt.Errorf("image %s has no layers: %w", rec.ImageID, errdefs.ErrFailedPrecondition)
	}
	lowers, err := s.lowerDirsLocked(rec.ImageID, rec.DiffIDs)
	if err != nil {
		return nil, err
	}
	dir := s.containerDir(rec.ContainerID)
	return overlayMount(lowers,
		"upperdir="+filepath.Join(dir, "upper"),
		"workdir="+filepath.Join(dir, "work"),
	)
}

// lowerDirsLocked lists the short links of an image's layers, top first,
// as overlayfs's lowerdir wants them. Caller holds s.mu.
func (s *Service) lowerDirsLocked(imageID string, diffIDs []string) ([]string, error) {
	lowers := make([]string, 0, len(diffIDs))
	for i := len(diffIDs) - 1; i >= 0; i-- {
		l, ok := s.layers[diffIDs[i]]
		if !ok {
			return nil, fmt.Errorf("layer %s of image %s: %w", diffIDs[i], imageID, errdefs.ErrNotFound)
		}
		lowers = append(lowers, filepath.Join(s.linksDir(), l.Short))
	}
	return lowers, nil
}

// overlayMount is the overlay mount of lowers plus the other options,
// refused when its options would not fit mount(2)'s one page.
func overlayMount(lowers []string, more ...string) ([]Mount, error) {
	opts := append([]string{"lowerdir=" + strings.Join(lowers, ":")}, more...)
	if n := len(strings.Join(opts, ",")); n >= pageSize {
		return nil, fmt.Errorf("overlay options for %d layers are %d bytes, more than a page: %w", len(lowers), n, errdefs.ErrResourceExhausted)
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}, nil
}

// Rootfs returns the mounts of an existing container rootfs.
func (s *Service) Rootfs(ctx context.Context, containerID string) ([]Mount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.rootfs[containerID]
	if !ok {
		return nil, fmt.Errorf("rootfs of container %q: %w", containerID, errdefs.ErrNotFound)
	}
	return s.mountsLocked(rec)
}

// RemoveRootfs deletes the container's writable layer and releases its
// image layers (which are deleted if nothing else uses them). The caller
// unmounts first. Removing an absent rootfs succeeds.
func (s *Service) RemoveRootfs(ctx context.Context, containerID string) error {
	if !containerIDRE.MatchString(containerID) {
		return fmt.Errorf("container ID %q: %w", containerID, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	dir := s.containerDir(containerID)
	trash := []string{}
	t := filepath.Join(s.trashDir(), "rootfs-"+containerID+"-"+newShort())
	err := os.Rename(dir, t)
	switch {
	case err == nil:
		trash = append(trash, t)
	case os.IsNotExist(err):
		err = nil
	}
	if err == nil {
		delete(s.rootfs, containerID)
		var more []string
		more, err = s.collectLocked(ctx)
		trash = append(trash, more...)
	}
	s.mu.Unlock()
	s.emptyTrash(trash)
	if err != nil {
		return fmt.Errorf("remove rootfs of container %s: %w", containerID, err)
	}
	klog.FromContext(ctx).V(2).Info("Removed container rootfs", "containerID", containerID)
	return nil
}
