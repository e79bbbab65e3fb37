package e2e

// The durability suite (issue "Durability: restarts, crashes, faults and
// hostile input lose nothing and leak nothing"): each test fails if the
// property it names breaks.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// counterScript prints 0, 1, 2, … once per 10 ms.
const counterScript = "i=0; while true; do echo $i; i=$((i+1)); usleep 10000; done"

type snapshot struct {
	pods       map[string]*runtimeapi.PodSandboxStatus
	containers map[string]*runtimeapi.ContainerStatus
}

func takeSnapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{pods: map[string]*runtimeapi.PodSandboxStatus{}, containers: map[string]*runtimeapi.ContainerStatus{}}
	rememberNet() // the pods' veths and IPs, for the leak checks after their removal
	pods, err := env.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.GetItems() {
		st, err := env.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		s.pods[p.GetId()] = st.GetStatus()
	}
	cs, err := env.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.GetContainers() {
		s.containers[c.GetId()] = containerStatus(t, c.GetId())
	}
	return s
}

// containerPid finds a container's init pid on the host through its shim's
// children: the process whose parent is the container's shim.
func containerPid(t *testing.T, id string) int {
	t.Helper()
	shims := ourShims(id)
	if len(shims) != 1 {
		t.Fatalf("want one shim for %s, found %d", id, len(shims))
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", shims[0].pid, shims[0].pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		t.Fatalf("shim of %s has no child", id)
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// checkCounterLog asserts that a counter container's log holds every value
// from 0 up exactly once, and returns the largest gap between consecutive
// timestamps.
func checkCounterLog(t *testing.T, path string) (int, time.Duration) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	next, maxGap := 0, time.Duration(0)
	var last time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) != 4 {
			t.Fatalf("%s: not a CRI log line: %q", path, sc.Text())
		}
		ts, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			t.Fatalf("%s: timestamp %q: %v", path, parts[0], err)
		}
		n, err := strconv.Atoi(parts[3])
		if err != nil || n != next {
			t.Fatalf("%s: line %q, want counter value %d (a line was lost or repeated)", path, parts[3], next)
		}
		if !last.IsZero() && ts.Sub(last) > maxGap {
			maxGap = ts.Sub(last)
		}
		last, next = ts, next+1
	}
	return next, maxGap
}

// checkLeaksAfter registers, before the test's pods (t.Cleanup runs last
// registered first), a leak check of *ids once they are all removed.
func checkLeaksAfter(t *testing.T, ids *[]string) {
	t.Helper()
	t.Cleanup(func() {
		if l := leaks(*ids...); len(l) > 0 {
			t.Errorf("leaks after removal: %v", l)
		}
	})
}

func TestDaemonRestartWithLivePods(t *testing.T) {
	pullImage(t, e2eBusybox)
	const pods = 10
	var ids []string
	checkLeaksAfter(t, &ids)
	counters := map[string]bool{}
	for i := range pods {
		// Every third pod has no pause: its pinned namespaces must keep
		// it READY across the restart.
		mut, ctr := func(*runtimeapi.PodSandboxConfig) {}, func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig { return c }
		if i%3 == 1 {
			mut, ctr = noPause, ownPID
		}
		p := runPod(t, fmt.Sprintf("live-%d", i), mut)
		ids = append(ids, p.id)
		ids = append(ids, p.container(t, "sleeper", ctr(sh("sleep 100000")), true))
		if i%2 == 0 {
			id := p.container(t, "counter", ctr(sh(counterScript)), true)
			counters[id] = true
			ids = append(ids, id)
		} else {
			ids = append(ids, p.container(t, "sleeper2", ctr(sh("sleep 100001")), true))
		}
	}
	pids := map[string]int{}
	for _, id := range ids {
		if _, ok := takeSnapshot(t).containers[id]; ok {
			pids[id] = containerPid(t, id)
		}
	}
	for _, how := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(how.String(), func(t *testing.T) {
			before := takeSnapshot(t)
			restartDaemon(t, how, 5*time.Second)
			after := takeSnapshot(t)
			for id, b := range before.pods {
				a, ok := after.pods[id]
				if !ok {
					t.Fatalf("pod %s lost across the restart", id)
				}
				if a.GetState() != b.GetState() || a.GetCreatedAt() != b.GetCreatedAt() || a.GetNetwork().GetIp() != b.GetNetwork().GetIp() {
					t.Errorf("pod %s changed: before %v %d %s, after %v %d %s", id, b.GetState(), b.GetCreatedAt(), b.GetNetwork().GetIp(), a.GetState(), a.GetCreatedAt(), a.GetNetwork().GetIp())
				}
			}
			for id, b := range before.containers {
				a, ok := after.containers[id]
				if !ok {
					t.Fatalf("container %s lost across the restart", id)
				}
				if a.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING || a.GetStartedAt() != b.GetStartedAt() || a.GetLogPath() != b.GetLogPath() {
					t.Errorf("container %s changed: %v started %d log %s, was %v %d %s", id, a.GetState(), a.GetStartedAt(), a.GetLogPath(), b.GetState(), b.GetStartedAt(), b.GetLogPath())
				}
				if pid := containerPid(t, id); pid != pids[id] {
					t.Errorf("container %s restarted: pid %d, was %d", id, pid, pids[id])
				}
			}
			time.Sleep(300 * time.Millisecond) // the counters write on after the restart
			for id := range counters {
				n, gap := checkCounterLog(t, before.containers[id].GetLogPath())
				if gap >= time.Second {
					t.Errorf("container %s: a %s gap in its log across the outage (want < 1s)", id, gap)
				}
				t.Logf("container %.12s: %d lines, largest gap %s", id, n, gap)
			}
		})
	}
}

