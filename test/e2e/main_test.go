// Package e2e runs cri-runtime end to end, black box: a real daemon on a
// private socket, images from the local test registry, and crictl/critest
// (sigs.k8s.io/cri-tools) or the cri-api client talking to it. Nothing here
// imports the daemon's packages. See docs/testing.md.
//
// Needs root and the tools from hack/install-test-tools.sh. The harness
// builds the daemon (unless CRI_RUNTIME_BIN names one), pushes the test
// images (hack/build-test-images.sh, which starts the registry if needed),
// starts the daemon with registry mirrors pointing at the local registry,
// runs the tests, and then tears everything down even when they failed:
// every pod and container removed through the CRI, the daemon stopped by PID,
// leaks reported (shims, mounts, netns), leftover mounts unmounted, the
// SysV shm segments critest's HostIpc specs leave behind removed, and the
// registry stopped if this run started it.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// env is the running daemon and where things are, shared by the tests.
var env struct {
	repo      string    // repository root
	tmp       string    // everything this run creates: root, state, logs, configs
	root      string    // daemon --root
	state     string    // daemon --state
	socket    string    // CRI socket
	endpoint  string    // unix://<socket>
	binDir    string    // where cri-runtime and cri-runtime-shim come from
	artifacts string    // logs and reports kept after the run
	setupErr  error     // why the harness could not start; every test fails with it
	cfgPath   string    // the daemon's config file
	configDir string    // its --config-dir (drop-ins), empty unless a test adds one
	nriSocket string    // where NRI plugins connect (critest -nri-socket, nri_test.go)
	daemon    *exec.Cmd // the running daemon (restarted by the durability tests)
	conn      *grpc.ClientConn
	rt        runtimeapi.RuntimeServiceClient
	img       runtimeapi.ImageServiceClient
}

const registryAddr = "127.0.0.1:5000"

func TestMain(m *testing.M) {
	code := run(m)
	os.Exit(code)
}

func run(m *testing.M) int {
	var (
		startedRegistry bool
		shmBefore       map[int]bool
		once            sync.Once
		leaked          []string
	)
	cleanup := func() {
		once.Do(func() { leaked = teardown(env.daemon, startedRegistry, shmBefore) })
	}
	// ^C (or CI's SIGTERM) would kill the test binary and leave the daemon,
	// which runs in its own process group, and its pods behind: tear down
	// first. (go test -timeout panics instead; TestCritest's budget keeps
	// the run well inside the -timeout docs/testing.md asks for.)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "e2e: %v: tearing down\n", sig)
		killCritest()
		cleanup()
		os.Exit(1)
	}()

	env.setupErr = setup(&env.daemon, &startedRegistry, &shmBefore)
	if env.setupErr != nil {
		fmt.Fprintf(os.Stderr, "e2e: setup failed: %v\n", env.setupErr)
	}
	code := m.Run()
	if env.setupErr != nil {
		// Every test has already failed with the reason; still clean up.
		code = 1
	}
	signal.Stop(sigs)
	cleanup()
	if len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: the run left these behind (cleaned up now):\n  %s\n", strings.Join(leaked, "\n  "))
		code = 1
	}
	return code
}

// requireEnv fails the test when the harness could not start the daemon.
func requireEnv(t *testing.T) {
	t.Helper()
	if env.setupErr != nil {
		t.Fatalf("e2e harness: %v", env.setupErr)
	}
}

func setup(daemon **exec.Cmd, startedRegistry *bool, shmBefore *map[int]bool) error {
	if os.Geteuid() != 0 {
		return errors.New("the e2e tests need root (they run as root in CI)")
	}
	_, file, _, _ := goruntime.Caller(0)
	env.repo = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	env.artifacts = getenv("E2E_ARTIFACTS", filepath.Join(env.repo, "_output", "e2e"))
	if err := os.MkdirAll(env.artifacts, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "cri-e2e-")
	if err != nil {
		return err
	}
	env.tmp = tmp
	// Others may traverse (not list) it, as the daemon's dirs require for
	// user-namespaced pods: runc resolves their rootfs from inside the pod's
	// user namespace.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return err
	}
	env.root = filepath.Join(tmp, "root")
	env.state = filepath.Join(tmp, "state")
	env.socket = filepath.Join(env.state, "cri-runtime.sock")
	env.endpoint = "unix://" + env.socket
	for _, tool := range []string{"crictl", "critest", "docker-registry", "runc", "gcc", "ipcmk"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: run hack/install-deps.sh and hack/install-test-tools.sh", tool)
		}
	}
	if err := buildDaemon(); err != nil {
		return err
	}
	*startedRegistry = !registryAnswers()
	if err := runLogged("build-test-images", filepath.Join(env.repo, "hack", "build-test-images.sh")); err != nil {
		return err
	}
	*shmBefore = shmSegments()
	cfg, err := writeConfig()
	if err != nil {
		return err
	}
	env.cfgPath = cfg
	// A drop-in dir of the run's own, so a host's /etc/cri-runtime/config.d
	// never reaches the daemon under test.
	env.configDir = filepath.Join(env.tmp, "config.d")
	if err := os.MkdirAll(env.configDir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(env.artifacts, "daemon.log"))
	d, err := startDaemon(cfg)
	*daemon = d
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(env.endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	env.conn = conn
	env.rt = runtimeapi.NewRuntimeServiceClient(conn)
	env.img = runtimeapi.NewImageServiceClient(conn)
	return nil
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// buildDaemon uses CRI_RUNTIME_BIN when set (cri-runtime-shim and
// cri-runtime-pause next to it), and otherwise builds all three from this
// tree with the Makefile's own recipe (make build BIN=<tmp>/bin), so
// `go test ./test/e2e` always tests the current code.
func buildDaemon() error {
	if bin := os.Getenv("CRI_RUNTIME_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("CRI_RUNTIME_BIN: %w", err)
		}
		env.binDir = filepath.Dir(bin)
		return nil
	}
	env.binDir = filepath.Join(env.tmp, "bin")
	cmd := exec.Command("make", "--no-print-directory", "build", "BIN="+env.binDir)
	cmd.Dir = env.repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make build BIN=%s: %v\n%s", env.binDir, err, out)
	}
	return nil
}

