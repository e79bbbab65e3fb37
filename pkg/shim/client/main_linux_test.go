package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/client"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

// Integration tests: the real shim binary, real runc, a busybox rootfs.

var (
	shimBinary string // built by TestMain
	busyboxDir string // a rootfs holding /bin/busybox and its applets
	setupErr   error
)

func TestMain(m *testing.M) {
	code := func() int {
		tmp, err := os.MkdirTemp("/tmp", "shimbin")
		if err != nil {
			setupErr = err
			return m.Run()
		}
		defer os.RemoveAll(tmp)
		shimBinary = filepath.Join(tmp, "cri-runtime-shim")
		// Built as shipped (static, stripped), or raced too under -race:
		// the shim's race reports land in shim.log, which cleanup checks.
		args := []string{"build", "-o", shimBinary, "-ldflags", "-s -w"}
		env := append(os.Environ(), "CGO_ENABLED=0")
		if raceEnabled {
			args = append(args, "-race")
			env = os.Environ()
		}
		build := exec.Command("go", append(args, "./cmd/cri-runtime-shim")...)
		build.Env = env
		build.Dir = "../../.."
		if out, err := build.CombinedOutput(); err != nil {
			setupErr = fmt.Errorf("build shim: %v: %s", err, out)
		}
		if setupErr == nil {
			busyboxDir, setupErr = makeBusyboxRootfs(tmp)
		}
		return m.Run()
	}()
	os.Exit(code)
}

func makeBusyboxRootfs(tmp string) (string, error) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		return "", nil // requireBinary skips
	}
	dir := filepath.Join(tmp, "busybox")
	return dir, testutil.BusyboxRootfs(dir)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (mounts, runc)")
	}
}

func requireBinary(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("skipping: %s is not installed", name)
	}
}

func requireIntegration(t *testing.T) {
	t.Helper()
	requireRoot(t)
	requireBinary(t, "runc")
	requireBinary(t, "busybox")
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

// task is one test container: its dir, bundle, shim and the cleanup that
// removes all of it whatever happened.
type task struct {
	t        *testing.T
	id       string
	dir      string
	bundle   string
	socket   string
	runcRoot string
	cgroup   string
	logPath  string
	client   *client.Client
	shimPid  int
}

type taskOpt func(*specs.Spec)

func withMemoryLimit(bytes int64) taskOpt {
	return func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &bytes}}
	}
}

// newTask writes a bundle running args, starts a shim for it and registers
// cleanup for every shim, mount, runc state, cgroup and dir.
func newTask(t *testing.T, args []string, opts ...taskOpt) *task {
	t.Helper()
	requireIntegration(t)
	dir, err := os.MkdirTemp("/tmp", "shim")
	if err != nil {
		t.Fatal(err)
	}
	k := &task{
		t: t, id: "t" + filepath.Base(dir)[4:], dir: dir,
		bundle: filepath.Join(dir, "b"), socket: filepath.Join(dir, "s.sock"),
		runcRoot: filepath.Join(dir, "r"), logPath: filepath.Join(dir, "logs", "c.log"),
	}
	k.cgroup = "/shimtest-" + k.id
	t.Cleanup(k.cleanup)
	if err := os.MkdirAll(filepath.Join(k.bundle, api.RootfsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(args, k.cgroup)
	for _, o := range opts {
		o(spec)
	}
	writeSpec(t, k.bundle, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k.client, k.shimPid, err = client.Start(ctx, client.StartOpts{
		ShimBinary: shimBinary, Namespace: "test", ID: k.id, Bundle: k.bundle,
		Socket: k.socket, RuntimeBinary: "runc", RuntimeRoot: k.runcRoot, Debug: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeSpec(t *testing.T, bundle string, spec *specs.Spec) {
	t.Helper()
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func testSpec(args []string, cgroup string) *specs.Spec {
	return &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: api.RootfsDir},
		Hostname: "shimtest",
		Process: &specs.Process{
			Args: args, Cwd: "/", Env: []string{"PATH=/bin", "TERM=xterm"},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroup,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
}

func (k *task) createReq() api.CreateRequest {
	return api.CreateRequest{
		ID: k.id, Bundle: k.bundle, IO: api.IO{LogPath: k.logPath},
		Rootfs: []api.Mount{{Type: "bind", Source: busyboxDir, Options: []string{"rbind", "ro"}}},
	}
}

// run creates and starts the init.
func (k *task) run(ctx context.Context) int {
	k.t.Helper()
	if _, err := k.client.Create(ctx, k.createReq()); err != nil {
		k.t.Fatalf("create: %v", err)
	}
	pid, err := k.client.Start(ctx, "")
	if err != nil {
		k.t.Fatalf("start: %v", err)
	}
	return pid
}

func (k *task) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if k.client != nil {
		_ = k.client.Kill(ctx, api.KillRequest{Signal: uint32(syscall.SIGKILL), All: true})
		_, _ = k.client.Delete(ctx, "")
		_ = k.client.Shutdown(ctx)
	}
	if k.shimPid > 0 {
		_ = syscall.Kill(k.shimPid, syscall.SIGKILL)
	}
	if log, err := os.ReadFile(filepath.Join(k.bundle, api.ShimLogFile)); err == nil && strings.Contains(string(log), "DATA RACE") {
		k.t.Errorf("race in the shim:\n%s", log)
	}
	_ = exec.Command("runc", "--root", k.runcRoot, "delete", "--force", k.id).Run()
	_ = syscall.Unmount(filepath.Join(k.bundle, api.RootfsDir), syscall.MNT_DETACH)
	ctrls, _ := filepath.Glob("/sys/fs/cgroup/*" + k.cgroup)
	for _, c := range ctrls {
		_ = os.Remove(c)
	}
	_ = os.RemoveAll(k.dir)
}

// mounted reports whether the bundle's rootfs is a mount point.
func (k *task) mounted() bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(data), " "+filepath.Join(k.bundle, api.RootfsDir)+" ")
}

// criLines returns (stream, tag, message) of every record in a CRI log.
func criLines(t *testing.T, path string) [][3]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][3]string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 {
			t.Fatalf("malformed CRI record %q", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Fatalf("bad timestamp in %q", l)
		}
		out = append(out, [3]string{f[1], f[2], f[3]})
	}
	return out
}

func isClass(err error, class error) bool { return errors.Is(err, class) }
