package host

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

// maxSubPathLinks bounds the symlinks followed while resolving a sub path
// (the kernel's MAXSYMLINKS).
const maxSubPathLinks = 40

// CleanSubPath cleans a sub path lexically; "" and "." are the view's
// root (""). Absolute paths, NUL bytes and paths that climb out ("..",
// "a/../../x") are InvalidArgument.
func CleanSubPath(sub string) (string, error) {
	if sub == "" {
		return "", nil
	}
	if strings.ContainsRune(sub, 0) || path.IsAbs(sub) {
		return "", fmt.Errorf("%q must be a relative path: %w", sub, errdefs.ErrInvalidArgument)
	}
	c := path.Clean(sub)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q escapes the image: %w", sub, errdefs.ErrInvalidArgument)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// ResolveSubPath resolves sub inside the view mounted at root, following
// symlinks the way the image's own root would: an absolute target starts
// again from root (as securejoin does), but a ".." that would climb above
// root is refused rather than clamped. The result must be an existing
// directory. The view is read-only, so what is resolved stays as it is.
// (spec.ResolveInRoot, used for image files, clamps such a ".." instead:
// an image_sub_path must fail rather than quietly name another dir.)
func ResolveSubPath(root, sub string) (string, error) {
	clean, err := CleanSubPath(sub)
	if err != nil {
		return "", err
	}
	var resolved []string
	pending := strings.Split(clean, "/")
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) == 0 {
				return "", fmt.Errorf("%q escapes the image through a symlink: %w", sub, errdefs.ErrInvalidArgument)
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		p := filepath.Join(root, filepath.Join(append(resolved, c)...))
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return "", fmt.Errorf("%q does not exist in the image: %w", sub, errdefs.ErrInvalidArgument)
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = append(resolved, c)
			continue
		}
		if links++; links > maxSubPathLinks {
			return "", fmt.Errorf("%q: too many levels of symlinks: %w", sub, errdefs.ErrInvalidArgument)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = nil
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	p := filepath.Join(root, filepath.Join(resolved...))
	fi, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%q is not a directory: %w", sub, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// PopulateVolume copies what the rootfs has at containerPath into dir,
// keeping modes, owners and symlinks (devices and fifos are skipped).
// The path is resolved as the container sees it (an absolute symlink such
// as /var/run -> /run stays inside the rootfs), and everything is read
// through an os.Root, so nothing outside the rootfs is ever read. A path
// the image lacks leaves the volume empty.
func PopulateVolume(rootfs, containerPath, dir string) error {
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
