package cri

// Host dirs that hold container-controlled files (docs/security.md, "Host
// users and container files"). A container's root can plant a set-uid
// binary in its rootfs, its volumes or its pod's /dev/shm, and an image
// can ship one in an image volume: no host user but root may reach any of
// them, whatever the modes of --state and --root (systemd's
// RuntimeDirectory= makes them 0755, and /proc/self/mountinfo names every
// mount anyway). containerd's CVE-2021-41103 was this class.
//
// The scheme: each kind of object has a shared parent, mode 0711 (others
// may traverse it, not list it: runc resolves a user-namespaced pod's
// paths from inside the pod's user namespace, where it is "others"), and
// every object has a dir of its own in it, root-owned and mode 0700; in a
// pod with its own user namespace, 0710 with the group of the host gid
// the pod's root maps to, so that the pod's root, and no host user, may
// traverse it. A mount point is always one level below that private dir:
// the root of a mount shows the mode of the mounted tree (a rootfs's "/",
// which the container controls), not that of the dir it covers.
//
//	<state>/rootfs/            0711   <id>/ 0700|0710   rootfs/ (the mount)
//	<state>/imagemounts/       0711   <id>/ 0700|0710   <n>/ (the views)
//	<state>/sandboxes/         0711   <id>/ 0700|0710   hostname, hosts, resolv.conf, shm/
//	<root>/volumes/            0711   <id>/ 0700|0710   the anonymous volumes
//
// Start-up puts every existing dir back to these modes (fixHostDirs), so
// an upgrade from a layout that had them 0755 is fixed before the first
// request.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
)

const (
	// sharedDirMode: a parent of per-object dirs; traversable, not listable.
	sharedDirMode = 0o711
	// privateDirMode: an object's dir in a pod on the host's user namespace.
	privateDirMode = 0o700
	// podRootDirMode: an object's dir in a pod with its own user
	// namespace, group-owned by the host gid of the pod's root.
	podRootDirMode = 0o710
)

// podRootGID is the host gid of the root group of a pod with its own user
// namespace, the group of its objects' dirs; 0 for a pod on the host's.
func podRootGID(cfg *runtimeapi.PodSandboxConfig) uint32 {
	if _, gid, ok := spec.PodUserNS(cfg); ok {
		return gid.HostID
	}
	return 0
}

// ensureSharedDir creates dir (and missing parents) and makes it root's,
// mode 0711, whatever it was.
func ensureSharedDir(dir string) error {
	if err := os.MkdirAll(dir, sharedDirMode); err != nil {
		return err
	}
	return setDirOwner(dir, 0, sharedDirMode)
}

// ensurePrivateDir creates dir when missing (its parent must exist) and
// makes it an object's dir: root's, 0700, or 0710 to the group gid.
func ensurePrivateDir(dir string, gid uint32) error {
	if err := os.Mkdir(dir, privateDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return setPrivateDir(dir, gid)
}

// setPrivateDir makes an existing dir an object's dir (ensurePrivateDir).
func setPrivateDir(dir string, gid uint32) error {
	if gid == 0 {
		return setDirOwner(dir, 0, privateDirMode)
	}
	return setDirOwner(dir, gid, podRootDirMode)
}

// setDirOwner makes the dir (never a symlink's target) root:gid with mode.
// It closes the dir first (0700), so no one gains access for a moment
// between the chown and the chmod. A process that is not root (the
// package's contract tests) cannot give a dir to root: there the dir is
// the process's own, with its group for gid 0.
func setDirOwner(dir string, gid uint32, mode uint32) error {
	uid := uint32(0)
	if euid := os.Geteuid(); euid != 0 {
		uid = uint32(euid)
		if gid == 0 {
			gid = uint32(os.Getegid())
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if st.Uid == uid && st.Gid == gid && st.Mode&0o7777 == mode {
		return nil
	}
	if err := unix.Fchmod(fd, privateDirMode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	if err := unix.Fchown(fd, int(uid), int(gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// isMountRoot tells whether path is the root of a mount.
func isMountRoot(path string) (bool, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT, 0, &stx); err != nil {
		return false, err
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return false, fmt.Errorf("statx %s: the kernel does not report mount roots", path)
	}
	return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
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
	if root, err := isMountRoot(dir); err == nil && root {
		if err := unmountAll(dir); err != nil {
			return err
		}
	}
	if err := unmountAndRemove(s.rootfsDir(id)); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// unmountAll detaches every mount stacked on path.
func unmountAll(path string) error {
	for i := 0; i <= 64; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted after 64 unmounts", path)
}

// fixHostDirs puts the dirs of every known object back to the modes of
// the scheme above, and moves a rootfs mounted by an older daemon on the
// container's dir itself into the rootfs dir inside it. It runs at
// start-up, once the records are loaded and the orphans removed; a
// failure is logged and the daemon goes on (the object keeps working).
func (s *Service) fixHostDirs(ctx context.Context) {
	logger := klog.FromContext(ctx)
	for _, d := range []string{s.rootfsParentDir(), s.imageMountsParentDir(), s.sandboxesParentDir(), s.volumesParentDir()} {
		if err := ensureSharedDir(d); err != nil {
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
		err := setPrivateDir(dir, gid)
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
// The container's own mount namespace is not touched: its rootfs is the
// same mount, seen through a new bind.
func (s *Service) moveOldRootfsMount(id string, gid uint32) error {
	dir := s.containerRootfsDir(id)
	if root, err := isMountRoot(dir); err != nil || !root {
		return nil // nothing there, or already the new layout
	}
	park := filepath.Join(s.rootfsParentDir(), ".move")
	if err := ensurePrivateDir(park, 0); err != nil {
		return err
	}
	tmp := filepath.Join(park, id)
	if err := os.Mkdir(tmp, privateDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	defer os.Remove(park)
	defer func() { _ = unmountAndRemove(tmp) }() // a bind left behind is in a 0700 dir
	if err := unix.Mount(dir, tmp, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", dir, err)
	}
	if err := unmountAll(dir); err != nil {
		return err
	}
	target := s.rootfsDir(id)
	err := setPrivateDir(dir, gid)
	if err == nil {
		if err = os.Mkdir(target, privateDirMode); errors.Is(err, fs.ErrExist) {
			err = nil
		}
	}
	if err == nil {
		if err = unix.Mount(tmp, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			err = fmt.Errorf("bind %s: %w", target, err)
		}
	}
	if err != nil {
		// Put it back where it was: still reachable, not lost.
		_ = unix.Mount(tmp, dir, "", unix.MS_BIND|unix.MS_REC, "")
	}
	return err
}

// idmapDir holds the idmapped binds of image layers while a rootfs of a
// user-namespaced pod is mounted (idmapOverlay); root's only.
func (s *Service) idmapDir() string { return filepath.Join(s.rootDir, "idmap") }

// fixIDMapDir makes an existing idmap dir 0700 again.
func (s *Service) fixIDMapDir() error {
	err := setDirOwner(s.idmapDir(), 0, privateDirMode)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