func daemonBin() string {
	if bin := os.Getenv("CRI_RUNTIME_BIN"); bin != "" {
		return bin
	}
	return filepath.Join(env.binDir, "cri-runtime")
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

// runLogged runs a repo script, its output kept in the artifacts dir.
func runLogged(name string, argv ...string) error {
	logPath := filepath.Join(env.artifacts, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = env.repo
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// mirroredRegistries are the public hosts the tests name; the daemon is
// told to pull them from the local registry only (fallback = false, so a
// missing image fails instead of reaching out).
var mirroredRegistries = []string{"registry.k8s.io", "gcr.io", "k8s.gcr.io", "docker.io"}

// writeConfig writes the daemon's config: E2E_DAEMON_CONFIG when set (a
// file to use as is), otherwise version 1 with
//   - a [network] of the run's own: hack/install-cni-config.sh's network in
//     <tmp>/cni/net.d (the host's /etc/cni/net.d is neither needed nor
//     touched), the CNI cache under the root and pinned netns under the
//     state dir, where the leak checks look;
//   - [nri] enabled, with its socket, plugin and plugin-config dirs in
//     <tmp>/nri (no host plugin is started) and a request timeout above
//     the 2s critest holds a plugin's Synchronize open;
//   - a "test-handler" runtime handler (runc), the RuntimeClass handler
//     the node e2e suite's RuntimeClass and PodOverhead specs name, as the
//     upstream node e2e jobs configure their runtimes;
//   - a [registry.mirrors."<host>"] table per mirrored registry. The daemon
//     refuses unknown keys, so a daemon that cannot read these mirrors fails
//     at start-up rather than pulling from the internet.
func writeConfig() (string, error) {
	if p := os.Getenv("E2E_DAEMON_CONFIG"); p != "" {
		return p, nil
	}
	cniDir := filepath.Join(env.tmp, "cni", "net.d")
	if err := runLogged("install-cni-config", filepath.Join(env.repo, "hack", "install-cni-config.sh"), cniDir); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("version = 1\n")
	fmt.Fprintf(&b, "\n[network]\nconf_dir = %q\ncache_dir = %q\nnetns_dir = %q\n",
		cniDir, filepath.Join(env.root, "cni"), filepath.Join(env.state, "netns"))
	nriDir := filepath.Join(env.tmp, "nri")
	env.nriSocket = filepath.Join(nriDir, "nri.sock")
	fmt.Fprintf(&b, "\n[nri]\nenable = true\nsocket_path = %q\nplugin_path = %q\nplugin_config_path = %q\nplugin_request_timeout = \"10s\"\n",
		env.nriSocket, filepath.Join(nriDir, "plugins"), filepath.Join(nriDir, "conf.d"))
	b.WriteString("\n[cri.runtimes.test-handler]\nbinary_path = \"runc\"\n")
	for _, host := range mirroredRegistries {
		fmt.Fprintf(&b, "\n[registry.mirrors.%q]\nendpoints = [\"http://%s\"]\nfallback = false\n", host, registryAddr)
	}
	p := filepath.Join(env.tmp, "config.toml")
	return p, os.WriteFile(p, []byte(b.String()), 0o644)
}

func startDaemon(cfg string) (*exec.Cmd, error) {
	// Appended to: a restarted daemon (the durability tests) logs after the
	// first one; setup removes the log of an earlier run.
	logPath := filepath.Join(env.artifacts, "daemon.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(daemonBin(), "--config", cfg, "--config-dir", env.configDir, "--root", env.root, "--state", env.state, "--socket", env.socket,
		"-v", getenv("E2E_DAEMON_V", "2"))
	cmd.Stdout, cmd.Stderr = f, f
	// The shim is looked up next to the daemon or on PATH.
	cmd.Env = append(os.Environ(), "PATH="+env.binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	// Its own process group: a ^C to `go test` reaches the harness, which
	// then stops the daemon in order instead of both dying at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", daemonBin(), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); f.Close() }()
	daemonExited = exited
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			daemonExited = nil
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("daemon exited during start-up (%v); its log:\n%s", err, tail(string(out), 40))
		case <-time.After(100 * time.Millisecond):
		}
		if daemonAnswers() {
			return cmd, nil
		}
	}
	out, _ := os.ReadFile(logPath)
	return cmd, fmt.Errorf("daemon did not answer Version on %s within 30s; its log:\n%s", env.socket, tail(string(out), 40))
}

// daemonExited delivers the daemon's exit (its Wait runs in a goroutine).
var daemonExited <-chan error

func daemonAnswers() bool {
	if _, err := os.Stat(env.socket); err != nil {
		return false
	}
	conn, err := grpc.NewClient(env.endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
	return err == nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
