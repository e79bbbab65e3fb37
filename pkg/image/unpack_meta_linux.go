package image

import (
	"archive/tar"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// fdMeta sets owner, mode and xattrs through an open fd. chown comes first:
// it clears set-id bits.
func (u *unpacker) fdMeta(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for name, value := range xattrs(hdr) {
		if err := unix.Fsetxattr(fd, name, []byte(value), 0); err != nil && !ignorableXattrErr(err) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

func (u *unpacker) pathXattrs(pfd int, base string, hdr *tar.Header) error {
	for name, value := range xattrs(hdr) {
		p := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
		if err := unix.Lsetxattr(p, name, []byte(value), 0); err != nil && !ignorableXattrErr(err) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// xattrs yields the entry's extended attributes from its PAX records,
// without overlayfs' own.
func xattrs(hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out
}

// ignorableXattrErr: a file system without xattr support (or a namespace
// the kernel refuses) loses the attribute, as tar does.
func ignorableXattrErr(err error) bool {
	return err == unix.ENOTSUP || err == unix.EOPNOTSUPP
}

func setTimesAt(pfd int, base string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

func (u *unpacker) setTimes(rel string, mtime time.Time) error {
	if rel == "" {
		return setTimesAt(u.root, ".", mtime)
	}
	pfd, base, err := u.parent(rel, false)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return setTimesAt(pfd, base, mtime)
}
