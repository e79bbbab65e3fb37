package bench

// The harness of the pod benchmarks (pods_test.go): cri-runtime and
// containerd side by side, each a real daemon on private paths under one
// temp dir, driven over its CRI socket by the same cri-api client code with
// the same pod and container configs, the same runc (/usr/local/bin/runc),
// the same CNI network (hack/install-cni-config.sh's, installed into the
// run's own conf dir) and images from the same local registry.
//
// Needs root, runc, the CNI plugins in /usr/lib/cni, the test tools
// (hack/install-test-tools.sh: the registry and what hack/build-test-images.sh
// builds pause:3.9 from) and containerd (hack/install-containerd.sh into
// /var/cache/cri-runtime-e2e/containerd-v2.4.2/bin, or CONTAINERD_BIN_DIR).
// `make bench` installs all of it. A missing containerd fails the benchmark:
// the figures mean nothing without it.
//
// The cleanup removes every pod through the CRI, stops both daemons by PID,
// and then fails the benchmark for whatever is still there (processes of the
// run, runc containers, mounts under the temp dir, iptables rules, IP
// reservations and CNI cache entries that name one of the run's pods),
// removing it all the same.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

const (
	registryAddr = "127.0.0.1:5000"
	runcBinary   = "/usr/local/bin/runc"
	cniBinDir    = "/usr/lib/cni"
	// podImage is pushed by the benchmark itself (pushBusybox) and pulled
	// by both daemons through their docker.io mirror, the local registry.
	podImage = "docker.io/crbench/busybox:1"
	// pauseImage is containerd's sandbox image, from hack/build-test-images.sh
	// (containerd 2.4 defaults to pause:3.10.2, which the registry lacks).
	pauseImage         = "registry.k8s.io/pause:3.9"
	defaultCtrdVersion = "v2.4.2"
	// workloadCmdline is the containers' command as /proc/PID/cmdline
	// shows it: the one process of a pod that is not the runtime's.
	workloadCmdline = "sleep\x003600\x00"
	// cniNetwork is the name in hack/cni/10-cri-runtime.conflist; host-local
	// keeps its reservations in hostLocalDir/<name>.
	cniNetwork   = "cri-runtime"
	hostLocalDir = "/var/lib/cni/networks"
	cniCacheDir  = "/var/lib/cni/results" // libcni's default: containerd's
)

// mirrored are the registries both daemons pull from the local one only.
var mirrored = []string{"docker.io", "registry.k8s.io"}

// criDaemon is one runtime under test.
type criDaemon struct {
	name    string // "cri-runtime" or "containerd"
	version string // as its CRI Version answers
	dir     string // its private dir: config, root, state, log
	socket  string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the daemon has exited
	conn    *grpc.ClientConn
	rt      runtimeapi.RuntimeServiceClient
	img     runtimeapi.ImageServiceClient
	// runcRoots are globs of the runc --root dirs its shims use.
	runcRoots []string
	// selfMounts are dirs the daemon bind-mounts on themselves on purpose
	// and keeps across restarts: not a leak when nothing is mounted below.
	selfMounts []string

	mu   sync.Mutex
	ids  []string // every pod sandbox and container id it handed out
	pods int      // pods started, for unique names
}

// podEnv is one run: both daemons and the dirs they share.
type podEnv struct {
	repo            string
	dir             string // everything of the run
	run             string // random, in pod uids and the cgroup parent
	cniDir          string
	startedRegistry bool
	ours, ctrd      *criDaemon
	cleanOnce       sync.Once
	stopSignals     func()
}

func (e *podEnv) daemons() []*criDaemon { return []*criDaemon{e.ours, e.ctrd} }

