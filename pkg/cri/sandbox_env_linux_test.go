package cri

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/network"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
	"github.com/cri-runtime/cri-runtime/pkg/store"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

// Integration tests of pod sandboxes with real runc, shims, CNI plugins,
// mounts and cgroups, through a real gRPC server on a unix socket. Each
// test has its own state/root dirs under /tmp (shim socket paths are
// limited to 108 bytes), CNI conf dir, bridge, subnet, host-local data dir
// and cgroup parent; t.Cleanup removes all of it even when a test fails.

var cniPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

func requireSandboxDeps(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs pause containers with runc, creates netns, bridges and iptables rules")
	}
	for _, b := range []string{"runc", "gcc", "iptables-save", "iptables-restore", "ip", "nsenter", "ping"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not on PATH (hack/install-deps.sh installs it)", b)
		}
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		found := false
		for _, d := range cniPluginDirs {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				found = true
			}
		}
		if !found {
			t.Skipf("CNI plugin %q not in %v: apt-get install containernetworking-plugins", p, cniPluginDirs)
		}
	}
}

// buildBinaries builds the shim and the pause program into dir.
func buildBinaries(t *testing.T, dir string) (shim, pause string) {
	t.Helper()
	shim, pause = filepath.Join(dir, "cri-runtime-shim"), filepath.Join(dir, pauseName)
	if out, err := exec.Command("go", "build", "-o", shim, "github.com/cri-runtime/cri-runtime/cmd/cri-runtime-shim").CombinedOutput(); err != nil {
		t.Fatalf("build shim: %v\n%s", err, out)
	}
	src, err := filepath.Abs("../../cmd/cri-runtime-pause/pause.c")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-static", "-Os", "-s", "-o", pause, src).CombinedOutput(); err != nil {
		t.Fatalf("build pause: %v\n%s", err, out)
	}
	return shim, pause
}

// testEnv is one daemon's worth of dirs and the Service over them; close
// and open again is a daemon restart.
type testEnv struct {
	t                 *testing.T
	dir               string
	state, root       string
	confDir, dataDir  string
	cacheDir          string
	netName, bridge   string
	subnet            string
	cgroupParent      string
	shim, pause       string
	withoutNetworkCfg bool
	failingPlugin     bool            // a last plugin whose ADD fails
	withImages        bool            // a real image service over a registry with busybox (container_exec_linux_test.go)
	registry          string          // that registry's address
	cfgMods           []func(*Config) // changes to the [cri] config

	st     *store.Store
	images *image.Service // nil unless withImages
	rt     *runtime.Runtime
	netw   *network.Manager
	svc    *Service
	srv    *grpc.Server
	conn   *grpc.ClientConn
	client runtimeapi.RuntimeServiceClient
}

type envOption func(*testEnv)

// withFailingPlugin ends the network config with a plugin whose ADD
// always fails, after bridge and host-local did their part.
func withFailingPlugin() envOption { return func(e *testEnv) { e.failingPlugin = true } }

// withoutNetworkConfig leaves the CNI conf dir empty.
func withoutNetworkConfig() envOption { return func(e *testEnv) { e.withoutNetworkCfg = true } }

func newTestEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	requireSandboxDeps(t)
	dir, err := os.MkdirTemp("/tmp", "crs")
	if err != nil {
		t.Fatal(err)
	}
	tag := testutil.RandHex(t, 4)
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{
		t: t, dir: dir,
		state: filepath.Join(dir, "s"), root: filepath.Join(dir, "r"),
		confDir: filepath.Join(dir, "net.d"), dataDir: filepath.Join(dir, "ipam"), cacheDir: filepath.Join(dir, "cni"),
		netName: "crs-" + tag, bridge: "crs" + tag,
		subnet:       fmt.Sprintf("10.%d.%d.0/24", 150+int(b[0])%50, b[1]),
		cgroupParent: "/crs-" + tag,
	}
	for _, o := range opts {
		o(e)
	}
	t.Cleanup(e.cleanup)
	e.shim, e.pause = buildBinaries(t, dir)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string]string{"failadd": failAddPlugin, "runc-failcreate": failCreateRunc} {
		if err := os.WriteFile(filepath.Join(dir, "bin", name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(e.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if !e.withoutNetworkCfg {
		e.writeNetworkConfig()
	}
	if e.withImages {
		e.registry = startBusyboxRegistry(t)
	}
	e.open()
	return e
}

const failAddPlugin = `#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) echo '{"cniVersion":"1.0.0","code":999,"msg":"injected ADD failure"}'; exit 1 ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
esac
exit 0
`

// failCreateRunc is runc, except that create fails.
const failCreateRunc = `#!/bin/sh
for a; do [ "$a" = create ] && { echo "injected create failure" >&2; exit 1; }; done
exec runc "$@"
`

func (e *testEnv) binDirs() []string {
	return append([]string{filepath.Join(e.dir, "bin")}, cniPluginDirs...)
}

func (e *testEnv) writeNetworkConfig() {
	extra := ""
	if e.failingPlugin {
		extra = `,
    {"type": "failadd"}`
	}
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}%s
  ]
}`, e.netName, e.bridge, e.dataDir, e.subnet, extra)
	if err := os.WriteFile(filepath.Join(e.confDir, "10-test.conflist"), []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) netnsDir() string { return filepath.Join(e.state, "netns") }

// open starts a daemon over the env's dirs: store, task runtime (restored),
// network, Service (started) and a gRPC server with the interceptors.
func (e *testEnv) open() {
	t := e.t
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	for _, d := range []string{e.state, e.root} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if e.st, err = store.Open(filepath.Join(e.root, "meta.db")); err != nil {
		t.Fatal(err)
	}
	if e.rt, err = runtime.New(e.state, e.st, runtime.Config{ShimBinary: e.shim}); err != nil {
		t.Fatal(err)
	}
	if e.netw, err = network.New(network.Config{ConfDir: e.confDir, BinDirs: e.binDirs(), CacheDir: e.cacheDir, NetNSDir: e.netnsDir()}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Runtimes = map[string]RuntimeHandler{
		"runc":       {BinaryPath: "runc"},
		"failcreate": {BinaryPath: filepath.Join(e.dir, "bin", "runc-failcreate")},
	}
	for _, f := range e.cfgMods {
		f(&cfg)
	}
	// Sandboxes run the pause program that ships with cri-runtime; only
	// tests that create containers have an image service.
	var images imageService
	if e.withImages {
		e.images = e.openImages()
		images = e.images
	}
	if e.svc, err = New(cfg, e.rt, images, e.netw, e.st, WithStateDir(e.state), WithRootDir(e.root),
		WithNetNSDir(e.netnsDir()), WithPauseBinary(e.pause)); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(e.dir, "cri.sock")
	_ = os.Remove(sock)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = grpc.NewServer(grpc.ChainUnaryInterceptor(UnaryInterceptor(e.svc)), grpc.ChainStreamInterceptor(StreamInterceptor(e.svc)))
	e.svc.Register(e.srv)
	go func() { _ = e.srv.Serve(lis) }()
	if err := e.rt.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if e.conn, err = grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	e.client = runtimeapi.NewRuntimeServiceClient(e.conn)
}

// close stops the daemon; pause tasks and their shims keep running.
func (e *testEnv) close() {
	if e.conn != nil {
		e.conn.Close()
		e.conn = nil
	}
	if e.srv != nil {
		e.srv.Stop()
		e.srv = nil
	}
	if e.svc != nil {
		e.svc.Close()
		e.svc = nil
	}
	if e.rt != nil {
		e.rt.Close()
		e.rt = nil
	}
	if e.images != nil {
		e.images.Close()
		e.images = nil
	}
	if e.st != nil {
		e.st.Close()
		e.st = nil
	}
}

func (e *testEnv) restart() {
	e.t.Helper()
	e.close()
	e.open()
}

// cleanup removes whatever a failed test may have left: shims and their
// containers, netns and shm mounts, iptables rules of the test network,
// the bridge, cgroups, the dirs.
func (e *testEnv) cleanup() {
	e.close()
	for _, pid := range pidsWithCmdline("cri-runtime-shim", e.state+"/") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	runcRoot := filepath.Join(e.state, "runtime", "runc", taskNamespace)
	if entries, err := os.ReadDir(runcRoot); err == nil {
		for _, en := range entries {
			_ = exec.Command("runc", "--root", runcRoot, "delete", "--force", en.Name()).Run()
		}
	}
	for _, m := range mountsUnder(e.dir) {
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
	for i := 0; i < 10 && unix.Unmount(e.netnsDir(), unix.MNT_DETACH) == nil; i++ {
	}
	if out, err := exec.Command("iptables-save").Output(); err == nil {
		if restore := testutil.IPTablesCleanup(string(out), e.netName); restore != "" {
			cmd := exec.Command("iptables-restore", "--noflush", "-w")
			cmd.Stdin = strings.NewReader(restore)
			_ = cmd.Run()
		}
	}
	_ = exec.Command("ip", "link", "del", e.bridge).Run()
	for _, d := range cgroupDirs(e.cgroupParent) {
		entries, _ := os.ReadDir(d)
		for _, en := range entries {
			if en.IsDir() {
				_ = os.Remove(filepath.Join(d, en.Name()))
			}
		}
		_ = os.Remove(d)
	}
	_ = os.RemoveAll(e.dir)
}

// cgroupDirs are the cgroup v1 dirs of parent, one per hierarchy.
func cgroupDirs(parent string) []string {
	var out []string
	ctrls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctrls {
		d := filepath.Join("/sys/fs/cgroup", c.Name(), parent)
		if _, err := os.Stat(d); err == nil {
			out = append(out, d)
		}
	}
	return out
}

func pidsWithCmdline(parts ...string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		all := true
		for _, part := range parts {
			all = all && strings.Contains(string(data), part)
		}
		if all {
			var pid int
			fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

func mountsUnder(dir string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	// Deepest first, so that nested mounts go before their parents.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// podConfig is a minimal pod in the env's cgroup parent.
func (e *testEnv) podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "ns1", Uid: "uid-" + name},
		Hostname:     name,
		Labels:       map[string]string{"app": name, "env": "test"},
		Annotations:  map[string]string{"note": "sandbox test"},
		LogDirectory: filepath.Join(e.dir, "logs", name),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: e.cgroupParent},
	}
}

func (e *testEnv) run(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) string {
	e.t.Helper()
	resp, err := e.client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		e.t.Fatalf("RunPodSandbox(%s): %v", cfg.GetMetadata().GetName(), err)
	}
	return resp.GetPodSandboxId()
}

func (e *testEnv) status(ctx context.Context, id string) *runtimeapi.PodSandboxStatusResponse {
	e.t.Helper()
	resp, err := e.client.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		e.t.Fatalf("PodSandboxStatus(%s): %v", id, err)
	}
	return resp
}

func (e *testEnv) stopAndRemove(ctx context.Context, id string) {
	e.t.Helper()
	if _, err := e.client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		e.t.Fatalf("StopPodSandbox(%s): %v", id, err)
	}
	if _, err := e.client.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		e.t.Fatalf("RemovePodSandbox(%s): %v", id, err)
	}
}

func sandboxInfoOf(t *testing.T, resp *runtimeapi.PodSandboxStatusResponse) (pid int, netns string) {
	t.Helper()
	var info struct {
		Pid       int    `json:"pid"`
		NetNSPath string `json:"netnsPath"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
		t.Fatalf("verbose info %q: %v", resp.GetInfo()["info"], err)
	}
	return info.Pid, info.NetNSPath
}