func TestExitsWhileDaemonDown(t *testing.T) {
	pullImage(t, e2eBusybox)
	var ids []string
	checkLeaksAfter(t, &ids)
	p := runPod(t, "exit-down")
	gate := "/dev/shm/go" // the containers exit once the daemon is down
	mk := func(script string) *runtimeapi.ContainerConfig {
		return sh("while [ ! -e " + gate + " ]; do usleep 20000; done; " + script)
	}
	zero := p.container(t, "zero", mk("exit 0"), true)
	three := p.container(t, "three", mk("exit 3"), true)
	oomCfg := mk("exec dd if=/dev/zero of=/dev/null bs=64M count=1")
	oomCfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 20 << 20}}
	oom := p.container(t, "oom", oomCfg, true)
	ids = append(ids, p.id, zero, three, oom)
	rememberNet()
	// The pod's /dev/shm is a tmpfs in its sandbox dir on the host: one
	// file written there, while no daemon runs, releases all three.
	down := func() {
		if err := os.WriteFile(filepath.Join(env.state, "sandboxes", p.id, "shm", "go"), nil, 0o644); err != nil {
			t.Errorf("open the gate: %v", err)
		}
	}
	var stoppedAt time.Time
	restartDaemonWhileDown(t, syscall.SIGTERM, func() {
		down()
		time.Sleep(2 * time.Second)
		stoppedAt = time.Now()
	})
	for _, tc := range []struct {
		id     string
		code   int32
		reason string
	}{{zero, 0, "Completed"}, {three, 3, "Error"}, {oom, 137, "OOMKilled"}} {
		st := containerStatus(t, tc.id)
		if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != tc.code || st.GetReason() != tc.reason {
			t.Errorf("%s: %v %d %q, want EXITED %d %q", st.GetMetadata().GetName(), st.GetState(), st.GetExitCode(), st.GetReason(), tc.code, tc.reason)
		}
		if fin := time.Unix(0, st.GetFinishedAt()); !fin.Before(stoppedAt) {
			t.Errorf("%s: finished at %v, not the real time (before %v)", st.GetMetadata().GetName(), fin, stoppedAt)
		}
	}
}

func TestDeadShims(t *testing.T) {
	pullImage(t, e2eBusybox)
	t.Run("container shim", func(t *testing.T) {
		p := runPod(t, "deadshim")
		id := p.container(t, "victim", sh("sleep 100000"), true)
		killShim(t, id)
		st := waitExited(t, id, 20*time.Second)
		if st.GetExitCode() != 137 {
			t.Fatalf("exit %d, want 137", st.GetExitCode())
		}
		ps, err := env.rt.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id})
		if err != nil || ps.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Fatalf("pod after its container's shim died: %v %v", ps.GetStatus().GetState(), err)
		}
		if _, err := env.rt.RemoveContainer(context.Background(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		if l := leaks(id); len(l) > 0 {
			t.Fatalf("leaks: %v", l)
		}
	})
	t.Run("pause shim", func(t *testing.T) {
		p := runPod(t, "deadpause")
		c := p.container(t, "sleeper", sh("sleep 100000"), true)
		rememberNet()
		killShim(t, p.id)
		deadline := time.Now().Add(20 * time.Second)
		for {
			ps, err := env.rt.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id})
			if err != nil {
				t.Fatal(err)
			}
			if ps.GetStatus().GetState() == runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("pod still READY after its pause shim died")
			}
			time.Sleep(100 * time.Millisecond)
		}
		ctx := context.Background()
		if _, err := env.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
			t.Fatal(err)
		}
		if l := leaks(p.id, c); len(l) > 0 {
			t.Fatalf("leaks: %v", l)
		}
	})
}

