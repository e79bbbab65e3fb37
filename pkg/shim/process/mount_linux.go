package process

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// mountFlags are the options that are flags, not data.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"async": {true, unix.MS_SYNCHRONOUS}, "sync": {false, unix.MS_SYNCHRONOUS},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"defaults": {false, 0},
	"dev":      {true, unix.MS_NODEV}, "nodev": {false, unix.MS_NODEV},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"exec": {true, unix.MS_NOEXEC}, "noexec": {false, unix.MS_NOEXEC},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"suid": {true, unix.MS_NOSUID}, "nosuid": {false, unix.MS_NOSUID},
	"remount": {false, unix.MS_REMOUNT},
}

func parseMountOptions(options []string) (flags uintptr, data string) {
	var rest []string
	for _, o := range options {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		rest = append(rest, o)
	}
	return flags, strings.Join(rest, ",")
}

// mountAll mounts ms, in order, under rootfs. It returns the targets it
// mounted, so that a failure half-way can be undone by unmountAll.
func mountAll(rootfs string, ms []api.Mount) ([]string, error) {
	var done []string
	for _, m := range ms {
		target := filepath.Join(rootfs, m.Target)
		if !strings.HasPrefix(target, filepath.Clean(rootfs)) {
			return done, fmt.Errorf("mount target %q escapes the rootfs: %w", m.Target, errdefs.ErrInvalidArgument)
		}
		flags, data := parseMountOptions(m.Options)
		if err := unix.Mount(m.Source, target, m.Type, flags&^unix.MS_RDONLY|flagIfNotBind(flags), data); err != nil {
			return done, mountError(m, target, err)
		}
		done = append(done, target)
		// A read-only bind mount needs a remount to become read-only.
		if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
			if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
				return done, mountError(m, target, err)
			}
		}
	}
	return done, nil
}

// flagIfNotBind keeps MS_RDONLY for ordinary mounts; a bind mount ignores it
// and is remounted instead.
func flagIfNotBind(flags uintptr) uintptr {
	if flags&unix.MS_BIND != 0 {
		return 0
	}
	return flags & unix.MS_RDONLY
}

func mountError(m api.Mount, target string, err error) error {
	err = fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, target, err)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return err
}

// unmountAll unmounts targets in reverse order; a busy target is detached.
func unmountAll(targets []string) error {
	var errs []error
	for i := len(targets) - 1; i >= 0; i-- {
		if err := unmount(targets[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil // not (or no longer) a mount point
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("detach %s: %w", target, err)
			}
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}