func containerdBinDir() string {
	if d := os.Getenv("CONTAINERD_BIN_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("E2E_CACHE")
	if cache == "" {
		cache = "/var/cache/cri-runtime-e2e"
	}
	return filepath.Join(cache, "containerd-"+defaultCtrdVersion, "bin")
}

func requirePodRuntimes(b *testing.B) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root: pods run real containers with runc and CNI")
	}
	for _, p := range []string{runcBinary, filepath.Join(cniBinDir, "bridge"), filepath.Join(cniBinDir, "host-local"), testutil.RegistryBin} {
		if _, err := os.Stat(p); err != nil {
			b.Skipf("needs %s (hack/install-deps.sh and hack/install-test-tools.sh install it)", p)
		}
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2"} {
		if _, err := os.Stat(filepath.Join(containerdBinDir(), bin)); err != nil {
			b.Fatalf("containerd, the baseline, is not installed: %v (run hack/install-containerd.sh, as make bench does, or set CONTAINERD_BIN_DIR)", err)
		}
	}
}

// newPodEnv starts both daemons with warm image caches. Its cleanup is
// registered first, so it runs whatever fails after.
func newPodEnv(b *testing.B) *podEnv {
	b.Helper()
	requirePodRuntimes(b)
	_, file, _, _ := goruntime.Caller(0)
	e := &podEnv{repo: filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..")), run: testutil.RandHex(b, 4)}
	dir, err := os.MkdirTemp("/tmp", "crpods")
	if err != nil {
		b.Fatal(err)
	}
	e.dir = dir
	b.Cleanup(func() {
		for _, l := range e.cleanup() {
			b.Errorf("left behind (removed now): %s", l)
		}
	})
	// ^C would kill the benchmark and leave both daemons (in their own
	// process groups) and their pods: tear down first.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	e.stopSignals = func() { signal.Stop(sigs); close(done) }
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "bench: %v: tearing down\n", sig)
			for _, l := range e.cleanup() {
				fmt.Fprintf(os.Stderr, "bench: left behind (removed now): %s\n", l)
			}
			os.Exit(1)
		case <-done:
		}
	}()
	// Others traverse (not list) it: runc resolves paths as the
	// containers' users (pause runs as 65535).
	if err := os.Chmod(dir, 0o711); err != nil {
		b.Fatal(err)
	}

	e.startedRegistry = !registryAnswers()
	if err := e.runScript("build-test-images", filepath.Join(e.repo, "hack", "build-test-images.sh")); err != nil {
		b.Fatal(err)
	}
	if err := pushBusybox(registryAddr + "/crbench/busybox:1"); err != nil {
		b.Fatalf("push the pod image: %v", err)
	}
	e.cniDir = filepath.Join(dir, "cni")
	if err := e.runScript("install-cni-config", filepath.Join(e.repo, "hack", "install-cni-config.sh"), e.cniDir); err != nil {
		b.Fatal(err)
	}

	if e.ours, err = e.startOurs(); err != nil {
		b.Fatal(err)
	}
	if e.ctrd, err = e.startContainerd(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, d := range e.daemons() {
		for _, ref := range []string{podImage, pauseImage} {
			if d == e.ours && ref == pauseImage {
				continue // cri-runtime runs its own pause program, no image
			}
			if _, err := d.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
				b.Fatalf("%s: pull %s: %v", d.name, ref, err)
			}
		}
	}
	return e
}

func registryAnswers() bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + registryAddr + "/v2/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (e *podEnv) runScript(name string, argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = e.repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, tail(string(out), 30))
	}
	return nil
}

// pushBusybox pushes a one-layer busybox-static image (an applet symlink
// each) as ref. hack/testimages' busybox images write their applets as
// hard-link entries with mode 0, which containerd applies to the file: no
// applet there can be executed by it.
func pushBusybox(ref string) error {
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	mtime := time.Unix(1700000000, 0)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "tmp"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, ModTime: mtime}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(data)), ModTime: mtime}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	for _, a := range strings.Fields(string(list)) {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: mtime}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	raw := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", goruntime.GOARCH
	cfg.Config = v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}

