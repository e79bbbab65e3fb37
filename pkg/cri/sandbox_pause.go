package cri

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
