package cri

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
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
	if err := ensureSharedDir(s.volumesParentDir()); err != nil {
		return err
	}
	if err := ensurePrivateDir(s.volumesDir(id), gid); err != nil {
		return err
	}
	for _, v := range vols {
		if err := os.MkdirAll(v.HostPath, 0o755); err != nil {
			return fmt.Errorf("create image volume %s: %w", v.ContainerPath, err)
		}
		if err := populateVolume(rootfs, v.ContainerPath, v.HostPath); err != nil {
			return fmt.Errorf("fill image volume %s: %w", v.ContainerPath, err)
		}
	}
	return nil
}

// populateVolume copies what the rootfs has at containerPath into dir,
// keeping modes, owners and symlinks (devices and fifos are skipped).
// The path is resolved as the container sees it (an absolute symlink such
// as /var/run -> /run stays inside the rootfs), and everything is read
// through an os.Root, so nothing outside the rootfs is ever read. A path
// the image lacks leaves the volume empty.
func populateVolume(rootfs, containerPath, dir string) error {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	rel, err := spec.ResolveInRoot(root, strings.TrimPrefix(path.Clean("/"+containerPath), "/"))
	if errors.Is(err, fs.ErrNotExist) || errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	src, err := root.OpenRoot(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s in the image: %w: %w", containerPath, err, errdefs.ErrInvalidArgument)
	}
	defer src.Close()
	return fs.WalkDir(src.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			link, err := src.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case d.Type().IsRegular():
			if err := copyFile(src, p, target); err != nil {
				return err
			}
		default:
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return os.Chmod(target, info.Mode().Perm()|info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		return nil
	})
}

func copyFile(src *os.Root, name, target string) error {
	in, err := src.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