// startOurs starts cri-runtime: CRI_RUNTIME_BIN (make bench passes bin/),
// else a build of this tree with the Makefile's recipe.
func (e *podEnv) startOurs() (*criDaemon, error) {
	d := &criDaemon{name: "cri-runtime", dir: filepath.Join(e.dir, "ours")}
	binDir := filepath.Join(d.dir, "bin")
	bin := os.Getenv("CRI_RUNTIME_BIN")
	if bin == "" {
		cmd := exec.Command("make", "--no-print-directory", "build", "BIN="+binDir)
		cmd.Dir = e.repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("make build BIN=%s: %v\n%s", binDir, err, out)
		}
		bin = filepath.Join(binDir, "cri-runtime")
	} else {
		binDir = filepath.Dir(bin)
	}
	root, state := filepath.Join(d.dir, "root"), filepath.Join(d.dir, "state")
	d.socket = filepath.Join(state, "cri-runtime.sock")
	d.runcRoots = []string{filepath.Join(state, "runtime", "*", "*")}
	d.selfMounts = []string{filepath.Join(state, "netns")}
	var c strings.Builder
	c.WriteString("version = 1\n")
	fmt.Fprintf(&c, "\n[cri.runtimes.runc]\nbinary_path = %q\n", runcBinary)
	fmt.Fprintf(&c, "\n[network]\nconf_dir = %q\nbin_dirs = [%q]\ncache_dir = %q\nnetns_dir = %q\n",
		e.cniDir, cniBinDir, filepath.Join(root, "cni"), filepath.Join(state, "netns"))
	for _, host := range mirrored {
		fmt.Fprintf(&c, "\n[registry.mirrors.%q]\nendpoints = [\"http://%s\"]\nfallback = false\n", host, registryAddr)
	}
	cfg := filepath.Join(d.dir, "config.toml")
	if err := writeFile(cfg, c.String()); err != nil {
		return nil, err
	}
	// The shim is looked up next to the daemon.
	return d, d.start([]string{bin, "--config", cfg, "--root", root, "--state", state, "--socket", d.socket},
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// startContainerd starts containerd with everything it writes under its
// dir: root, state, temp, sockets (the shims' too: socket_dir), runc's
// root, the netns mounts (netns_mounts_under_state_dir), /opt, and its
// registry hosts dir mapping docker.io and registry.k8s.io to the local
// registry. NRI is off, as in cri-runtime's default config; the pods'
// oom_score_adj is kept at or above containerd's own
// (restrict_oom_score_adj), as cri-runtime does: the machine grants no
// CAP_SYS_RESOURCE, so runc could not lower it.
func (e *podEnv) startContainerd() (*criDaemon, error) {
	d := &criDaemon{name: "containerd", dir: filepath.Join(e.dir, "ctrd")}
	binDir := containerdBinDir()
	bin := filepath.Join(binDir, "containerd")
	root, state := filepath.Join(d.dir, "root"), filepath.Join(d.dir, "state")
	d.socket = filepath.Join(d.dir, "containerd.sock")
	d.runcRoots = []string{filepath.Join(state, "runc", "*")}
	certs := filepath.Join(d.dir, "certs.d")
	for _, host := range mirrored {
		hosts := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", registryAddr, registryAddr)
		if err := writeFile(filepath.Join(certs, host, "hosts.toml"), hosts); err != nil {
			return nil, err
		}
	}
	sockets := filepath.Join(d.dir, "s")
	if len(sockets) > 38 { // containerd's limit for socket_dir
		return nil, fmt.Errorf("containerd socket_dir %s is longer than 38 bytes", sockets)
	}
	cfg := fmt.Sprintf(`version = 4
root = %[1]q
state = %[2]q
temp = %[3]q
imports = []
disabled_plugins = [
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.zfs",
]

[plugins."io.containerd.server.v1.grpc"]
  address = %[4]q

[plugins."io.containerd.server.v1.ttrpc"]
  address = %[5]q

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[6]q
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %[7]q

[plugins."io.containerd.cri.v1.runtime"]
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = %[8]q
      Root = %[9]q
      SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%[10]q]
    conf_dir = %[11]q

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.internal.v1.opt"]
  path = %[12]q

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.shim.v1.manager"]
  socket_dir = %[13]q

[plugins."io.containerd.transfer.v1.local"]
  config_path = %[7]q
`, root, state, filepath.Join(d.dir, "tmp"), d.socket, d.socket+".ttrpc", pauseImage, certs,
		runcBinary, filepath.Join(state, "runc"), cniBinDir, e.cniDir, filepath.Join(d.dir, "opt"), sockets)
	cfgPath := filepath.Join(d.dir, "config.toml")
	if err := writeFile(cfgPath, cfg); err != nil {
		return nil, err
	}
	// containerd-shim-runc-v2 must be on containerd's PATH.
	return d, d.start([]string{bin, "--config", cfgPath}, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// start runs the daemon in its own process group (a ^C reaches only the
// benchmark, which then tears down in order) and waits until its CRI
// Status says runtime and network are ready.
func (d *criDaemon) start(argv []string, path string) error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	d.logPath = filepath.Join(d.dir, "daemon.log")
	logf, err := os.Create(d.logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	d.cmd = cmd
	d.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(d.exited) }()

	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	d.conn = conn
	d.rt = runtimeapi.NewRuntimeServiceClient(conn)
	d.img = runtimeapi.NewImageServiceClient(conn)
	var last error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		select {
		case <-d.exited:
			return fmt.Errorf("%s exited during start-up; its log:\n%s", d.name, d.logTail(40))
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := os.Stat(d.socket); err != nil {
			continue
		}
		if last = d.ready(); last == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, err := d.rt.Version(ctx, &runtimeapi.VersionRequest{})
			if err != nil {
				return d.fail("Version", err)
			}
			d.version = strings.TrimPrefix(v.GetRuntimeVersion(), "v")
			return nil
		}
	}
	return fmt.Errorf("%s not ready within 60s (%v); its log:\n%s", d.name, last, d.logTail(40))
}

func (d *criDaemon) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := d.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return err
	}
	// Only the two conditions the kubelet requires: containerd adds its
	// own (ContainerdHasNoDeprecationWarnings is false on cgroup v1).
	ready := map[string]bool{}
	for _, c := range st.GetStatus().GetConditions() {
		if t := c.GetType(); t == runtimeapi.RuntimeReady || t == runtimeapi.NetworkReady {
			if !c.GetStatus() {
				return fmt.Errorf("%s: %s %s", t, c.GetReason(), c.GetMessage())
			}
			ready[t] = true
		}
	}
	if !ready[runtimeapi.RuntimeReady] || !ready[runtimeapi.NetworkReady] {
		return fmt.Errorf("status lacks RuntimeReady or NetworkReady: %v", st.GetStatus().GetConditions())
	}
	return nil
}

