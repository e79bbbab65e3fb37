package host

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
// Start-up puts every existing dir back to these modes (the facade's
// fixHostDirs), so an upgrade from a layout that had them 0755 is fixed
// before the first request.
import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

const (
	// SharedDirMode: a parent of per-object dirs; traversable, not listable.
	SharedDirMode = 0o711
	// PrivateDirMode: an object's dir in a pod on the host's user namespace.
	PrivateDirMode = 0o700
	// PodRootDirMode: an object's dir in a pod with its own user
	// namespace, group-owned by the host gid of the pod's root.
	PodRootDirMode = 0o710
)

// EnsureSharedDir creates dir (and missing parents) and makes it root's,
// mode 0711, whatever it was.
func EnsureSharedDir(dir string) error {
	if err := os.MkdirAll(dir, SharedDirMode); err != nil {
		return err
	}
	return SetDirOwner(dir, 0, SharedDirMode)
}

// EnsurePrivateDir creates dir when missing (its parent must exist) and
// makes it an object's dir: root's, 0700, or 0710 to the group gid.
func EnsurePrivateDir(dir string, gid uint32) error {
	if err := os.Mkdir(dir, PrivateDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return SetPrivateDir(dir, gid)
}

// SetPrivateDir makes an existing dir an object's dir (EnsurePrivateDir).
func SetPrivateDir(dir string, gid uint32) error {
	if gid == 0 {
		return SetDirOwner(dir, 0, PrivateDirMode)
	}
	return SetDirOwner(dir, gid, PodRootDirMode)
}

// SetDirOwner makes the dir (never a symlink's target) root:gid with mode.
// It closes the dir first (0700), so no one gains access for a moment
// between the chown and the chmod. A process that is not root (pkg/cri's
// contract tests) cannot give a dir to root: there the dir is the
// process's own, with its group for gid 0.
func SetDirOwner(dir string, gid uint32, mode uint32) error {
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
	if err := unix.Fchmod(fd, PrivateDirMode); err != nil {
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

// IsMountRoot tells whether path is the root of a mount.
func IsMountRoot(path string) (bool, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT, 0, &stx); err != nil {
		return false, err
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return false, fmt.Errorf("statx %s: the kernel does not report mount roots", path)
	}
	return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
}

// MoveMountBelow moves what is mounted on dir (a layout from before the
// private dirs, where the mount's "/" was open to host users) to
// dir/name, dir made private to gid first, going through park (a scratch
// dir it makes private and removes). Nothing mounted on dir: nothing to
// do. The mount is the same, seen through a new bind, so a container's
// own mount namespace is not touched; if the move fails half way, the
// mount is put back on dir, still reachable, not lost.
func MoveMountBelow(dir, name, park string, gid uint32) error {
	if root, err := IsMountRoot(dir); err != nil || !root {
		return nil // nothing there, or already the new layout
	}
	if err := EnsurePrivateDir(park, 0); err != nil {
		return err
	}
	tmp := filepath.Join(park, filepath.Base(dir))
	if err := os.Mkdir(tmp, PrivateDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	defer os.Remove(park)
	defer func() { _ = UnmountAndRemove(tmp) }() // a bind left behind is in a 0700 dir
	if err := unix.Mount(dir, tmp, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", dir, err)
	}
	if err := UnmountAll(dir); err != nil {
		return err
	}
	target := filepath.Join(dir, name)
	err := SetPrivateDir(dir, gid)
	if err == nil {
		if err = os.Mkdir(target, PrivateDirMode); errors.Is(err, fs.ErrExist) {
			err = nil
		}
	}
	if err == nil {
		if err = unix.Mount(tmp, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			err = fmt.Errorf("bind %s: %w", target, err)
		}
	}
	if err != nil {
		_ = unix.Mount(tmp, dir, "", unix.MS_BIND|unix.MS_REC, "")
	}
	return err
}