func ping(t *testing.T, netns, ip string) error {
	t.Helper()
	args := []string{"ping", "-c1", "-W3", ip}
	if netns != "" {
		args = append([]string{"nsenter", "--net=" + netns}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func wantCode(t *testing.T, err error, code codes.Code, what string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got %v (%v), want %v", what, status.Code(err), err, code)
	}
}

// assertNoLeaks checks that nothing of the env's sandboxes is left on the
// host: veths, netns, mounts, cgroups, shims, IP reservations, CNI cache
// entries, iptables rules, sandbox dirs.
func (e *testEnv) assertNoLeaks(ids ...string) {
	t := e.t
	t.Helper()
	if ports, err := os.ReadDir(filepath.Join("/sys/class/net", e.bridge, "brif")); err == nil && len(ports) > 0 {
		t.Errorf("veths left on bridge %s: %d", e.bridge, len(ports))
	}
	if entries, _ := os.ReadDir(e.netnsDir()); len(entries) > 0 {
		t.Errorf("netns left: %d, first %s", len(entries), entries[0].Name())
	}
	if ms := mountsUnder(e.dir); len(ms) > 0 {
		// The netns dir is a shared bind mount onto itself, kept on purpose.
		var left []string
		for _, m := range ms {
			if m != e.netnsDir() {
				left = append(left, m)
			}
		}
		if len(left) > 0 {
			t.Errorf("mounts left under %s: %v", e.dir, left)
		}
	}
	for _, d := range cgroupDirs(e.cgroupParent) {
		entries, _ := os.ReadDir(d)
		for _, en := range entries {
			if en.IsDir() {
				t.Errorf("cgroup left: %s", filepath.Join(d, en.Name()))
			}
		}
	}
	if pids := pidsWithCmdline("cri-runtime-shim", e.state+"/"); len(pids) > 0 {
		t.Errorf("shims left: %v", pids)
	}
	if entries, err := os.ReadDir(filepath.Join(e.dataDir, e.netName)); err == nil {
		for _, en := range entries {
			if en.Name() != "lock" && !strings.HasPrefix(en.Name(), "last_reserved_ip") {
				t.Errorf("host-local reservation left: %s", en.Name())
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(e.cacheDir, "results")); len(entries) > 0 {
		t.Errorf("CNI cache entries left: %d", len(entries))
	}
	if entries, _ := os.ReadDir(filepath.Join(e.state, "sandboxes")); len(entries) > 0 {
		t.Errorf("sandbox dirs left: %d", len(entries))
	}
	if out, err := exec.Command("iptables-save").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			for _, id := range ids {
				if strings.Contains(line, id) {
					t.Errorf("iptables rule left for %s: %s", id, line)
				}
			}
		}
	}
}