func (d *criDaemon) logTail(n int) string {
	data, _ := os.ReadFile(d.logPath)
	return tail(string(data), n)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (d *criDaemon) alive() bool {
	if d == nil || d.exited == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// fail wraps a CRI error with the daemon's name and, if it died, its log.
func (d *criDaemon) fail(op string, err error) error {
	if !d.alive() {
		return fmt.Errorf("%s: %s: %v; the daemon exited, its log:\n%s", d.name, op, err, d.logTail(40))
	}
	return fmt.Errorf("%s: %s: %w", d.name, op, err)
}

// pod is a running pod sandbox with its one container.
type pod struct {
	id, ctr string
}

// podConfigs are what the kubelet sends for a one-container pod, trimmed:
// a cgroup parent per pod under the run's own (cgroupfs), PID namespace
// CONTAINER (the kubelet's default, unless shareProcessNamespace),
// network and IPC of the pod, a DNS config, busybox `sleep 3600`.
func (e *podEnv) podConfigs(d *criDaemon) (*runtimeapi.PodSandboxConfig, *runtimeapi.ContainerConfig, error) {
	d.mu.Lock()
	n := d.pods
	d.pods++
	d.mu.Unlock()
	name := fmt.Sprintf("bench-%d", n)
	uid := fmt.Sprintf("%s-%s-%d", e.run, d.name, n)
	logDir := filepath.Join(d.dir, "pods", uid)
	// The kubelet makes the pod's log dir and each container's.
	if err := os.MkdirAll(filepath.Join(logDir, "sleep"), 0o755); err != nil {
		return nil, nil, err
	}
	ns := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	labels := map[string]string{"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "crbench", "io.kubernetes.pod.uid": uid}
	sandbox := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Uid: uid, Namespace: "crbench"},
		Hostname:     name,
		LogDirectory: logDir,
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"crbench.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}},
		Labels:       labels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    fmt.Sprintf("/crbench-%s/pod%s", e.run, uid),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns},
		},
	}
	ctr := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
		Image:    &runtimeapi.ImageSpec{Image: podImage},
		Command:  []string{"sleep", "3600"},
		LogPath:  "sleep/0.log",
		Labels:   labels,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       &runtimeapi.LinuxContainerResources{CpuShares: 2, OomScoreAdj: 1000},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: ns},
		},
	}
	return sandbox, ctr, nil
}

