package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// The unpacker writes one layer's tar stream into an empty directory and
// converts OCI whiteouts into overlayfs whiteouts on the way:
//
//	.wh.<name>     → a 0/0 character device <name>
//	.wh..wh..opq   → trusted.overlay.opaque=y on the directory
//
// It trusts nothing in the stream. Every entry is addressed relative to a
// file descriptor of the layer root: the parent directory is opened with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), and the final component is
// created with O_EXCL/O_NOFOLLOW semantics after removing whatever was
// there. So a symlink written earlier in the same layer is never followed
// (an entry whose path goes through one fails), absolute names and ".."
// components are refused, and hard links may only point at entries already
// in the layer. overlayfs' own xattrs (trusted.overlay.*, user.overlay.*)
// are never taken from a tar: a redirect or metacopy xattr could make the
// mounted rootfs show files from outside the layer.

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
	paxXattrPrefix = "SCHILY.xattr."
)

type unpackOptions struct {
	maxEntrySize int64 // a regular file declaring more is refused
	maxInodes    int64 // the entry creating one more inode is refused
}

// unpackStats is what the layer costs on disk, for ImageFsInfo.
type unpackStats struct {
	Bytes  int64 `json:"bytes"`
	Inodes int64 `json:"inodes"`
}

type unpacker struct {
	root  int // O_DIRECTORY fd of the layer root
	opts  unpackOptions
	stats unpackStats
	// dirTimes are applied after the last entry: writing into a directory
	// changes its mtime.
	dirTimes map[string]time.Time
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// unpackTar writes the uncompressed layer tar r into the existing, empty
// directory dir. An error leaves a partly written dir for the caller to
// remove; nothing is ever written outside dir.
func unpackTar(ctx context.Context, dir string, r io.Reader, opts unpackOptions) (unpackStats, error) {
	root, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return unpackStats{}, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	u := &unpacker{root: root, opts: opts, dirTimes: map[string]time.Time{}}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return u.stats, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.stats, fmt.Errorf("read layer tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return u.stats, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	for rel, mtime := range u.dirTimes {
		if err := u.setTimes(rel, mtime); err != nil {
			return u.stats, fmt.Errorf("layer entry %q: set mtime: %w", rel, err)
		}
	}
	return u.stats, nil
}

// addInode counts an inode just created and refuses the first one past
// the limit (the caller removes the whole layer directory).
func (u *unpacker) addInode() error {
	u.stats.Inodes++
	if u.stats.Inodes > u.opts.maxInodes {
		return limitErrorf("layer creates more than %d inodes, the limit (max_layer_inodes)", u.opts.maxInodes)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return invalid("the layer root must be a directory")
		}
		return u.dirEntry(hdr, "")
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(rel, base)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.dirEntry(hdr, rel)
	case tar.TypeReg, tar.TypeRegA:
		return u.regular(hdr, rel, r)
	case tar.TypeSymlink:
		return u.symlink(hdr, rel)
	case tar.TypeLink:
		return u.hardlink(hdr, rel)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return u.device(hdr, rel)
	case tar.TypeXGlobalHeader:
		return nil
	}
	return invalid("unsupported tar entry type %q", hdr.Typeflag)
}

func (u *unpacker) whiteout(rel, base string) error {
	pfd, _, err := u.parent(rel, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if base == whiteoutOpaque {
		return unix.Fsetxattr(pfd, opaqueXattr, []byte("y"), 0)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // aufs hard-link bookkeeping (.wh..wh.plnk …): not content
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return invalid("malformed whiteout")
	}
	if err := removeAt(pfd, name, false); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("mknod whiteout: %w", err)
	}
	return u.addInode()
}

func (u *unpacker) dirEntry(hdr *tar.Header, rel string) error {
	var fd int
	var err error
	if rel == "" {
		fd, err = unix.Dup(u.root)
	} else {
		pfd, base, perr := u.parent(rel, true)
		if perr != nil {
			return perr
		}
		defer unix.Close(pfd)
		if err := removeAt(pfd, base, true); err != nil {
			return err
		}
		if err := unix.Mkdirat(pfd, base, 0o700); err == nil {
			if err := u.addInode(); err != nil {
				return err
			}
		} else if err != unix.EEXIST {
			return err
		}
		fd, err = openBeneath(pfd, base)
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := u.fdMeta(fd, hdr); err != nil {
		return err
	}
	u.dirTimes[rel] = hdr.ModTime
	return nil
}

func (u *unpacker) regular(hdr *tar.Header, rel string, r io.Reader) error {
	if hdr.Size < 0 {
		return invalid("file declares %d bytes", hdr.Size)
	}
	if hdr.Size > u.opts.maxEntrySize {
		return limitErrorf("file declares %d bytes, the limit is %d (max_entry_size)", hdr.Size, u.opts.maxEntrySize)
	}
	pfd, base, err := u.replace(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if err := u.addInode(); err != nil {
		return err
	}
	bufp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(onlyWriter{f}, io.LimitReader(r, hdr.Size), *bufp)
	copyBufs.Put(bufp)
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return invalid("stream ended after %d of %d bytes", n, hdr.Size)
	}
	u.stats.Bytes += n
	if err := u.fdMeta(int(f.Fd()), hdr); err != nil {
		return err
	}
	return setTimesAt(pfd, base, hdr.ModTime)
}

// onlyWriter hides *os.File's ReadFrom, whose copy_file_range attempt is
// useless for a tar reader and costs a syscall per file.
type onlyWriter struct{ io.Writer }

func (u *unpacker) symlink(hdr *tar.Header, rel string) error {
	pfd, base, err := u.replace(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	// The target is stored as written: it is resolved later, inside the
	// container's root, never by us.
	if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
		return err
	}
	if err := u.addInode(); err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := u.pathXattrs(pfd, base, hdr); err != nil {
		return err
	}
	return setTimesAt(pfd, base, hdr.ModTime)
}

func (u *unpacker) hardlink(hdr *tar.Header, rel string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if target == "" || target == rel {
		return invalid("hard link to %q", hdr.Linkname)
	}
	tfd, tbase, err := u.parent(target, false)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hard link target %q is not in the layer: %w", hdr.Linkname, errors.Join(err, errdefs.ErrInvalidArgument))
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return invalid("hard link to directory %q", hdr.Linkname)
	}
	pfd, base, err := u.replace(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	// flags 0: a symlink target is linked itself, never followed.
	return unix.Linkat(tfd, tbase, pfd, base, 0)
}

func (u *unpacker) device(hdr *tar.Header, rel string) error {
	pfd, base, err := u.replace(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	if err := unix.Mknodat(pfd, base, mode, dev); err != nil {
		return err
	}
	if err := u.addInode(); err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	// mknod honors the umask and chown may clear set-id bits.
	if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
		return err
	}
	if err := u.pathXattrs(pfd, base, hdr); err != nil {
		return err
	}
	return setTimesAt(pfd, base, hdr.ModTime)
}
