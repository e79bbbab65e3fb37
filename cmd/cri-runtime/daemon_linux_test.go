package main

// Tests of the built daemon: each starts `cri-runtime` (built once by
// TestMain with the Makefile's recipe) with a private --root, --state and
// --socket, a config of its own and no CNI network, and stops it by PID.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(filepath.Dir(binDir))
	}
	os.Exit(code)
}

// daemonBinaries builds cri-runtime, the shim and the pause once per test
// binary, as `make build` does.
func daemonBinaries(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the daemon tests need root (they run as root in CI)")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cri-runtime-cmd-test-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = filepath.Join(dir, "bin")
		cmd := exec.Command("make", "--no-print-directory", "build", "BIN="+binDir)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("make build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// daemon is one running cri-runtime.
type daemon struct {
	t        *testing.T
	dir      string // its private dirs and config
	cfg      string // the main config file
	dropIns  string // --config-dir
	socket   string
	cmd      *exec.Cmd
	log      *syncBuffer
	exited   chan struct{}
	exitErr  error
	rt       runtimeapi.RuntimeServiceClient
	conn     *grpc.ClientConn
	extraEnv []string
	args     []string

	stopRegistered bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newDaemon prepares a daemon whose main config is config plus a [network]
// of its own (an empty CNI dir: host-network pods only).
func newDaemon(t *testing.T, config string) *daemon {
	t.Helper()
	daemonBinaries(t)
	dir, err := os.MkdirTemp("", "crd-") // short: the socket path must fit
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o711)
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Cleanup(func() { checkLeaks(t, dir) }) // after the daemon stopped
	d := &daemon{t: t, dir: dir, cfg: filepath.Join(dir, "config.toml"), dropIns: filepath.Join(dir, "config.d"), socket: filepath.Join(dir, "state", "cri.sock")}
	for _, sub := range []string{"cni", "config.d"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	full := fmt.Sprintf("[network]\nconf_dir = %q\n", filepath.Join(dir, "cni")) + config
	if err := os.WriteFile(d.cfg, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *daemon) dropIn(name, body string) {
	d.t.Helper()
	if err := os.MkdirAll(d.dropIns, 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dropIns, name), []byte(body), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// start runs the daemon; with wait it returns once Version answers.
func (d *daemon) start(wait bool) {
	d.t.Helper()
	args := append([]string{"--config", d.cfg, "--config-dir", d.dropIns,
		"--root", filepath.Join(d.dir, "root"), "--state", filepath.Join(d.dir, "state"), "--socket", d.socket}, d.args...)
	d.cmd = exec.Command(filepath.Join(binDir, "cri-runtime"), args...)
	d.log = &syncBuffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.Env = append(os.Environ(), d.extraEnv...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func() { d.exitErr = d.cmd.Wait(); close(d.exited) }()
	if !d.stopRegistered {
		// Once: a restarted daemon must still stop after the Cleanups
		// registered since (its pods' removal), not before them.
		d.stopRegistered = true
		d.t.Cleanup(d.stop)
	}
	if !wait {
		return
	}
	d.connect()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-d.exited:
			d.t.Fatalf("daemon exited during start-up (%v):\n%s", d.exitErr, d.log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.rt.Status(ctx, &runtimeapi.StatusRequest{})
		cancel()
		if err == nil {
			return
		}
	}
	d.t.Fatalf("daemon not ready within 30s:\n%s", d.log)
}

// stop ends the daemon with SIGTERM (SIGKILL after 20s).
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		d.t.Errorf("daemon did not stop within 20s of SIGTERM")
	}
}

func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
}

// waitLog waits until the log after offset contains want, and returns
// the offset just past it.
func (d *daemon) waitLog(offset int, want string) int {
	d.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s := d.log.String()
		if offset > len(s) {
			offset = len(s)
		}
		if i := strings.Index(s[offset:], want); i >= 0 {
			return offset + i + len(want)
		}
	}
	d.t.Fatalf("the daemon's log never said %q after offset %d:\n%s", want, offset, d.log.String()[offset:])
	return 0
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runHostNetPod runs a host-network pod sandbox (no CNI needed) and
// removes it in Cleanup.
func (d *daemon) runHostNetPod(ctx context.Context, name string) string {
	d.t.Helper()
	resp, err := d.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "cmd-test", Uid: name + "-uid"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
		}},
	}})
	if err != nil {
		d.t.Fatalf("RunPodSandbox: %v\n%s", err, d.log)
	}
	id := resp.GetPodSandboxId()
	d.t.Cleanup(func() {
		select {
		case <-d.exited:
			return // the test removed it before stopping the daemon
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := d.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			d.t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := d.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			d.t.Errorf("RemovePodSandbox: %v", err)
		}
	})
	return id
}