func (d *criDaemon) remember(id string) {
	d.mu.Lock()
	d.ids = append(d.ids, id)
	d.mu.Unlock()
}

// startPod runs a pod and starts its container, timing RunPodSandbox and
// CreateContainer+StartContainer.
func (e *podEnv) startPod(ctx context.Context, d *criDaemon) (p pod, run, createStart time.Duration, err error) {
	sb, ctr, err := e.podConfigs(d)
	if err != nil {
		return p, 0, 0, err
	}
	t0 := time.Now()
	resp, err := d.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sb})
	if err != nil {
		return p, 0, 0, d.fail("RunPodSandbox", err)
	}
	t1 := time.Now()
	p.id = resp.GetPodSandboxId()
	d.remember(p.id)
	cr, err := d.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: ctr, SandboxConfig: sb})
	if err != nil {
		return p, 0, 0, d.fail("CreateContainer", err)
	}
	p.ctr = cr.GetContainerId()
	d.remember(p.ctr)
	if _, err := d.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.ctr}); err != nil {
		return p, 0, 0, d.fail("StartContainer", err)
	}
	return p, t1.Sub(t0), time.Since(t1), nil
}

// stopPod is the kubelet's teardown of a pod: StopContainer (timeout 0:
// `sleep` as its PID namespace's init ignores SIGTERM, so it is killed at
// once), RemoveContainer, StopPodSandbox, RemovePodSandbox.
func (d *criDaemon) stopPod(ctx context.Context, p pod) (time.Duration, error) {
	t0 := time.Now()
	if _, err := d.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: p.ctr, Timeout: 0}); err != nil {
		return 0, d.fail("StopContainer", err)
	}
	if _, err := d.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: p.ctr}); err != nil {
		return 0, d.fail("RemoveContainer", err)
	}
	if _, err := d.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return 0, d.fail("StopPodSandbox", err)
	}
	if _, err := d.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return 0, d.fail("RemovePodSandbox", err)
	}
	return time.Since(t0), nil
}

// checkRunning fails unless the daemon lists exactly want running
// containers and want ready pods.
func (d *criDaemon) checkRunning(ctx context.Context, want int) error {
	cs, err := d.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
	if err != nil {
		return d.fail("ListContainers", err)
	}
	ps, err := d.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}})
	if err != nil {
		return d.fail("ListPodSandbox", err)
	}
	if len(cs.GetContainers()) != want || len(ps.GetItems()) != want {
		return fmt.Errorf("%s: %d running containers and %d ready pods, want %d of each", d.name, len(cs.GetContainers()), len(ps.GetItems()), want)
	}
	return nil
}

