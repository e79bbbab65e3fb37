package cri

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// unmountAndRemove detaches every mount stacked on path and removes the
// (now empty) mount point; a path that is gone is fine.
func unmountAndRemove(path string) error {
	for i := 0; ; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
		if i > 64 {
			return fmt.Errorf("unmount %s: still mounted after 64 unmounts", path)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
