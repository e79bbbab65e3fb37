package cri

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// pauseName is the pause program's file name, next to the daemon or on PATH.
const pauseName = "cri-runtime-pause"

// pauseRootfs is the read-only root of every pause process: the pause
// program and the mount points runc needs. Shared by all sandboxes.
func (s *Service) pauseRootfs() string { return filepath.Join(s.rootDir, "pause", "rootfs") }

// pauseArgs is the pause process's argv inside pauseRootfs.
var pauseArgs = []string{"/pause"}

// preparePauseRootfs (re)builds pauseRootfs from the pause program.
func (s *Service) preparePauseRootfs() error {
	src := s.pauseBinary
	if src == "" {
		var err error
		if src, err = findPause(); err != nil {
			return err
		}
	}
	root := s.pauseRootfs()
	for _, d := range []string{"proc", "dev", "sys", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open pause program: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(root, ".pause-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(root, "pause"))
}

func findPause() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), pauseName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(pauseName)
	if err != nil {
		return "", fmt.Errorf("find %s next to the daemon or on PATH: %w", pauseName, err)
	}
	return p, nil
}

// pauseRoot is the rootfs and argv of a sandbox's pause process: the pause
// that ships with cri-runtime, or, when sandbox_image is set, that image
// (pulled if missing) with its entrypoint and cmd.
func (s *Service) pauseRoot(ctx context.Context, undo *rollback, meta sandboxMeta) (string, []string, error) {
	id, ref, gid := meta.ID, meta.PauseImage, podRootGID(meta.config)
	if ref == "" {
		return s.pauseRootfs(), pauseArgs, nil
	}
	img, err := s.images.Get(ctx, ref)
	if errdefs.IsNotFound(err) {
		klog.FromContext(ctx).V(2).Info("Pulling the sandbox image", "image", ref)
		img, err = s.images.Pull(ctx, ref, nil)
	}
	if err != nil {
		return "", nil, fmt.Errorf("sandbox image %q: %w", ref, err)
	}
	args := append(append([]string{}, img.Config.Entrypoint...), img.Config.Cmd...)
	if len(args) == 0 {
		return "", nil, fmt.Errorf("sandbox image %q has no entrypoint or cmd: %w", ref, errdefs.ErrFailedPrecondition)
	}
	// The pause creates the pod's user namespace: its layers cannot be
	// idmapped into it beforehand, but its dir opens to the pod's root.
	rootfs, err := s.mountRootfs(ctx, rootfsRequest{id: id, imageID: img.ID, gid: gid}, undo)
	if err != nil {
		return "", nil, err
	}
	return rootfs, args, nil
}

// releaseSandboxImageRootfs unmounts and releases a pause's rootfs made
// from sandbox_image; the built-in pause has none.
func (s *Service) releaseSandboxImageRootfs(ctx context.Context, sb *sandbox) error {
	if sb.Meta.PauseImage == "" {
		return nil
	}
	id := sb.Meta.ID
	if err := s.removeRootfsMount(id); err != nil {
		return err
	}
	if err := s.images.RemoveRootfs(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}