func killShim(t *testing.T, id string) {
	t.Helper()
	shims := ourShims(id)
	if len(shims) != 1 {
		t.Fatalf("want one shim for %s, found %d", id, len(shims))
	}
	if err := syscall.Kill(shims[0].pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

func TestKillDaemonDuringCreates(t *testing.T) {
	pullImage(t, e2eBusybox)
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	names := map[string]bool{}
	for i := range n {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx := context.Background()
			name := fmt.Sprintf("crash-%d", i)
			mu.Lock()
			names[name] = true
			mu.Unlock()
			cfg := &runtimeapi.PodSandboxConfig{
				Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: name},
				LogDirectory: filepath.Join(env.tmp, "pods", name),
				Linux:        &runtimeapi.LinuxPodSandboxConfig{},
			}
			resp, err := env.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			if err != nil {
				return // the daemon died under it
			}
			c := sh("sleep 100000")
			c.Metadata = &runtimeapi.ContainerMetadata{Name: "c"}
			c.Image = &runtimeapi.ImageSpec{Image: e2eBusybox}
			cr, err := env.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: resp.GetPodSandboxId(), Config: c, SandboxConfig: cfg})
			if err != nil {
				return
			}
			_, _ = env.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.GetContainerId()})
		}(i)
	}
	// Kill it in the middle of the work: once some pods exist.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ps, err := env.rt.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{})
		if err == nil && len(ps.GetItems()) >= n/4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	restartDaemon(t, syscall.SIGKILL, 0)
	wg.Wait()
	ctx := context.Background()
	snap := takeSnapshot(t)
	for id, p := range snap.pods {
		if !names[p.GetMetadata().GetName()] {
			continue
		}
		// Every pod that is listed is usable: it can run a container.
		if p.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			c := sh("echo usable")
			c.Metadata = &runtimeapi.ContainerMetadata{Name: "after"}
			c.Image = &runtimeapi.ImageSpec{Image: e2eBusybox}
			if _, err := env.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: id, Config: c, SandboxConfig: &runtimeapi.PodSandboxConfig{Metadata: p.GetMetadata()}}); err != nil {
				t.Errorf("pod %s is listed READY but cannot take a container: %v", id, err)
			}
		}
	}
	t.Logf("after the crash: %d of %d pods listed", len(snap.pods), n)
	for id, p := range snap.pods {
		if !names[p.GetMetadata().GetName()] {
			continue
		}
		if _, err := env.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("stop %s: %v", id, err)
		}
		if _, err := env.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
	}
	// Nothing of the interrupted creates may be left: no shim, mount or
	// netns of this run outlives the pods (every other test cleaned up).
	if l := leaks(); len(l) > 0 {
		t.Fatalf("left behind after the crash and removal: %v", l)
	}
}

// TestRebootLikeStart: a pod with a pause and one without (whose pinned
// namespaces a reboot takes with the state dir) are both NOTREADY after a
// reboot, their containers EXITED, and both remove cleanly.
func TestRebootLikeStart(t *testing.T) {
	pullImage(t, e2eBusybox)
	ctx := context.Background()
	p := runPod(t, "reboot")
	c := p.container(t, "survivor", sh("sleep 100000"), true)
	q := runPod(t, "reboot-nopause", noPause)
	d := q.container(t, "survivor", ownPID(sh("sleep 100000")), true)
	rememberNet()
	rebootDaemon(t)
	for _, pc := range []struct{ pod, ctr string }{{p.id, c}, {q.id, d}} {
		ps, err := env.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pc.pod})
		if err != nil || ps.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Fatalf("pod %s after a reboot: %v %v, want NOTREADY", pc.pod, ps.GetStatus().GetState(), err)
		}
		if st := containerStatus(t, pc.ctr); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Fatalf("container %s after a reboot: %v, want EXITED", pc.ctr, st.GetState())
		}
		if _, err := env.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pc.pod}); err != nil {
			t.Fatal(err)
		}
		if l := leaks(pc.pod, pc.ctr); len(l) > 0 {
			t.Fatalf("leaks: %v", l)
		}
		if _, err := os.Stat(filepath.Join(env.root, "containers", pc.ctr)); !os.IsNotExist(err) {
			t.Fatalf("the container's layer dir survived its removal: %v", err)
		}
	}
}

