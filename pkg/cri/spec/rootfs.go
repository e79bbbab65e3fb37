package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// maxRootFileSize bounds what is read of /etc/passwd or /etc/group.
const maxRootFileSize = 4 << 20

// maxSymlinkHops bounds symlink resolution inside a rootfs (Linux's own
// limit is 40).
const maxSymlinkHops = 40

// readRootFile reads the file at the absolute path name inside rootfs with
// chroot semantics: symlinks are resolved relative to rootfs (an absolute
// target restarts at rootfs, ".." stops at it), so nothing outside rootfs
// is ever read. The open goes through os.Root, which also refuses an
// escape swapped in after resolution. A missing file gives fs.ErrNotExist;
// a symlink loop, a non-regular file (a FIFO would block) or an oversized
// file gives errdefs.ErrInvalidArgument.
func readRootFile(rootfs, name string) ([]byte, error) {
	if rootfs == "" {
		return nil, fs.ErrNotExist
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %v: %w", rootfs, err, errdefs.ErrFailedPrecondition)
	}
	defer root.Close()
	rel, err := ResolveInRoot(root, name)
	if err != nil {
		return nil, err
	}
	// Stat before opening: opening a device node can have side effects.
	if st, err := root.Stat(rel); err != nil {
		return nil, classifyRootErr(name, err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the rootfs is not a regular file: %w", name, errdefs.ErrInvalidArgument)
	}
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, classifyRootErr(name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, classifyRootErr(name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the rootfs is not a regular file: %w", name, errdefs.ErrInvalidArgument)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRootFileSize+1))
	if err != nil {
		return nil, classifyRootErr(name, err)
	}
	if len(data) > maxRootFileSize {
		return nil, fmt.Errorf("%s in the rootfs is larger than %d bytes: %w", name, maxRootFileSize, errdefs.ErrInvalidArgument)
	}
	return data, nil
}

// ResolveInRoot resolves name to a symlink-free path relative to root, one
// component at a time, as the container would see it: an absolute symlink
// starts again from root and ".." never climbs above it.
func ResolveInRoot(root *os.Root, name string) (string, error) {
	pending := strings.Split(name, "/")
	var resolved []string
	hops := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			continue
		}
		cur := path.Join(append(resolved, c)...)
		fi, err := root.Lstat(cur)
		if err != nil {
			return "", classifyRootErr(name, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = append(resolved, c)
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", fmt.Errorf("%s in the rootfs: too many symlinks: %w", name, errdefs.ErrInvalidArgument)
		}
		target, err := root.Readlink(cur)
		if err != nil {
			return "", classifyRootErr(name, err)
		}
		if path.IsAbs(target) {
			resolved = nil
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	if len(resolved) == 0 {
		return ".", nil
	}
	return path.Join(resolved...), nil
}

// classifyRootErr keeps "missing" recognisable and gives everything else a
// class: a path that is not a directory is the image's fault, anything
// else (permissions, I/O) is ours.
func classifyRootErr(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s in the rootfs: %w", name, fs.ErrNotExist)
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%s in the rootfs: %w: %w", name, err, errdefs.ErrInvalidArgument)
	default:
		return fmt.Errorf("%s in the rootfs: %w: %w", name, err, errdefs.ErrInternal)
	}
}
