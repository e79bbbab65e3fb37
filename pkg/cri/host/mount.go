package host

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// UnmountAndRemove detaches every mount stacked on path and removes the
// (now empty) mount point; a path that is gone is fine.
func UnmountAndRemove(path string) error {
	if err := UnmountAll(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// UnmountAll detaches every mount stacked on path.
func UnmountAll(path string) error {
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