func TestHostileInput(t *testing.T) {
	requireEnv(t)
	pullImage(t, e2eBusybox)
	ctx := context.Background()
	p := runPod(t, "hostile")
	okMeta := func(name string) *runtimeapi.PodSandboxMetadata {
		return &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: name}
	}
	huge := strings.Repeat("x", 5<<20)
	for _, tc := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"pod without metadata", func() error {
			_, err := env.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}})
			return err
		}, codes.InvalidArgument},
		{"pod name with a slash", func() error {
			_, err := env.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: okMeta("a/../b")}})
			return err
		}, codes.InvalidArgument},
		{"unknown runtime handler", func() error {
			_, err := env.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: okMeta("h")}, RuntimeHandler: "no-such-handler"})
			return err
		}, codes.InvalidArgument},
		{"relative log directory", func() error {
			_, err := env.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: okMeta("l"), LogDirectory: "relative/dir"}})
			return err
		}, codes.InvalidArgument},
		{"container name with ..", func() error {
			return createErr(ctx, p, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: ".."}, Image: &runtimeapi.ImageSpec{Image: e2eBusybox}})
		}, codes.InvalidArgument},
		{"log path escaping the log directory", func() error {
			return createErr(ctx, p, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "esc"}, Image: &runtimeapi.ImageSpec{Image: e2eBusybox}, LogPath: "../../../etc/evil.log"})
		}, codes.InvalidArgument},
		{"absolute log path", func() error {
			return createErr(ctx, p, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "abs"}, Image: &runtimeapi.ImageSpec{Image: e2eBusybox}, LogPath: "/etc/evil.log"})
		}, codes.InvalidArgument},
		{"relative mount host path", func() error {
			return createErr(ctx, p, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "m1"}, Image: &runtimeapi.ImageSpec{Image: e2eBusybox}, Mounts: []*runtimeapi.Mount{{ContainerPath: "/x", HostPath: "proc/self/root"}}})
		}, codes.InvalidArgument},
		{"relative container path", func() error {
			return createErr(ctx, p, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "m2"}, Image: &runtimeapi.ImageSpec{Image: e2eBusybox}, Mounts: []*runtimeapi.Mount{{ContainerPath: "../../etc", HostPath: "/tmp"}}})
		}, codes.InvalidArgument},
		{"missing image", func() error {
			return createErr(ctx, p, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "noimg"}, Image: &runtimeapi.ImageSpec{Image: "docker.io/library/does-not-exist:1"}})
		}, codes.NotFound},
		{"malformed image reference", func() error {
			_, err := env.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "UPPER/Case::bad@@ref"}})
			return err
		}, codes.InvalidArgument},
		{"huge label", func() error {
			return createErr(ctx, p, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "huge"}, Image: &runtimeapi.ImageSpec{Image: e2eBusybox}, Labels: map[string]string{"k": huge}})
		}, codes.ResourceExhausted},
		{"status of an invalid id", func() error {
			_, err := env.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: "../../etc"})
			return err
		}, codes.NotFound},
		{"start of an empty id", func() error {
			_, err := env.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ""})
			return err
		}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
		})
	}
	if _, err := os.Stat("/etc/evil.log"); err == nil {
		t.Fatal("a log path escaped to /etc")
	}
	// The daemon still serves.
	if _, err := env.rt.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("daemon stopped serving: %v", err)
	}
}

func createErr(ctx context.Context, p *pod, cfg *runtimeapi.ContainerConfig) error {
	_, err := env.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.cfg})
	return err
}

func TestSocketSecurity(t *testing.T) {
	requireEnv(t)
	fi, err := os.Stat(env.socket)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o660 || st.Uid != 0 {
		t.Fatalf("CRI socket mode %v uid %d, want 0660 root", fi.Mode().Perm(), st.Uid)
	}
	shimDir := filepath.Join(env.state, "s")
	di, err := os.Stat(shimDir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("shim socket dir %s mode %v, want 0700 (no other user may reach a shim)", shimDir, di.Mode().Perm())
	}
	pullImage(t, e2eBusybox)
	p := runPod(t, "streaming")
	id := p.container(t, "s", sh("sleep 100000"), true)
	resp, err := env.rt.Exec(context.Background(), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.GetUrl(), "http://127.0.0.1:") {
		t.Fatalf("streaming URL %q is not on loopback", resp.GetUrl())
	}
}