// parallel starts n pods with at most width in flight and returns them
// with the wall time, or the first error.
func (e *podEnv) parallel(ctx context.Context, d *criDaemon, n, width int) ([]pod, time.Duration, error) {
	pods := make([]pod, n)
	errs := make([]error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range width {
		wg.Go(func() {
			for i := range next {
				pods[i], _, _, errs[i] = e.startPod(ctx, d)
			}
		})
	}
	wg.Wait()
	wall := time.Since(t0)
	return pods, wall, errors.Join(errs...)
}

// teardown removes pods with at most width in flight.
func (d *criDaemon) teardown(ctx context.Context, pods []pod, width int) (time.Duration, error) {
	next := make(chan pod, len(pods))
	for _, p := range pods {
		next <- p
	}
	close(next)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	t0 := time.Now()
	for range width {
		wg.Go(func() {
			for p := range next {
				if _, err := d.stopPod(ctx, p); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return time.Since(t0), errors.Join(errs...)
}

// procInfo is one process of the process table.
type procInfo struct {
	pid, ppid int
	comm      string
	cmdline   string
}

// name is the base name of the program (comm is cut at 15 bytes).
func (p procInfo) name() string {
	if argv0, _, _ := strings.Cut(p.cmdline, "\x00"); argv0 != "" {
		return filepath.Base(argv0)
	}
	return p.comm
}

func procTable() map[int]procInfo {
	out := map[int]procInfo{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		data, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parens.
		open, closing := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if open < 0 || closing < open {
			continue
		}
		f := strings.Fields(string(data[closing+1:]))
		if len(f) < 2 {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data[:open])))
		ppid, _ := strconv.Atoi(f[1])
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(s), "cmdline"))
		out[pid] = procInfo{pid: pid, ppid: ppid, comm: string(data[open+1 : closing]), cmdline: string(cmdline)}
	}
	return out
}

// runProcs lists the processes of d other than the daemon itself: its
// children and whatever names its dir on its command line (shims that left
// its process tree: containerd's daemonize, ours outlive a daemon), with
// all their descendants.
func (d *criDaemon) runProcs(table map[int]procInfo) []procInfo {
	daemonPid := 0
	if d.alive() {
		daemonPid = d.cmd.Process.Pid
	}
	in := map[int]bool{}
	for pid, p := range table {
		if pid != daemonPid && pid != os.Getpid() && ((daemonPid != 0 && p.ppid == daemonPid) || strings.Contains(p.cmdline, d.dir+"/")) {
			in[pid] = true
		}
	}
	for grew := true; grew; {
		grew = false
		for pid, p := range table {
			if !in[pid] && in[p.ppid] && pid != daemonPid {
				in[pid] = true
				grew = true
			}
		}
	}
	var out []procInfo
	for pid := range in {
		out = append(out, table[pid])
	}
	slices.SortFunc(out, func(a, b procInfo) int { return a.pid - b.pid })
	return out
}

// memSample is the memory of a daemon and its pods at one moment.
type memSample struct {
	daemonRSS  int // KiB, VmRSS
	monitorPSS int // KiB: every process of the pods but their workload
	workloads  int
	byComm     map[string]*commMem
}

type commMem struct{ procs, pss int }

// memory reads the daemon's VmRSS and the Pss (smaps_rollup) of every
// process its pods run besides the workload (`sleep 3600`): shims, pause,
// anything else the runtime keeps per pod.
func (d *criDaemon) memory() (memSample, error) {
	s := memSample{byComm: map[string]*commMem{}}
	rss, err := procStatusKiB(d.cmd.Process.Pid, "VmRSS:")
	if err != nil {
		return s, fmt.Errorf("%s: daemon VmRSS: %w", d.name, err)
	}
	s.daemonRSS = rss
	for _, p := range d.runProcs(procTable()) {
		if p.cmdline == workloadCmdline {
			s.workloads++
			continue
		}
		pss, _, err := procPSS(p.pid)
		if err != nil {
			continue // exited meanwhile (a CNI plugin, a runc)
		}
		s.monitorPSS += pss
		c := s.byComm[p.name()]
		if c == nil {
			c = &commMem{}
			s.byComm[p.name()] = c
		}
		c.procs++
		c.pss += pss
	}
	return s, nil
}

func procStatusKiB(pid int, field string) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// settledMemory waits for the pods to go quiet (the shims trim their heap
// after a quiet second), then averages rounds samples a second apart. It
// fails unless every sample finds want workloads.
func (d *criDaemon) settledMemory(want, rounds int) (memSample, error) {
	time.Sleep(3 * time.Second)
	avg := memSample{byComm: map[string]*commMem{}}
	for r := range rounds {
		if r > 0 {
			time.Sleep(time.Second)
		}
		s, err := d.memory()
		if err != nil {
			return avg, err
		}
		if s.workloads != want {
			return avg, fmt.Errorf("%s: %d workload processes (%q) in its pods, want %d", d.name, s.workloads, strings.ReplaceAll(workloadCmdline, "\x00", " "), want)
		}
		avg.daemonRSS += s.daemonRSS
		avg.monitorPSS += s.monitorPSS
		for k, v := range s.byComm {
			c := avg.byComm[k]
			if c == nil {
				c = &commMem{}
				avg.byComm[k] = c
			}
			c.procs += v.procs
			c.pss += v.pss
		}
	}
	avg.workloads = want
	avg.daemonRSS /= rounds
	avg.monitorPSS /= rounds
	for _, c := range avg.byComm {
		c.procs /= rounds
		c.pss /= rounds
	}
	return avg, nil
}

// perPod describes the monitor processes of one pod: "2× cri-runtime-shim
// 1100 KiB, 1× pause 74 KiB" (processes and their Pss, per pod).
func (s memSample) perPod(pods int) string {
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.byComm {
			if !yield(k) {
				return
			}
		}
	}) {
		c := s.byComm[k]
		parts = append(parts, fmt.Sprintf("%.3g× %s %d KiB", float64(c.procs)/float64(pods), k, c.pss/pods))
	}
	return strings.Join(parts, ", ")
}