// checkLeaks fails the test for any shim or mount a daemon under dir left
// behind, and removes them.
func checkLeaks(t *testing.T, dir string) {
	// Containers first (runc kills them and removes their cgroups), then
	// the shims that ran them.
	runcRoot := filepath.Join(dir, "state", "runtime", "runc", "k8s.io")
	if out, err := exec.Command("runc", "--root", runcRoot, "list", "-q").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			t.Errorf("container %s left behind", id)
			_ = exec.Command("runc", "--root", runcRoot, "delete", "--force", id).Run()
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		t.Errorf("process %d left behind: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			t.Errorf("mount left behind: %s", f[1])
			_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
		}
	}
}

// shimEnvirons returns the initial environment of every shim whose
// command line names dir.
func shimEnvirons(t *testing.T, dir string) [][]string {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var out [][]string
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("cri-runtime-shim")) || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		out = append(out, strings.Split(string(env), "\x00"))
	}
	return out
}

// TestDaemonNotifiesSystemd: with NOTIFY_SOCKET set, the daemon sends
// READY=1 once it serves, RELOADING=1 and READY=1 around a SIGHUP, and
// STOPPING=1 on SIGTERM; nothing it starts inherits the socket (runc
// would make the pause's start wait for the pause to say READY=1).
func TestDaemonNotifiesSystemd(t *testing.T) {
	d := newDaemon(t, "")
	sockPath := filepath.Join(d.dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case got := <-msgs:
			if got != want {
				t.Fatalf("notify socket got %q, want %q", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("notify socket got nothing, want %q:\n%s", want, d.log)
		}
	}
	d.extraEnv = []string{"NOTIFY_SOCKET=" + sockPath}
	d.start(false)
	next("READY=1")
	d.connect()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d.runHostNetPod(ctx, "notify")
	envs := shimEnvirons(t, d.dir)
	if len(envs) == 0 {
		t.Fatal("no shim of the pod found")
	}
	for _, env := range envs {
		for _, kv := range env {
			if strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
				t.Errorf("a shim inherited %s", kv)
			}
		}
	}

	d.signal(syscall.SIGHUP)
	next("RELOADING=1")
	next("READY=1")
	// Remove the pod first (Cleanup would after the daemon stopped).
	if _, err := d.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: mustOnePod(t, d)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: mustOnePod(t, d)}); err != nil {
		t.Fatal(err)
	}
	d.signal(syscall.SIGTERM)
	next("STOPPING=1")
	<-d.exited
	if d.exitErr != nil {
		t.Errorf("daemon exit after SIGTERM: %v", d.exitErr)
	}
}

func mustOnePod(t *testing.T, d *daemon) string {
	t.Helper()
	resp, err := d.rt.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(resp.GetItems()) != 1 {
		t.Fatalf("ListPodSandbox = %v, %v; want one pod", resp, err)
	}
	return resp.GetItems()[0].GetId()
}

// connect dials a daemon started without waiting.
func (d *daemon) connect() {
	d.t.Helper()
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		d.t.Fatal(err)
	}
	d.conn = conn
	d.rt = runtimeapi.NewRuntimeServiceClient(conn)
}

// TestDaemonMetricsAddressTaken: the start fails, naming the key.
func TestDaemonMetricsAddressTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := newDaemon(t, fmt.Sprintf("[metrics]\naddress = %q\n", l.Addr().String()))
	d.start(false)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon still runs with its metrics address taken:\n%s", d.log)
	}
	if d.exitErr == nil {
		t.Fatal("daemon exited 0 with its metrics address taken")
	}
	if log := d.log.String(); !strings.Contains(log, "metrics.address") || !strings.Contains(log, "address already in use") {
		t.Errorf("the log does not say why:\n%s", log)
	}
	if _, err := os.Stat(d.socket); err == nil {
		t.Error("the CRI socket was opened before the metrics listener failed")
	}
}

