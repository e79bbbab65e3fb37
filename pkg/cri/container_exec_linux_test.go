package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/pkg/image"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

// Integration tests of exec with real containers: a registry of its own
// holding a busybox-static image, the real image service, real shims and
// runc, through the real gRPC server (and, for streaming exec, crictl).

// execTestImage is the test image's reference; registry.example is mirrored
// to the test's registry.
const execTestImage = "registry.example/test/busybox:1"

// kubeletMaxMsgSize is the kubelet's CRI client limit on a message
// (k8s.io/cri-client maxMsgSize).
const kubeletMaxMsgSize = 16 << 20

// withImages gives the env an image service over a registry of its own
// that holds execTestImage.
func withImages() envOption { return func(e *testEnv) { e.withImages = true } }

// withCRIConfig changes the [cri] config the daemon runs with.
func withCRIConfig(f func(*Config)) envOption {
	return func(e *testEnv) { e.cfgMods = append(e.cfgMods, f) }
}

// startBusyboxRegistry runs a registry for the test and pushes a one-layer
// image of busybox-static (testutil.BusyboxRootfs) to it.
func startBusyboxRegistry(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipping: needs /bin/busybox (apt-get install busybox-static)")
	}
	addr := testutil.StartRegistry(t)
	root := t.TempDir()
	if err := testutil.BusyboxRootfs(root); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil || path == root {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = rel, 0, 0, "", ""
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatalf("busybox layer: %v", err)
	}
	raw := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Config.Env = []string{"PATH=/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(addr+"/test/busybox:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push busybox: %v", err)
	}
	return addr
}

// openImages opens the image service of the env's root, mirroring
// registry.example to the env's registry.
func (e *testEnv) openImages() *image.Service {
	e.t.Helper()
	cfg := image.DefaultConfig()
	no := false
	cfg.Registry.Mirrors = map[string]image.Mirror{"registry.example": {Endpoints: []string{"http://" + e.registry}, Fallback: &no}}
	svc, err := image.New(e.root, e.st, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

// runContainer pulls execTestImage and creates and starts a container
// running args in the sandbox.
func (e *testEnv) runContainer(ctx context.Context, sbID string, sbCfg *runtimeapi.PodSandboxConfig, name string, args ...string) string {
	e.t.Helper()
	if _, err := runtimeapi.NewImageServiceClient(e.conn).PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: execTestImage}}); err != nil {
		e.t.Fatalf("pull %s: %v", execTestImage, err)
	}
	resp, err := e.client.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: sbID,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: execTestImage},
			Command:  args,
			LogPath:  name + ".log",
		},
		SandboxConfig: sbCfg,
	})
	if err != nil {
		e.t.Fatalf("CreateContainer(%s): %v", name, err)
	}
	if _, err := e.client.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.GetContainerId()}); err != nil {
		e.t.Fatalf("StartContainer(%s): %v", name, err)
	}
	return resp.GetContainerId()
}

// shimOf is the pid of the container's shim.
func (e *testEnv) shimOf(id string) int {
	e.t.Helper()
	pids := pidsWithCmdline("cri-runtime-shim", e.state+"/", id)
	if len(pids) != 1 {
		e.t.Fatalf("shims of container %s: %v", id, pids)
	}
	return pids[0]
}

