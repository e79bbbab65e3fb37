package image

import (
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// cleanName turns a tar name into a path relative to the layer root ("" is
// the root itself), refusing absolute names and any ".." component.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", invalid("absolute path")
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", invalid(`path has a ".." component`)
		}
	}
	p := path.Clean(name)
	if p == "." {
		return "", nil
	}
	return p, nil
}

const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

func openBeneath(dirfd int, rel string) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{
			Flags:   unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC,
			Resolve: resolveFlags,
		})
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return fd, explainResolve(err)
	}
}

func explainResolve(err error) error {
	switch err {
	case nil:
		return nil
	case unix.ELOOP:
		return invalid("path goes through a symlink")
	case unix.EXDEV:
		return invalid("path leaves the layer")
	case unix.ENOTDIR:
		return invalid("a parent is not a directory")
	}
	return err
}

// dir opens the directory rel (created with 0755 parents when missing,
// as tar does for entries whose parents were not listed).
func (u *unpacker) dir(rel string, create bool) (int, error) {
	if rel == "" || rel == "." {
		return unix.Dup(u.root)
	}
	fd, err := openBeneath(u.root, rel)
	if err != unix.ENOENT || !create {
		return fd, err
	}
	cur, err := unix.Dup(u.root)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(rel, "/") {
		if err := unix.Mkdirat(cur, c, 0o755); err != nil && err != unix.EEXIST {
			unix.Close(cur)
			return -1, err
		} else if err == nil {
			if err := u.addInode(); err != nil {
				unix.Close(cur)
				return -1, err
			}
		}
		next, err := openBeneath(cur, c)
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// parent opens the parent directory of rel and returns it with rel's base.
func (u *unpacker) parent(rel string, create bool) (int, string, error) {
	fd, err := u.dir(path.Dir(rel), create)
	return fd, path.Base(rel), err
}

// replace opens rel's parent (made if missing) and removes whatever a
// lower entry of the same layer left at rel, so that a non-directory can
// be created there. The caller closes the returned fd.
func (u *unpacker) replace(rel string) (int, string, error) {
	pfd, base, err := u.parent(rel, true)
	if err != nil {
		return -1, "", err
	}
	if err := removeAt(pfd, base, false); err != nil {
		unix.Close(pfd)
		return -1, "", err
	}
	return pfd, base, nil
}

// removeAt removes base in pfd unless it is a directory and keepDir is set.
// It reports whether something was kept through the error being nil and
// the entry still existing.
func removeAt(pfd int, base string, keepDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(pfd, base, 0)
	}
	if keepDir {
		return nil
	}
	// Replace a directory by a non-directory: remove it recursively.
	// os.RemoveAll works with *at calls and never follows symlinks; the
	// /proc path names pfd itself.
	return os.RemoveAll(fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base))
}