// removeAll stops and removes every container and pod the daemon lists.
func (d *criDaemon) removeAll(ctx context.Context) error {
	var errs []error
	cs, err := d.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return d.fail("ListContainers", err)
	}
	for _, c := range cs.GetContainers() {
		if _, err := d.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.GetId()}); err != nil {
			errs = append(errs, d.fail("StopContainer", err))
		}
		if _, err := d.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.GetId()}); err != nil {
			errs = append(errs, d.fail("RemoveContainer", err))
		}
	}
	ps, err := d.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return d.fail("ListPodSandbox", err)
	}
	for _, p := range ps.GetItems() {
		if _, err := d.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			errs = append(errs, d.fail("StopPodSandbox", err))
		}
		if _, err := d.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			errs = append(errs, d.fail("RemovePodSandbox", err))
		}
	}
	return errors.Join(errs...)
}

// stop sends SIGTERM to the daemon (by its PID), then SIGKILL after 15s.
func (d *criDaemon) stop() {
	if d.conn != nil {
		d.conn.Close()
	}
	if !d.alive() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return
	case <-time.After(15 * time.Second):
	}
	_ = d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
	}
}

// cleanup tears the run down and returns what was left behind that its
// daemons should have removed; it removes that too.
func (e *podEnv) cleanup() []string {
	var leaks []string
	e.cleanOnce.Do(func() { leaks = e.doCleanup() })
	return leaks
}

func (e *podEnv) doCleanup() []string {
	if e.stopSignals != nil {
		e.stopSignals()
	}
	var leaks []string
	var ids []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, d := range e.daemons() {
		if d == nil {
			continue
		}
		if d.alive() && d.rt != nil {
			if err := d.removeAll(ctx); err != nil {
				leaks = append(leaks, fmt.Sprintf("%s: removing every pod: %v", d.name, err))
			}
		}
		d.stop()
		ids = append(ids, d.ids...)
	}

	// containerd's shims exit on their own once their pod is gone: give
	// them a moment before counting them.
	var procs []procInfo
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		procs = procs[:0]
		table := procTable()
		for _, d := range e.daemons() {
			if d != nil {
				procs = append(procs, d.runProcs(table)...)
			}
		}
		if len(procs) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, p := range procs {
		leaks = append(leaks, fmt.Sprintf("process %d (%s) after its daemon stopped: %s", p.pid, p.comm, strings.ReplaceAll(strings.TrimRight(p.cmdline, "\x00"), "\x00", " ")))
		_ = unix.Kill(p.pid, unix.SIGKILL)
	}
	for _, d := range e.daemons() {
		if d == nil {
			continue
		}
		for _, glob := range d.runcRoots {
			roots, _ := filepath.Glob(glob)
			for _, root := range roots {
				ents, _ := os.ReadDir(root)
				for _, ent := range ents {
					if !ent.IsDir() {
						continue
					}
					leaks = append(leaks, fmt.Sprintf("%s: runc container %s in %s", d.name, ent.Name(), root))
					_ = exec.Command(runcBinary, "--root", root, "delete", "--force", ent.Name()).Run()
				}
			}
		}
	}
	self := map[string]bool{}
	for _, d := range e.daemons() {
		if d != nil {
			for _, m := range d.selfMounts {
				self[m] = true
			}
		}
	}
	for _, m := range mountsUnder(e.dir) {
		if !self[m] {
			leaks = append(leaks, "mount after the daemons stopped: "+m)
		}
	}
	unmountUnder(e.dir)
	leaks = append(leaks, cleanHostNet(ids)...)
	leaks = append(leaks, cleanCgroups("crbench-"+e.run, ids)...)

	// The daemons' logs outlive the run, for a failed one.
	if out := filepath.Join(e.repo, "_output", "bench"); os.MkdirAll(out, 0o755) == nil {
		for _, d := range e.daemons() {
			if d != nil && d.logPath != "" {
				if data, err := os.ReadFile(d.logPath); err == nil {
					_ = os.WriteFile(filepath.Join(out, d.name+".log"), data, 0o644)
				}
			}
		}
	}
	if left := mountsUnder(e.dir); len(left) > 0 {
		leaks = append(leaks, fmt.Sprintf("%s kept: still mounted: %v", e.dir, left))
	} else {
		_ = os.RemoveAll(e.dir)
	}
	if e.startedRegistry {
		_ = e.runScript("registry stop", filepath.Join(e.repo, "hack", "registry.sh"), "stop")
	}
	return leaks
}

