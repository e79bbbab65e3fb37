package cri

// The host dirs of the objects (docs/security.md, "Host users and
// container files"): a shared parent per kind, 0711, and a dir per object
// private to root or the pod's root, with the mount one level below it.
// The modes and how they are set are pkg/cri/host's (dirs.go); here is
// where each object's dirs are, and the start-up pass that puts them back
// to those modes.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/host"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
)

// podRootGID is the host gid of the root group of a pod with its own user
// namespace, the group of its objects' dirs; 0 for a pod on the host's.
func podRootGID(cfg *runtimeapi.PodSandboxConfig) uint32 {
	if _, gid, ok := spec.PodUserNS(cfg); ok {
		return gid.HostID
	}
	return 0
}

// Shared parents of per-object dirs.
func (s *Service) rootfsParentDir() string      { return filepath.Join(s.stateDir, "rootfs") }
func (s *Service) imageMountsParentDir() string { return filepath.Join(s.stateDir, "imagemounts") }
func (s *Service) sandboxesParentDir() string   { return filepath.Join(s.stateDir, "sandboxes") }
func (s *Service) volumesParentDir() string     { return filepath.Join(s.rootDir, "volumes") }

// containerRootfsDir is a container's (or a pause's) own dir in the
// rootfs parent; its rootfs is mounted on rootfsDir inside it.
func (s *Service) containerRootfsDir(id string) string { return filepath.Join(s.rootfsParentDir(), id) }

// rootfsDir is where a container's rootfs is mounted on the host.
func (s *Service) rootfsDir(id string) string {
	return filepath.Join(s.containerRootfsDir(id), "rootfs")
}

// removeRootfsMount unmounts a container's rootfs and removes its dir. A
// rootfs mounted on the container's dir itself (the layout before these
// private dirs, should start-up not have moved it) is unmounted too.
func (s *Service) removeRootfsMount(id string) error {
	dir := s.containerRootfsDir(id)
	if root, err := host.IsMountRoot(dir); err == nil && root {
		if err := host.UnmountAll(dir); err != nil {
			return err
		}
	}
	if err := host.UnmountAndRemove(s.rootfsDir(id)); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// fixHostDirs puts the dirs of every known object back to the modes of
// the scheme (host/dirs.go), and moves a rootfs mounted by an older daemon
// on the container's dir itself into the rootfs dir inside it. It runs at
// start-up, once the records are loaded and the orphans removed; a
// failure is logged and the daemon goes on (the object keeps working).
func (s *Service) fixHostDirs(ctx context.Context) {
	logger := klog.FromContext(ctx)
	for _, d := range []string{s.rootfsParentDir(), s.imageMountsParentDir(), s.sandboxesParentDir(), s.volumesParentDir()} {
		if err := host.EnsureSharedDir(d); err != nil {
			logger.Error(err, "Failed to fix the mode of a host dir", "path", d)
		}
	}
	if err := s.fixIDMapDir(); err != nil {
		logger.Error(err, "Failed to fix the mode of a host dir", "path", s.idmapDir())
	}
	gids := map[string]uint32{}
	for _, sb := range s.sandboxes.List() {
		gids[sb.Meta.ID] = podRootGID(sb.Meta.config)
	}
	for _, c := range s.containers.List() {
		gids[c.Meta.ID] = gids[c.Meta.SandboxID]
	}
	fix := func(dir string, gid uint32) {
		err := host.SetPrivateDir(dir, gid)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			logger.Error(err, "Failed to fix the mode of a host dir", "path", dir)
		}
	}
	for id, gid := range gids {
		if err := s.moveOldRootfsMount(id, gid); err != nil {
			logger.Error(err, "Failed to move a rootfs mount into its private dir", "containerID", id)
		}
		fix(s.containerRootfsDir(id), gid)
		fix(s.imageMountsDir(id), gid)
		fix(s.sandboxDir(id), gid)
		fix(s.volumesDir(id), gid)
	}
}

// moveOldRootfsMount moves a rootfs that an older daemon mounted on the
// container's dir itself (<state>/rootfs/<id>, where its "/" was open to
// host users) to <state>/rootfs/<id>/rootfs, the dir made private first.
func (s *Service) moveOldRootfsMount(id string, gid uint32) error {
	return host.MoveMountBelow(s.containerRootfsDir(id), filepath.Base(s.rootfsDir(id)), filepath.Join(s.rootfsParentDir(), ".move"), gid)
}

// idmapDir holds the idmapped binds of image layers while a rootfs of a
// user-namespaced pod is mounted (host.IDMapOverlay); root's only.
func (s *Service) idmapDir() string { return filepath.Join(s.rootDir, "idmap") }

// fixIDMapDir makes an existing idmap dir 0700 again.
func (s *Service) fixIDMapDir() error {
	err := host.SetDirOwner(s.idmapDir(), 0, host.PrivateDirMode)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