// TestDaemonMetricsFromDropIn: a drop-in turns metrics (and pprof) on;
// /metrics then has the RunPodSandbox histogram after a pod ran, the
// pod gauges, and the restore figures.
func TestDaemonMetricsFromDropIn(t *testing.T) {
	d := newDaemon(t, "")
	addr := freePort(t)
	d.dropIn("50-metrics.toml", fmt.Sprintf("[metrics]\naddress = %q\npprof = true\n", addr))
	d.start(true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d.runHostNetPod(ctx, "metrics")
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		return b.String()
	}
	body := get("/metrics")
	for _, want := range []string{
		`cri_runtime_cri_request_duration_seconds_count{code="OK",method="RunPodSandbox"} 1`,
		`cri_runtime_pod_sandboxes{state="ready"} 1`,
		`cri_runtime_shims 1`,
		`cri_runtime_restore_found{what="pod_sandboxes"} 0`,
		`cri_runtime_restore_duration_seconds `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, "\n"+want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(get("/debug/pprof/"), "goroutine") {
		t.Error("/debug/pprof/ is not served with pprof = true")
	}

	// After a restart, what restore found: the pod and its live pause.
	d.stop()
	d.start(true)
	body = get("/metrics")
	for _, want := range []string{
		`cri_runtime_restore_found{what="pod_sandboxes"} 1`,
		`cri_runtime_restore_found{what="tasks_running"} 1`,
		`cri_runtime_restore_found{what="tasks_exited"} 0`,
		`cri_runtime_pod_sandboxes{state="ready"} 1`,
		`cri_runtime_shims 1`,
	} {
		if !strings.Contains(body, "\n"+want) {
			t.Errorf("/metrics after a restart lacks %q", want)
		}
	}
}

// TestDaemonReloadVerbosity: a drop-in raising [log] verbosity applies on
// SIGHUP (every request is then logged); a bad drop-in on SIGHUP is
// refused, naming its file and key, and the verbosity in force stays.
func TestDaemonReloadVerbosity(t *testing.T) {
	d := newDaemon(t, "")
	d.start(true)
	version := func() {
		t.Helper()
		if _, err := d.rt.Version(context.Background(), &runtimeapi.VersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	version()
	if strings.Contains(d.log.String(), "Received request") {
		t.Fatal("requests logged at the default verbosity")
	}
	d.dropIn("10-debug.toml", "[log]\nverbosity = 6\n[metrics]\naddress = \"127.0.0.1:1\"\n")
	off := len(d.log.String())
	d.signal(syscall.SIGHUP)
	off = d.waitLog(off, `"Reloaded config"`)
	d.waitLog(off, `"Config changes need a restart to apply" keys=["metrics.address"]`)
	off = len(d.log.String())
	version()
	off = d.waitLog(off, `"Received request" rpc="/runtime.v1.RuntimeService/Version"`)

	bad := filepath.Join(d.dropIns, "20-bad.toml")
	d.dropIn("20-bad.toml", "[log]\nverbosity = 0\nverbosty = 1\n")
	d.signal(syscall.SIGHUP)
	off = d.waitLog(off, `"Refused config reload; the running config stays"`)
	line := d.log.String()[off:]
	line = line[:strings.IndexByte(line+"\n", '\n')]
	if !strings.Contains(line, bad) || !strings.Contains(line, "log.verbosty") {
		t.Errorf("the refusal does not name the file and key: %s", line)
	}
	off = len(d.log.String())
	version()
	d.waitLog(off, `"Received request" rpc="/runtime.v1.RuntimeService/Version"`)
}

// TestConfigCheck: `config check` exits 0 on a good config and drop-ins,
// and non-zero naming the file and key otherwise (hosts dirs included).
func TestConfigCheck(t *testing.T) {
	bin := filepath.Join(daemonBinaries(t), "cri-runtime")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	dropIns := filepath.Join(dir, "config.d")
	hosts := filepath.Join(dir, "certs.d")
	writeFiles(t, dir, map[string]string{
		"config.toml":                  "[log]\nverbosity = 2\n",
		"config.d/10-hosts.toml":       fmt.Sprintf("[registry]\nconfig_path = %q\n", hosts),
		"certs.d/docker.io/hosts.toml": "[host.\"https://mirror.example.com\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
	})
	check := func() (int, string) {
		t.Helper()
		cmd := exec.Command(bin, "config", "check", "--config", cfg, "--config-dir", dropIns)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := check(); code != 0 || !strings.Contains(out, "config ok") || !strings.Contains(out, "10-hosts.toml") {
		t.Fatalf("config check of a good config = %d:\n%s", code, out)
	}
	for _, tc := range []struct {
		file, body string
		want       []string
	}{
		{"config.d/20-typo.toml", "[cri]\nstreaming_adress = \"x\"\n", []string{"20-typo.toml", "cri.streaming_adress"}},
		{"config.d/20-value.toml", "[metrics]\naddress = \"nope\"\n", []string{"20-value.toml", "[metrics]: address"}},
		{"certs.d/docker.io/hosts.toml", "[host.\"https://m\"]\ncapabilites = [\"pull\"]\n", []string{filepath.Join(hosts, "docker.io", "hosts.toml"), "capabilites"}},
	} {
		old, _ := os.ReadFile(filepath.Join(dir, tc.file))
		writeFiles(t, dir, map[string]string{tc.file: tc.body})
		code, out := check()
		if code == 0 {
			t.Errorf("config check with %s passed:\n%s", tc.file, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("config check with %s does not say %q:\n%s", tc.file, w, out)
			}
		}
		if old == nil {
			os.Remove(filepath.Join(dir, tc.file))
		} else {
			writeFiles(t, dir, map[string]string{tc.file: string(old)})
		}
	}
}