func shimFDs(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// TestExecSyncReturnsWhileAChildHoldsOutput (issue 13 item 2): a command
// that leaves a child in the background with stdout open returns its
// output once it exited plus the drain timeout, with a timeout and without
// one, through ExecSync and streaming exec; afterwards neither the shim
// (fds, exec entries) nor the daemon (goroutines) keeps anything of it.
func TestExecSyncReturnsWhileAChildHoldsOutput(t *testing.T) {
	const drain = 500 * time.Millisecond
	e := newTestEnv(t, withImages(), withCRIConfig(func(c *Config) { c.DrainExecSyncIOTimeout = Duration(drain) }))
	_, ctx := ktesting.NewTestContext(t)
	sbCfg := e.podConfig("exec")
	sbID := e.run(ctx, sbCfg)
	id := e.runContainer(ctx, sbID, sbCfg, "target", "sleep", "100000")
	shim := e.shimOf(id)
	bundle := filepath.Join(e.state, "tasks", taskNamespace, id)

	// One exec first, so that whatever the shim and the daemon set up once
	// (connections, goroutine pools) is there before counting.
	if _, err := e.client.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}, Timeout: 5}); err != nil {
		t.Fatal(err)
	}
	fdsBefore, goroutinesBefore := shimFDs(t, shim), goruntime.NumGoroutine()

	cmd := []string{"sh", "-c", "sleep 30 & echo started"}
	for _, timeout := range []int64{2, 0, 2, 0} {
		// The call must not wait for the background sleep; bound it well
		// below it, so that a hang fails here rather than at the sleep's end.
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		start := time.Now()
		resp, err := e.client.ExecSync(cctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
		took := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("ExecSync with timeout %d: %v after %s", timeout, err, took)
		}
		if string(resp.GetStdout()) != "started\n" || resp.GetExitCode() != 0 {
			t.Fatalf("ExecSync with timeout %d: stdout %q, exit code %d", timeout, resp.GetStdout(), resp.GetExitCode())
		}
		// The command exits at once; what is left is the drain. Margin: a
		// loaded 2-core machine running runc exec.
		if limit := drain + 2*time.Second; took > limit {
			t.Fatalf("ExecSync with timeout %d took %s, over the drain timeout %s plus a 2s margin", timeout, took, drain)
		}
		t.Logf("ExecSync with timeout %d returned in %s", timeout, took)
	}

	t.Run("streaming", func(t *testing.T) {
		if _, err := exec.LookPath("crictl"); err != nil {
			t.Skip("skipping: crictl is not installed (hack/install-test-tools.sh)")
		}
		for i := 0; i < 2; i++ {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			start := time.Now()
			out, err := exec.CommandContext(cctx, "crictl", "--runtime-endpoint", "unix://"+filepath.Join(e.dir, "cri.sock"),
				"--timeout", "10s", "exec", id, "sh", "-c", "sleep 30 & echo started").CombinedOutput()
			took := time.Since(start)
			cancel()
			if err != nil || !strings.Contains(string(out), "started") {
				t.Fatalf("crictl exec: %v after %s: %q", err, took, out)
			}
			if limit := drain + 3*time.Second; took > limit {
				t.Fatalf("crictl exec took %s, over the drain timeout %s plus a 3s margin", took, drain)
			}
			t.Logf("streaming exec returned in %s", took)
		}
	})

	// Nothing of the execs is left: the shim's fds (each exec has pipes and
	// an attach connection until deleted), its exec pid files, the
	// daemon's copier goroutines.
	if !waitFor(3*time.Second, func() bool { return shimFDs(t, shim) <= fdsBefore }) {
		fds, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(shim), "fd"))
		var targets []string
		for _, fd := range fds {
			l, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(shim), "fd", fd.Name()))
			targets = append(targets, l)
		}
		t.Fatalf("shim has %d fds after the execs, %d before: %v", len(fds), fdsBefore, targets)
	}
	if left, _ := filepath.Glob(filepath.Join(bundle, "exec-*")); len(left) > 0 {
		t.Fatalf("exec files left in the bundle: %v", left)
	}
	if !waitFor(3*time.Second, func() bool { return goruntime.NumGoroutine() <= goroutinesBefore+2 }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after the execs, %d before:\n%s", goruntime.NumGoroutine(), goroutinesBefore, buf[:goruntime.Stack(buf, true)])
	}
	e.stopAndRemove(ctx, sbID)
	e.assertNoLeaks(sbID)
}

// TestExecSyncOutputFitsTheKubeletsLimit (issue 13 item 10): stdout and
// stderr share one cap, so a command writing 12 MiB to each stream gets a
// response that a client with the kubelet's 16 MiB limit receives.
func TestExecSyncOutputFitsTheKubeletsLimit(t *testing.T) {
	e := newTestEnv(t, withImages())
	_, ctx := ktesting.NewTestContext(t)
	sbCfg := e.podConfig("big")
	sbID := e.run(ctx, sbCfg)
	id := e.runContainer(ctx, sbID, sbCfg, "target", "sleep", "100000")

	conn, err := grpc.NewClient("unix://"+filepath.Join(e.dir, "cri.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(kubeletMaxMsgSize), grpc.MaxCallSendMsgSize(kubeletMaxMsgSize)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kubelet := runtimeapi.NewRuntimeServiceClient(conn)
	const each = 12 << 20
	resp, err := kubelet.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Timeout: 60,
		Cmd: []string{"sh", "-c", "head -c 12582912 /dev/zero; head -c 12582912 /dev/zero >&2; exit 3"}})
	if err != nil {
		t.Fatalf("ExecSync of 2 x 12 MiB through the kubelet's 16 MiB limit: %v", err)
	}
	out, errOut := len(resp.GetStdout()), len(resp.GetStderr())
	if size := proto.Size(resp); size > kubeletMaxMsgSize {
		t.Fatalf("response is %d bytes, over %d", size, kubeletMaxMsgSize)
	}
	// stdout came first and is whole; stderr got the rest of the room.
	if out != each || out+errOut != maxExecSyncOutput || resp.GetExitCode() != 3 {
		t.Fatalf("stdout %d bytes, stderr %d, exit code %d; want %d and %d in all, exit 3", out, errOut, resp.GetExitCode(), each, maxExecSyncOutput)
	}
	if bytes.ContainsFunc(resp.GetStderr(), func(r rune) bool { return r != 0 }) {
		t.Fatal("stderr holds something that is not the command's")
	}
	e.stopAndRemove(ctx, sbID)
	e.assertNoLeaks(sbID)
}
