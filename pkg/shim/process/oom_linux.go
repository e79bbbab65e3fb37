package process

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const cgroupRoot = "/sys/fs/cgroup"

// oomWatcher notices OOM kills in the container's memory cgroup: on cgroup
// v1 through an eventfd on memory.oom_control, and on both versions by the
// oom_kill counter, read again when the init exits (before runc delete
// removes the cgroup).
type oomWatcher struct {
	counterFile string // memory.oom_control (v1) or memory.events (v2)
	efd         *os.File
	seen        atomic.Bool
	log         *slog.Logger
}

// watchOOM starts watching the memory cgroup at cgroupsPath (config.json's
// linux.cgroupsPath). It returns nil when the cgroup cannot be found: a
// systemd-style path, no path, or no memory controller.
func watchOOM(cgroupsPath string, log *slog.Logger) *oomWatcher {
	if cgroupsPath == "" || strings.Contains(cgroupsPath, ":") {
		return nil
	}
	if v1 := filepath.Join(cgroupRoot, "memory", cgroupsPath); exists(filepath.Join(v1, "memory.oom_control")) {
		w := &oomWatcher{counterFile: filepath.Join(v1, "memory.oom_control"), log: log}
		if err := w.listenV1(v1); err != nil {
			log.Warn("Could not watch OOM events", "path", v1, "err", err)
		}
		return w
	}
	if exists(filepath.Join(cgroupRoot, "cgroup.controllers")) {
		if v2 := filepath.Join(cgroupRoot, cgroupsPath, "memory.events"); exists(v2) {
			return &oomWatcher{counterFile: v2, log: log}
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// listenV1 registers an eventfd for OOM notifications and starts its reader;
// the reader ends when close closes the eventfd.
func (w *oomWatcher) listenV1(dir string) error {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	efd := os.NewFile(uintptr(fd), "oom-eventfd")
	ctl, err := os.Open(w.counterFile)
	if err != nil {
		efd.Close()
		return err
	}
	defer ctl.Close() // the registration holds its own reference
	reg := fmt.Sprintf("%d %d", efd.Fd(), ctl.Fd())
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
		efd.Close()
		return fmt.Errorf("register eventfd: %w", err)
	}
	w.efd = efd
	go func() {
		buf := make([]byte, 8)
		for {
			if _, err := efd.Read(buf); err != nil {
				return // closed
			}
			// The eventfd also fires when the cgroup is removed: only a
			// counted kill is an OOM kill.
			if n, err := readOOMKills(w.counterFile); err == nil && n > 0 {
				w.seen.Store(true)
				w.log.Info("Saw an OOM kill in the container's cgroup")
			} else if err != nil {
				return
			}
		}
	}()
	return nil
}

// killed reports whether an OOM kill happened in the cgroup.
func (w *oomWatcher) killed() bool {
	if w == nil {
		return false
	}
	if w.seen.Load() {
		return true
	}
	n, err := readOOMKills(w.counterFile)
	return err == nil && n > 0
}

func (w *oomWatcher) close() {
	if w != nil && w.efd != nil {
		w.efd.Close()
	}
}

// readOOMKills reads the "oom_kill N" line of memory.oom_control (v1) or
// memory.events (v2).
func readOOMKills(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == "oom_kill" {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, nil
}
