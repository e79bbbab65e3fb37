package e2e

import (
	"bufio"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// shimName is the shim binary's name: one shim per task (pause included).
const shimName = "cri-runtime-shim"

// leaks lists what the daemon left behind: under this run's directories,
// shim processes, mounts (overlay rootfs, pinned netns, bind mounts) and
// pinned netns files; on the host (hostLeaks), cgroups, veths on the run's
// bridge, host-local IP reservations, iptables rules and chains, and CNI
// cache entries. With ids, only what names one of them (a pod or container
// ID) counts, so a test can check its own objects while others still run;
// without, the host checks look for every id this run's daemons logged
// (runIDs), since the host is shared with other runs. An empty result
// means clean.
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
	hostIDs := ids
	if len(ids) == 0 {
		hostIDs = runIDs()
	}
	return append(out, hostLeaks(hostIDs)...)
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

// The leaks a pod or container can leave outside the run's directories, on
// the host: veth interfaces on the network's bridge, cgroups, host-local IP
// reservations, iptables rules and chains, and CNI cache entries. Other runs
// (and other daemons) share the bridge, the cgroup parents, the IPAM dir and
// iptables, so every check here is scoped by object ids: the ones a test
// names, or with none, every id this run's daemons ever logged (runIDs).

// cniNet is the run's CNI network, as hack/install-cni-config.sh wrote it
// into <tmp>/cni/net.d.
type cniNet struct {
	name    string // the network name: iptables comments and the IPAM dir
	bridge  string // the bridge plugin's bridge
	dataDir string // host-local's dir: <dataDir>/<name>/<ip> names the container
}

// runNetwork reads the first config (in name order, as the daemon does) of
// the run's CNI conf dir. ok is false when there is none (E2E_DAEMON_CONFIG
// with a network elsewhere): the network checks are then skipped.
func runNetwork() (n cniNet, ok bool) {
	files, _ := filepath.Glob(filepath.Join(env.tmp, "cni", "net.d", "*"))
	sort.Strings(files)
	for _, f := range files {
		if ext := filepath.Ext(f); ext != ".conflist" && ext != ".conf" && ext != ".json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		type ipam struct {
			Type    string `json:"type"`
			DataDir string `json:"dataDir"`
		}
		type plugin struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			IPAM   ipam   `json:"ipam"`
		}
		var conf struct {
			Name    string   `json:"name"`
			Plugins []plugin `json:"plugins"`
			plugin
		}
		if json.Unmarshal(data, &conf) != nil || conf.Name == "" {
			continue
		}
		plugins := conf.Plugins
		if len(plugins) == 0 { // a single-plugin .conf
			plugins = []plugin{conf.plugin}
		}
		n = cniNet{name: conf.Name, dataDir: "/var/lib/cni/networks"}
		for _, p := range plugins {
			if p.Type != "bridge" {
				continue
			}
			n.bridge = p.Bridge
			if n.bridge == "" {
				n.bridge = "cni0" // the bridge plugin's default
			}
			if p.IPAM.Type == "host-local" && p.IPAM.DataDir != "" {
				n.dataDir = p.IPAM.DataDir
			}
		}
		return n, true
	}
	return cniNet{}, false
}

// hostLeaks lists what names one of ids outside the run's dirs. ids must
// not be empty: without ids nothing on the shared host can be told apart.
func hostLeaks(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	var out []string
	for _, d := range cgroupDirs(ids) {
		out = append(out, "cgroup: "+d)
	}
	n, ok := runNetwork()
	if !ok {
		return out
	}
	rememberNet()
	reserved := reservations(n, ids)
	for _, r := range reserved {
		out = append(out, fmt.Sprintf("IP reservation %s (%s) for %.12s", r.file, r.ip, r.id))
	}
	for _, v := range veths(n, ids) {
		out = append(out, v)
	}
	for _, r := range iptablesRules(n, ids, reserved) {
		out = append(out, "iptables: "+r)
	}
	for _, f := range cniCacheEntries(ids) {
		out = append(out, "CNI cache entry: "+f)
	}
	return out
}

// cgroupHierarchies are where runc makes a container's cgroup on this
// (cgroup v1, hybrid) host; on a v2 host /sys/fs/cgroup itself is walked.
var cgroupHierarchies = []string{"memory", "cpu", "pids", "systemd", "unified"}