// TestLeakCheckFindsPlantedLeaks shows the host leak checks can fail: it
// plants one leak of each kind for a made-up id, as a dead pod would leave
// it, and wants leaks(id) to report every one, and nothing once removed.
func TestLeakCheckFindsPlantedLeaks(t *testing.T) {
	requireEnv(t)
	n, ok := runNetwork()
	if !ok {
		t.Skip("no CNI network of the run's own (E2E_DAEMON_CONFIG)")
	}
	rnd := make([]byte, 32)
	if _, err := rand.Read(rnd); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(rnd)
	run := func(argv ...string) {
		t.Helper()
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", argv, err, out)
		}
	}
	want := map[string]string{} // kind → what must be named
	// A container cgroup, where runc puts it by default.
	cg := filepath.Join("/sys/fs/cgroup/pids/cri-runtime", id)
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(cg) })
	want["cgroup"] = cg
	// A host-local reservation: an IP at the far end of the run's /16, the
	// file created exclusively so nobody's real reservation is touched.
	ip := "10.99.255.253"
	res := filepath.Join(n.dataDir, n.name, ip)
	if err := os.MkdirAll(filepath.Dir(res), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(res, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("plant reservation: %v", err)
	}
	_, _ = f.WriteString(id + "\r\neth0")
	f.Close()
	t.Cleanup(func() { _ = os.Remove(res) })
	want["IP reservation"] = res
	// A veth pair with one end on the bridge, and the CNI cache entry that
	// ties it to the pod (removed before the check: the veth must still be
	// found through what rememberNet recorded).
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.bridge)); err != nil {
		runPod(t, "leakcheck-bridge") // the bridge plugin makes the bridge
	}
	veth := "veth" + id[:8]
	run("ip", "link", "add", veth, "type", "veth", "peer", "name", "vpeer"+id[:8])
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", veth).Run() })
	run("ip", "link", "set", veth, "master", n.bridge)
	want["veth"] = veth
	if err := os.MkdirAll(cacheResults(), 0o700); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(cacheResults(), n.name+"-"+id+"-eth0")
	entry := fmt.Sprintf(`{"kind":"cniCacheV1","containerId":%q,"result":{"interfaces":[{"name":%q},{"name":%q},{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"%s/16"}]}}`, id, n.bridge, veth, ip)
	if err := os.WriteFile(cache, []byte(entry), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(cache) })
	want["CNI cache entry"] = cache
	// The bridge plugin's masquerade chain for the pod, with a rule naming
	// it (never jumped to, so harmless).
	chain := cniChain("CNI-", n.name, id)
	run("iptables", "-t", "nat", "-N", chain)
	t.Cleanup(func() {
		_ = exec.Command("iptables", "-t", "nat", "-F", chain).Run()
		_ = exec.Command("iptables", "-t", "nat", "-X", chain).Run()
	})
	run("iptables", "-t", "nat", "-A", chain, "-d", ip+"/32", "-m", "comment", "--comment", fmt.Sprintf("name: %q id: %q", n.name, id), "-j", "RETURN")
	want["iptables"] = chain

	got := leaks(id)
	t.Logf("leaks(%.12s) with everything planted:\n  %s", id, strings.Join(got, "\n  "))
	for kind, name := range want {
		found := false
		for _, l := range got {
			if strings.HasPrefix(l, kind) && strings.Contains(l, name) {
				found = true
			}
		}
		if !found {
			t.Errorf("the %s leak (%s) is not reported", kind, name)
		}
	}
	// The veth is still found when only what rememberNet recorded ties it
	// to the pod.
	_ = os.Remove(cache)
	if l := strings.Join(leaks(id), "\n"); !strings.Contains(l, "veth "+veth) {
		t.Errorf("the veth is not reported once the cache entry is gone:\n%s", l)
	}
	// What the teardown does with a failed run's leftovers: the iptables
	// chain, the reservation and the cgroup go through cleanHostLeaks.
	cleanHostLeaks([]string{id}, t.Logf)
	_ = exec.Command("ip", "link", "del", veth).Run()
	if l := leaks(id); len(l) > 0 {
		t.Errorf("still reported after the planted leaks were removed: %v", l)
	}
	netOf.Lock()
	delete(netOf.m, id)
	netOf.Unlock()
}

// wipeCgroups removes the (emptied) cgroups of ids, waiting for their
// killed processes to be gone: what a reboot does to them.
func wipeCgroups(t *testing.T, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		for _, d := range cgroupDirs(ids) {
			if e := os.Remove(d); e != nil && !os.IsNotExist(e) {
				err = e
			}
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("remove the cgroups a reboot would take: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
