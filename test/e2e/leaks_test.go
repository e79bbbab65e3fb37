package e2e

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// shimName is the shim binary's name: one shim per task (pause included).
const shimName = "cri-runtime-shim"

// leaks lists what the daemon left behind under this run's directories:
// shim processes, mounts (overlay rootfs, pinned netns, bind mounts) and
// pinned netns files. With ids, only what names one of them (a pod or
// container ID) counts, so a test can check its own objects while others
// still run. An empty result means clean.
func leaks(ids ...string) []string {
	var out []string
	for _, p := range ourShims(ids...) {
		out = append(out, fmt.Sprintf("shim process %d: %s", p.pid, p.cmdline))
	}
	for _, m := range mountsUnder(env.tmp, ids...) {
		if m == netnsDir() {
			continue // the daemon's own bind mount of the dir, kept on purpose
		}
		out = append(out, "mount: "+m)
	}
	for _, n := range netnsFiles(ids...) {
		out = append(out, "netns file: "+n)
	}
	return out
}

func matchesAny(s string, ids []string) bool {
	if len(ids) == 0 {
		return true
	}
	for _, id := range ids {
		if id != "" && strings.Contains(s, id) {
			return true
		}
	}
	return false
}

type proc struct {
	pid     int
	cmdline string
}

// ourShims finds cri-runtime-shim processes that belong to this run: their
// command line or working directory lies under the run's temp dir, or their
// binary is the one this run built. Shims of other daemons on the machine
// are never listed (and so never killed).
func ourShims(ids ...string) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		exe, _ := os.Readlink(filepath.Join(dir, "exe"))
		raw, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		argv0 := strings.SplitN(cmdline, " ", 2)[0]
		if !strings.HasPrefix(filepath.Base(exe), shimName) && filepath.Base(argv0) != shimName {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join(dir, "cwd"))
		ours := strings.Contains(cmdline, env.tmp) || under(cwd, env.tmp) ||
			(os.Getenv("CRI_RUNTIME_BIN") == "" && under(exe, env.binDir))
		if ours && matchesAny(cmdline+" "+cwd, ids) {
			out = append(out, proc{pid: pid, cmdline: cmdline})
		}
	}
	return out
}

func under(p, dir string) bool {
	return dir != "" && (p == dir || strings.HasPrefix(p, dir+"/"))
}

// mountsUnder lists mount points below dir, deepest first (the order to
// unmount them in).
func mountsUnder(dir string, ids ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if under(mp, dir) && matchesAny(mp, ids) {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// netnsFiles lists files under the state dir that sit in a directory named
// like netns: pinned network namespaces that outlived their pod.
func netnsFiles(ids ...string) []string {
	var out []string
	_ = filepath.WalkDir(env.state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if strings.Contains(filepath.Dir(p), "netns") && matchesAny(p, ids) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// shmSegments maps the ids of the System V shared memory segments that
// exist now to their size in bytes.
func shmSegments() map[int]bool {
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		return map[int]bool{}
	}
	defer f.Close()
	out := map[int]bool{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		id, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		// critest's HostIpc specs create 1 MiB segments (ipcmk -M 1048576)
		// and never remove them; nattch 0 means nobody uses it any more.
		out[id] = fields[3] == "1048576" && fields[6] == "0"
	}
	return out
}

// netnsDir is where the daemon pins network namespaces; it bind-mounts the
// dir on itself, and that mount is not a leak.
func netnsDir() string { return filepath.Join(env.state, "netns") }