// cgroupDirs lists cgroup directories whose name contains one of ids:
// runc's cgroupsPath is "<parent>/<id>" (cgroupfs; the parent is the pod's
// cgroup parent or /cri-runtime) or "<slice>:cri-runtime:<id>" (systemd,
// a "cri-runtime-<id>.scope"), so the whole hierarchy is walked rather than
// guessing the parent; it is small.
func cgroupDirs(ids []string) []string {
	roots := []string{}
	for _, h := range cgroupHierarchies {
		if fi, err := os.Stat(filepath.Join("/sys/fs/cgroup", h)); err == nil && fi.IsDir() {
			roots = append(roots, filepath.Join("/sys/fs/cgroup", h))
		}
	}
	if len(roots) == 0 {
		roots = []string{"/sys/fs/cgroup"}
	}
	var out []string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if p != root && matchesAny(d.Name(), ids) {
				out = append(out, p)
				return fs.SkipDir
			}
			return nil
		})
	}
	return out
}

type reservation struct{ file, ip, id string }

// reservations lists host-local's reservation files of the network that
// name one of ids: <dataDir>/<network>/<ip> holds "<container id>\n<ifname>".
func reservations(n cniNet, ids []string) []reservation {
	dir := filepath.Join(n.dataDir, n.name)
	entries, _ := os.ReadDir(dir)
	var out []reservation
	for _, e := range entries {
		if e.IsDir() || e.Name() == "lock" || strings.HasPrefix(e.Name(), "last_reserved_ip") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		owner := strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0])
		if owner != "" && matchesAny(owner, ids) {
			out = append(out, reservation{file: filepath.Join(dir, e.Name()), ip: e.Name(), id: owner})
		}
	}
	return out
}

// netOf is what the CNI cache said of a pod while it existed: its host-side
// veth names and IPs. rememberNet fills it; the cache entry goes with the
// pod's network teardown, the veth and rules must go with it too.
var netOf = struct {
	sync.Mutex
	m map[string]podNet
}{m: map[string]podNet{}}

type podNet struct {
	veths []string
	ips   []string
}

// cacheResults is the run's CNI result cache (the daemon's cache_dir is
// <root>/cni; libcni keeps results/<network>-<container id>-<ifname>).
func cacheResults() string { return filepath.Join(env.root, "cni", "results") }

// rememberNet records the veths and IPs of every pod the run's CNI cache
// knows now. Call it while pods exist (the durability tests do, and so
// does the teardown before removing everything) so a leaked veth can still
// be tied to its pod after the cache entry is gone.
func rememberNet() {
	entries, _ := os.ReadDir(cacheResults())
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(cacheResults(), e.Name()))
		if err != nil {
			continue
		}
		var c struct {
			ContainerID string `json:"containerId"`
			Result      struct {
				Interfaces []struct {
					Name    string `json:"name"`
					Sandbox string `json:"sandbox"`
				} `json:"interfaces"`
				IPs []struct {
					Address string `json:"address"`
				} `json:"ips"`
			} `json:"result"`
		}
		if json.Unmarshal(data, &c) != nil || c.ContainerID == "" {
			continue
		}
		var pn podNet
		for _, i := range c.Result.Interfaces {
			// The host side of the pair: no sandbox, and not the bridge.
			if i.Sandbox == "" && strings.HasPrefix(i.Name, "veth") {
				pn.veths = append(pn.veths, i.Name)
			}
		}
		for _, ip := range c.Result.IPs {
			pn.ips = append(pn.ips, strings.SplitN(ip.Address, "/", 2)[0])
		}
		netOf.Lock()
		netOf.m[c.ContainerID] = pn
		netOf.Unlock()
	}
}

// veths lists interfaces enslaved to the run's bridge that belonged to a
// pod of ids (as the CNI cache told, now or earlier).
func veths(n cniNet, ids []string) []string {
	brif := filepath.Join("/sys/class/net", n.bridge, "brif")
	var out []string
	netOf.Lock()
	defer netOf.Unlock()
	for id, pn := range netOf.m {
		if !matchesAny(id, ids) {
			continue
		}
		for _, v := range pn.veths {
			if _, err := os.Lstat(filepath.Join(brif, v)); err == nil {
				out = append(out, fmt.Sprintf("veth %s on bridge %s (pod %.12s)", v, n.bridge, id))
			}
		}
	}
	return out
}

// cniChain is the name the bridge and portmap plugins give a container's
// chain: prefix + sha512(network name + container id), 28 chars in all
// (github.com/containernetworking/plugins/pkg/utils.FormatChainName).
func cniChain(prefix, network, id string) string {
	sum := sha512.Sum512([]byte(network + id))
	return prefix + hex.EncodeToString(sum[:])[:28-len(prefix)]
}

