package stats

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// fsInfo is the filesystem a container's writable layer lives on, as
// cAdvisor labels and sizes it: the mount source of its device, its size
// (container_fs_limit_bytes) and its free inodes.
type fsInfo struct {
	device     string
	capacity   uint64
	inodesFree uint64
}

// readFSInfo stats the filesystem holding dir and names its device from
// /proc/self/mountinfo.
func readFSInfo(dir string) (fsInfo, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return fsInfo{}, fmt.Errorf("stat %s: %w", dir, err)
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(dir, &sfs); err != nil {
		return fsInfo{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	major, minor := devMajor(st.Dev), devMinor(st.Dev)
	out := fsInfo{
		device:     fmt.Sprintf("%d:%d", major, minor),
		capacity:   sfs.Blocks * uint64(sfs.Bsize),
		inodesFree: sfs.Ffree,
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		if src, ok := mountSource(f, major, minor); ok {
			out.device = src
		}
		f.Close()
	}
	return out, nil
}

// mountSource finds the source of the first mount of device major:minor
// in a mountinfo file ("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3
// /dev/root rw,errors=continue").
func mountSource(r io.Reader, major, minor uint64) (string, bool) {
	want := fmt.Sprintf("%d:%d", major, minor)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 3 || len(g) < 2 || f[2] != want {
			continue
		}
		return g[1], true
	}
	return "", false
}

// devMajor and devMinor split a Linux dev_t (glibc's encoding).
func devMajor(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func devMinor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }
