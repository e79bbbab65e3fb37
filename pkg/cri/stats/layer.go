package stats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// The writable layer's usage is walked on the host, in a tree the
// container controls: it may swap any directory for a symlink (to /, say)
// at any moment, or grow the tree without end. So the walk goes by
// directory fds, never by path: each directory is opened relative to its
// parent's fd with O_NOFOLLOW|O_DIRECTORY, each entry is fstatat'ed with
// AT_SYMLINK_NOFOLLOW, and nothing on another device is entered; a name
// swapped between its stat and its open is skipped. It is bounded: at
// most maxLayerEntries entries and maxLayerDepth levels (one open fd per
// level); past either it stops and reports what it counted, a lower
// bound, with ErrLayerTruncated.
const (
	maxLayerEntries = 1 << 20
	maxLayerDepth   = 256
)

// ErrLayerTruncated: the walk hit its bounds; the counts are a lower bound.
var ErrLayerTruncated = errors.New("writable layer walk stopped at its bounds")

// DirUsage is the disk use of the tree at root: bytes allocated
// (st_blocks, so sparse files count what they use) and inodes, each hard
// link counted once. A missing root is empty; entries that vanish during
// the walk are skipped. With ErrLayerTruncated the counts are still set.
func DirUsage(root string) (bytes, inodes uint64, err error) {
	w := layerWalk{maxEntries: maxLayerEntries, maxDepth: maxLayerDepth}
	err = w.run(root)
	return w.bytes, w.inodes, err
}

// WritableLayer is a container's writable layer (upper) as ContainerStats
// reports it, on the filesystem mounted at mountpoint; nil if it could not
// be measured.
func WritableLayer(ctx context.Context, containerID, upper, mountpoint string, at time.Time) *runtimeapi.FilesystemUsage {
	used, inodes, ok := measureLayer(ctx, containerID, upper)
	if !ok {
		return nil
	}
	return &runtimeapi.FilesystemUsage{
		Timestamp:  at.UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: mountpoint},
		UsedBytes:  &runtimeapi.UInt64Value{Value: used},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
}

// measureLayer is DirUsage as a best-effort figure: a failure is logged,
// and a walk cut short at its bounds still reports what it counted.
func measureLayer(ctx context.Context, containerID, upper string) (used, inodes uint64, ok bool) {
	used, inodes, err := DirUsage(upper)
	if err != nil {
		klog.FromContext(ctx).V(4).Info("Could not measure a writable layer", "containerID", containerID, "path", upper, "err", err)
	}
	return used, inodes, err == nil || errors.Is(err, ErrLayerTruncated)
}

// layerWalk is one walk of DirUsage.
type layerWalk struct {
	maxEntries, maxDepth int
	// beforeOpen, when set (tests), runs between an entry's stat and the
	// open of it as a directory: the window a container can race.
	beforeOpen func(dirfd int, name string)

	dev           uint64
	bytes, inodes uint64
	entries       int
	// seen: directories and files with more than one link, each counted
	// (and a directory walked) once, even when the container moves them
	// around during the walk.
	seen      map[uint64]struct{}
	truncated bool
}

func (w *layerWalk) run(root string) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("stat %s: %w", root, err)
	}
	w.dev, w.seen = st.Dev, map[uint64]struct{}{}
	w.count(&st)
	if err := w.dir(fd, 1); err != nil {
		return fmt.Errorf("walk %s: %w", root, err)
	}
	if w.truncated {
		return fmt.Errorf("%s: %w (%d entries, %d levels)", root, ErrLayerTruncated, w.maxEntries, w.maxDepth)
	}
	return nil
}

// count adds an inode; false if it was counted before.
func (w *layerWalk) count(st *unix.Stat_t) bool {
	if st.Nlink > 1 || st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if _, dup := w.seen[st.Ino]; dup {
			return false
		}
		w.seen[st.Ino] = struct{}{}
	}
	w.bytes += uint64(st.Blocks) * 512
	w.inodes++
	return true
}

// dir counts the entries of the directory open as fd, at depth, and walks
// its subdirectories. It closes fd.
func (w *layerWalk) dir(fd, depth int) error {
	defer unix.Close(fd)
	buf := make([]byte, 8<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOENT): // removed while being read
			return nil
		case err != nil:
			return err
		case n == 0:
			return nil
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			if w.entries >= w.maxEntries {
				w.truncated = true
				return nil
			}
			w.entries++
			if err := w.entry(fd, name, depth); err != nil {
				return err
			}
			if w.truncated && w.entries >= w.maxEntries {
				return nil
			}
		}
	}
}

// entry counts one entry of the directory dirfd and walks it if it is a
// directory of the same file system.
func (w *layerWalk) entry(dirfd int, name string, depth int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if !w.count(&st) || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Dev != w.dev {
		return nil
	}
	if depth >= w.maxDepth {
		w.truncated = true
		return nil
	}
	if w.beforeOpen != nil {
		w.beforeOpen(dirfd, name)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		// Gone, or no longer a directory (a symlink now) since its stat.
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		return err
	}
	// What was opened may be another directory than the one counted (a
	// rename since the stat): still in the tree, but walk it only once.
	var cur unix.Stat_t
	if err := unix.Fstat(fd, &cur); err != nil || cur.Dev != w.dev {
		unix.Close(fd)
		return err
	}
	if cur.Ino != st.Ino && !w.count(&cur) {
		unix.Close(fd)
		return nil
	}
	return w.dir(fd, depth+1)
}