// mountsUnder lists mount points at or below dir.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// cleanHostNet removes, and reports, what the pods' CNI teardown should
// have removed from the shared host: iptables rules and chains that name a
// pod (the bridge plugin's comments carry the sandbox id), host-local's
// reservations and libcni's cache entries.
func cleanHostNet(ids []string) []string {
	var leaks []string
	if save, err := exec.Command("iptables-save").Output(); err == nil {
		for _, id := range ids {
			script := testutil.IPTablesCleanup(string(save), id)
			if script == "" {
				continue
			}
			leaks = append(leaks, fmt.Sprintf("iptables rules of %.12s", id))
			cmd := exec.Command("iptables-restore", "--noflush")
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				leaks = append(leaks, fmt.Sprintf("iptables-restore: %v: %s", err, out))
			}
		}
	}
	resDir := filepath.Join(hostLocalDir, cniNetwork)
	ents, _ := os.ReadDir(resDir)
	for _, ent := range ents {
		p := filepath.Join(resDir, ent.Name())
		data, err := os.ReadFile(p)
		if err != nil || ent.IsDir() {
			continue
		}
		owner, _, _ := strings.Cut(string(data), "\n")
		if slices.Contains(ids, strings.TrimSpace(owner)) {
			leaks = append(leaks, fmt.Sprintf("IP reservation %s of %.12s", p, owner))
			_ = os.Remove(p)
		}
	}
	ents, _ = os.ReadDir(cniCacheDir)
	for _, ent := range ents {
		for _, id := range ids {
			if strings.Contains(ent.Name(), id) {
				leaks = append(leaks, "CNI cache entry "+filepath.Join(cniCacheDir, ent.Name()))
				_ = os.Remove(filepath.Join(cniCacheDir, ent.Name()))
				break
			}
		}
	}
	return leaks
}

// cleanCgroups removes the run's cgroup parent (runc leaves the parents of
// the cgroups it makes) in every hierarchy; a cgroup named after a pod or
// container inside it is a leak.
func cleanCgroups(parent string, ids []string) []string {
	var leaks []string
	tops, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parent))
	if top := filepath.Join("/sys/fs/cgroup", parent); dirExists(top) {
		tops = append(tops, top)
	}
	for _, top := range tops {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, de fs.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				dirs = append(dirs, p)
				for _, id := range ids {
					if strings.Contains(de.Name(), id) {
						leaks = append(leaks, "cgroup "+p)
						break
					}
				}
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			if err := os.Remove(d); err != nil {
				leaks = append(leaks, fmt.Sprintf("remove cgroup %s: %v", d, err))
			}
		}
	}
	return leaks
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
