package stats

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
)

// procSample is what a container's processes hold, read from /proc as
// cAdvisor reads it: the processes of the cgroup (cgroup.procs), their
// open file descriptors and, among those, sockets.
type procSample struct {
	processes, fds, sockets uint64
	// openFilesSoft is the soft RLIMIT_NOFILE of the container's init
	// process; ok is false if it is unlimited or unreadable.
	openFilesSoft   uint64
	openFilesSoftOK bool
}

// readProcSample reads the processes of cgroup p, and the limits of the
// container's init process initPid. Processes that exit during the walk
// are skipped.
func readProcSample(p string, initPid int) (procSample, error) {
	pids, err := cgroupProcs(p)
	if err != nil {
		return procSample{}, err
	}
	out := procSample{processes: uint64(len(pids))}
	for _, pid := range pids {
		fds, sockets := countFDs(fmt.Sprintf("/proc/%d/fd", pid))
		out.fds += fds
		out.sockets += sockets
	}
	if initPid > 0 {
		if f, err := os.Open(fmt.Sprintf("/proc/%d/limits", initPid)); err == nil {
			out.openFilesSoft, out.openFilesSoftOK = parseOpenFilesSoft(f)
			f.Close()
		}
	}
	return out, nil
}

// cgroupProcs lists the pids in a cgroup: the pids hierarchy's
// cgroup.procs on v1, the unified one on v2.
func cgroupProcs(p string) ([]int, error) {
	dir := filepath.Join(cgroupRoot, p)
	if cgroups.Mode() != cgroups.Unified {
		dir = filepath.Join(cgroupRoot, "pids", p)
	}
	f, err := os.Open(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("processes of cgroup %s: %w", p, err)
	}
	defer f.Close()
	return parsePids(f)
}

func parsePids(r io.Reader) ([]int, error) {
	var out []int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil {
			return nil, fmt.Errorf("cgroup.procs: %q: %w", line, err)
		}
		out = append(out, pid)
	}
	return out, sc.Err()
}

// countFDs counts the entries of a /proc/<pid>/fd directory, and those
// that are sockets ("socket:[inode]"). A vanished process counts 0.
func countFDs(dir string) (fds, sockets uint64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		fds++
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(target, "socket:[") {
			sockets++
		}
	}
	return fds, sockets
}

// parseOpenFilesSoft reads the soft "Max open files" of a /proc/<pid>/limits
// file, the one ulimit cAdvisor reports (as "max_open_files"); ok is false
// when it is "unlimited" or missing.
func parseOpenFilesSoft(r io.Reader) (soft uint64, ok bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, found := strings.CutPrefix(sc.Text(), "Max open files")
		if !found {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 1 {
			return 0, false
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}