// iptablesRules lists iptables-save lines (rules and chain declarations)
// that name one of ids: in a comment (the bridge's masquerade rules, the
// portmap's DNAT rules), through its chain, or through an IP that a
// reservation of one of ids still holds. An IP alone is matched only while
// it is reserved for one of ids: the pool is shared, and a released IP may
// already be another pod's.
func iptablesRules(n cniNet, ids []string, reserved []reservation) []string {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return nil
	}
	var needles []string
	for _, id := range ids {
		if id == "" {
			continue
		}
		needles = append(needles, id)
		for _, prefix := range []string{"CNI-", "CNI-DN-", "CNI-SN-"} {
			needles = append(needles, cniChain(prefix, n.name, id)+" ")
		}
	}
	for _, r := range reserved {
		needles = append(needles, " "+r.ip+"/32 ", "--to-destination "+r.ip+":")
	}
	var found []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text() + " "
		if !strings.HasPrefix(line, "-A ") && !strings.HasPrefix(line, ":") {
			continue
		}
		for _, nd := range needles {
			if strings.Contains(line, nd) {
				found = append(found, strings.TrimSpace(line))
				break
			}
		}
	}
	return found
}

// cniCacheEntries lists the run's CNI cache files of ids: the daemon's
// network teardown (CNI DEL) removes them.
func cniCacheEntries(ids []string) []string {
	entries, _ := os.ReadDir(cacheResults())
	var out []string
	for _, e := range entries {
		if matchesAny(e.Name(), ids) {
			out = append(out, filepath.Join(cacheResults(), e.Name()))
		}
	}
	return out
}

// logID matches an object id in the daemon's structured log lines.
var logID = regexp.MustCompile(`(?:podSandboxID|containerID|taskID|sandboxID|id)="([0-9a-f]{64})"`)

// runIDs lists every pod, container and task id this run's daemons logged.
// The log file may be shared with a concurrent run from the same checkout
// (both append to _output/e2e/daemon.log), so a line counts only when its
// klog pid is one of a daemon that served this run's root: its "Serving
// CRI" line names root="<env.root>".
func runIDs() []string {
	f, err := os.Open(filepath.Join(env.artifacts, "daemon.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	pids := map[string]bool{}
	seen := map[string]bool{}
	var out []string
	rootAttr := fmt.Sprintf("root=%q", env.root)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		// klog: "I1128 16:51:25.597836   25267 main.go:138] msg ..."
		if len(fields) < 4 || !strings.HasSuffix(fields[3], "]") {
			continue
		}
		pid := fields[2]
		if strings.Contains(line, `"Serving CRI"`) && strings.Contains(line, rootAttr) {
			pids[pid] = true
		}
		if !pids[pid] {
			continue
		}
		for _, m := range logID.FindAllStringSubmatch(line, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				out = append(out, m[1])
			}
		}
	}
	return out
}

// cleanHostLeaks removes what hostLeaks can safely remove: empty cgroup
// dirs (rmdir fails on a cgroup with processes) and the reservation files
// of ids. iptables rules and veths are only reported.
func cleanHostLeaks(ids []string, logf func(string, ...any)) {
	if len(ids) == 0 {
		return
	}
	dirs := cgroupDirs(ids)
	// Children before parents.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := os.Remove(d); err != nil {
			logf("remove cgroup %s: %v", d, err)
		}
	}
	if n, ok := runNetwork(); ok {
		reserved := reservations(n, ids)
		if err := cleanIPTables(n, ids, reserved); err != nil {
			logf("remove iptables rules: %v", err)
		}
		for _, r := range reserved {
			if err := os.Remove(r.file); err != nil {
				logf("remove IP reservation %s: %v", r.file, err)
			}
		}
	}
}

// cleanIPTables deletes the rules and chains iptablesRules finds for ids,
// table by table, through iptables-restore --noflush (which takes -D, -F
// and -X lines, quoting and all, as iptables-save prints them).
func cleanIPTables(n cniNet, ids []string, reserved []reservation) error {
	leaked := map[string]bool{}
	for _, l := range iptablesRules(n, ids, reserved) {
		leaked[l] = true
	}
	if len(leaked) == 0 {
		return nil
	}
	for _, table := range []string{"nat", "filter", "mangle"} {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			continue
		}
		var dels, chains []string
		for _, line := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, "-A ") && leaked[strings.TrimSpace(line)]:
				dels = append(dels, "-D "+strings.TrimPrefix(line, "-A "))
			case strings.HasPrefix(line, ":") && leaked[strings.TrimSpace(line)]:
				chains = append(chains, strings.Fields(strings.TrimPrefix(line, ":"))[0])
			}
		}
		if len(dels)+len(chains) == 0 {
			continue
		}
		var in strings.Builder
		fmt.Fprintf(&in, "*%s\n", table)
		for _, d := range dels {
			in.WriteString(d + "\n")
		}
		for _, c := range chains {
			fmt.Fprintf(&in, "-F %s\n", c)
		}
		for _, c := range chains {
			fmt.Fprintf(&in, "-X %s\n", c)
		}
		in.WriteString("COMMIT\n")
		cmd := exec.Command("iptables-restore", "--noflush")
		cmd.Stdin = strings.NewReader(in.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("iptables-restore (%s): %v: %s", table, err, out)
		}
	}
	return nil
}
