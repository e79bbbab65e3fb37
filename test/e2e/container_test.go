package e2e

// Container lifecycle and security scenarios through the CRI socket
// (issue "Containers: lifecycle, OCI spec generation, security").

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	e2eBusybox = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
)

// pod is a running pod sandbox of a test, removed in t.Cleanup.
type pod struct {
	id  string
	cfg *runtimeapi.PodSandboxConfig
}

func runPod(t *testing.T, name string, mutate ...func(*runtimeapi.PodSandboxConfig)) *pod {
	t.Helper()
	requireEnv(t)
	ctx := context.Background()
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: fmt.Sprintf("%s-%d", name, time.Now().UnixNano())},
		LogDirectory: filepath.Join(env.tmp, "pods", name),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	for _, m := range mutate {
		m(cfg)
	}
	resp, err := env.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox %s: %v", name, err)
	}
	p := &pod{id: resp.GetPodSandboxId(), cfg: cfg}
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := env.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
			t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := env.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	})
	return p
}

func pullImage(t *testing.T, ref string) {
	t.Helper()
	requireEnv(t)
	if _, err := env.img.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
}

// container creates (and unless created-only, starts) a container in p.
func (p *pod) container(t *testing.T, name string, cfg *runtimeapi.ContainerConfig, start bool) string {
	t.Helper()
	ctx := context.Background()
	cfg.Metadata = &runtimeapi.ContainerMetadata{Name: name}
	if cfg.Image == nil {
		cfg.Image = &runtimeapi.ImageSpec{Image: e2eBusybox}
	}
	if cfg.LogPath == "" {
		cfg.LogPath = name + ".log"
	}
	resp, err := env.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.cfg})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	id := resp.GetContainerId()
	if start {
		if _, err := env.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("StartContainer %s: %v", name, err)
		}
	}
	return id
}

func containerStatus(t *testing.T, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	resp, err := env.rt.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return resp.GetStatus()
}

// waitExited waits for a container to exit and returns its status.
func waitExited(t *testing.T, id string, within time.Duration) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := containerStatus(t, id)
		if st.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s still %s after %s", id, st.GetState(), within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logLines returns the messages of a CRI log file.
func logLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.SplitN(line, " ", 4); len(f) == 4 {
			out = append(out, f[3])
		}
	}
	return out
}

func execSync(t *testing.T, id string, cmd ...string) (string, int32) {
	t.Helper()
	resp, err := env.rt.ExecSync(context.Background(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 10})
	if err != nil {
		t.Fatalf("ExecSync %v: %v", cmd, err)
	}
	return string(resp.GetStdout()) + string(resp.GetStderr()), resp.GetExitCode()
}

func sh(script string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{Command: []string{"sh", "-c", script}}
}

// noPause makes a pod as the kubelet sends one without
// shareProcessNamespace: PID mode CONTAINER, so the daemon runs no pause
// for it and pins its namespaces instead.
func noPause(cfg *runtimeapi.PodSandboxConfig) {
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
	}
}

// ownPID gives a container its own PID namespace, as the kubelet does in
// a noPause pod.
func ownPID(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
	c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
	}}
	return c
}

func TestContainerExitReasons(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "exits")
	for _, tc := range []struct {
		name       string
		script     string
		wantCode   int32
		wantReason string
		wantLog    string
	}{
		{"completed", "echo all good", 0, "Completed", "all good"},
		{"error", "echo failing >&2; exit 2", 2, "Error", "failing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := p.container(t, tc.name, sh(tc.script), true)
			st := waitExited(t, id, 20*time.Second)
			if st.GetExitCode() != tc.wantCode || st.GetReason() != tc.wantReason {
				t.Fatalf("exit %d reason %q, want %d %q", st.GetExitCode(), st.GetReason(), tc.wantCode, tc.wantReason)
			}
			if st.GetFinishedAt() < st.GetStartedAt() || st.GetStartedAt() == 0 {
				t.Fatalf("times: started %d finished %d", st.GetStartedAt(), st.GetFinishedAt())
			}
			if lines := logLines(t, st.GetLogPath()); len(lines) != 1 || lines[0] != tc.wantLog {
				t.Fatalf("log %q, want [%q]", lines, tc.wantLog)
			}
		})
	}
}

func TestContainerOOMKilled(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "oom")
	// dd is the container's init: it is the process the OOM killer picks.
	cfg := sh("exec dd if=/dev/zero of=/dev/null bs=64M count=1")
	cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 20 << 20}}
	id := p.container(t, "hog", cfg, true)
	st := waitExited(t, id, 30*time.Second)
	if st.GetReason() != "OOMKilled" || st.GetExitCode() != 137 {
		t.Fatalf("exit %d reason %q, want 137 OOMKilled", st.GetExitCode(), st.GetReason())
	}
}

func TestStopTimeoutEscalates(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "stubborn")
	id := p.container(t, "ignore-term", sh("trap '' TERM; echo ready; while true; do sleep 1; done"), true)
	waitLog(t, containerStatus(t, id).GetLogPath(), "ready")
	start := time.Now()
	if _, err := env.rt.StopContainer(context.Background(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 2}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	st := containerStatus(t, id)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 137 {
		t.Fatalf("after stop: %s exit %d, want EXITED 137", st.GetState(), st.GetExitCode())
	}
	if took < 2*time.Second || took > 5*time.Second {
		t.Fatalf("stop took %s, want about 2s", took)
	}
}

func waitLog(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%q never appeared in %s", want, path)
}

func TestContainerSecurity(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "security")
	profile := filepath.Join(env.tmp, "deny-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		sc       *runtimeapi.LinuxContainerSecurityContext
		cmd      []string
		wantCode int32 // -1: any non-zero
		wantOut  string
	}{
		{"run as user by name", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "www-data"}, []string{"id", "-u"}, 0, "33"},
		{"readonly rootfs refuses writes", &runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: true}, []string{"touch", "/newfile"}, -1, "Read-only file system"},
		{"NET_RAW kept by default", &runtimeapi.LinuxContainerSecurityContext{}, []string{"ping", "-c1", "-W2", "127.0.0.1"}, 0, "1 packets received"},
		{"dropped NET_RAW refuses raw sockets", &runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{DropCapabilities: []string{"NET_RAW"}}}, []string{"ping", "-c1", "-W2", "127.0.0.1"}, -1, "ermission denied"},
		{"localhost seccomp denies mkdir", &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile}}, []string{"mkdir", "/tmp/x"}, -1, "Operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sh("sleep 1000")
			cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: tc.sc}
			id := p.container(t, strings.ReplaceAll(tc.name, " ", "-"), cfg, true)
			out, code := execSync(t, id, tc.cmd...)
			if (tc.wantCode == -1 && code == 0) || (tc.wantCode != -1 && code != tc.wantCode) {
				t.Fatalf("%v exited %d (%q), want %d", tc.cmd, code, out, tc.wantCode)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Fatalf("%v printed %q, want %q in it", tc.cmd, out, tc.wantOut)
			}
			if _, err := env.rt.RemoveContainer(context.Background(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPodPIDNamespace(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "sharedpid", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}}
	})
	pidPod := &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}}}
	a := sh("sleep 1001")
	a.Linux = pidPod
	p.container(t, "a", a, true)
	b := sh("sleep 1002")
	b.Linux = pidPod
	idB := p.container(t, "b", b, true)
	out, code := execSync(t, idB, "ps")
	if code != 0 || !strings.Contains(out, "sleep 1001") || !strings.Contains(out, "pause") {
		t.Fatalf("ps in b (exit %d) does not show a's process and the pause:\n%s", code, out)
	}
}

func TestHostPathRshared(t *testing.T) {
	pullImage(t, e2eBusybox)
	host := filepath.Join(env.tmp, "rshared")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	// The source must be on a shared mount for rshared to propagate.
	for _, args := range [][]string{{"--bind", host, host}, {"--make-rshared", host}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v: %v %s", args, err, out)
		}
	}
	t.Cleanup(func() {
		_ = syscall.Unmount(filepath.Join(host, "inner"), syscall.MNT_DETACH)
		_ = syscall.Unmount(host, syscall.MNT_DETACH)
	})
	p := runPod(t, "rshared", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}
	})
	cfg := sh("mkdir -p /mnt/shared/inner && mount -t tmpfs tmpfs /mnt/shared/inner && echo hi > /mnt/shared/inner/file && sleep 1000")
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt/shared", HostPath: host, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
	cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Privileged: true}}
	id := p.container(t, "mounter", cfg, true)
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, err := os.ReadFile(filepath.Join(host, "inner", "file"))
		if err == nil && strings.TrimSpace(string(data)) == "hi" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's mount did not propagate to the host: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := env.rt.StopContainer(context.Background(), &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
}

func TestManyContainersInParallel(t *testing.T) {
	pullImage(t, e2eBusybox)
	const pods, perPod = 5, 10
	var ps []*pod
	for i := range pods {
		ps = append(ps, runPod(t, fmt.Sprintf("many-%d", i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, pods*perPod)
	for i, p := range ps {
		for j := range perPod {
			wg.Add(1)
			go func(p *pod, name string) {
				defer wg.Done()
				ctx := context.Background()
				cfg := sh("echo " + name + "; sleep 1000")
				cfg.Metadata = &runtimeapi.ContainerMetadata{Name: name}
				cfg.Image = &runtimeapi.ImageSpec{Image: e2eBusybox}
				cfg.LogPath = name + ".log"
				resp, err := env.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.cfg})
				if err != nil {
					errs <- fmt.Errorf("create %s: %w", name, err)
					return
				}
				if _, err := env.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.GetContainerId()}); err != nil {
					errs <- fmt.Errorf("start %s: %w", name, err)
				}
			}(p, fmt.Sprintf("c-%d-%d", i, j))
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	resp, err := env.rt.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, c := range resp.GetContainers() {
		if strings.HasPrefix(c.GetMetadata().GetName(), "c-") {
			running++
		}
	}
	if running != pods*perPod {
		t.Fatalf("%d containers running, want %d", running, pods*perPod)
	}
}

// TestKubeletHugepageLimits: the kubelet sends a hugepage limit for every
// page size the host offers (limit 0 without hugepage requests), also on
// hosts without a hugetlb cgroup controller, where runc refuses them. The
// container must still run (tolerate_missing_hugetlb_controller).
func TestKubeletHugepageLimits(t *testing.T) {
	pullImage(t, e2eBusybox)
	sizes, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil || len(sizes) == 0 {
		t.Skipf("this host offers no hugepage sizes (%v): the kubelet would send no limits", err)
	}
	var limits []*runtimeapi.HugepageLimit
	for _, d := range sizes {
		kb := strings.TrimSuffix(strings.TrimPrefix(d.Name(), "hugepages-"), "kB")
		var n int
		if _, err := fmt.Sscan(kb, &n); err != nil {
			t.Fatalf("hugepage dir %s: %v", d.Name(), err)
		}
		size := fmt.Sprintf("%dKB", n)
		switch {
		case n%(1<<20) == 0:
			size = fmt.Sprintf("%dGB", n>>20)
		case n%(1<<10) == 0:
			size = fmt.Sprintf("%dMB", n>>10)
		}
		limits = append(limits, &runtimeapi.HugepageLimit{PageSize: size, Limit: 0})
	}
	p := runPod(t, "hugepages")
	cfg := sh("echo ran")
	cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{HugepageLimits: limits, CpuShares: 2}}
	id := p.container(t, "c", cfg, true)
	st := waitExited(t, id, 20*time.Second)
	if st.GetExitCode() != 0 {
		t.Fatalf("exit %d (%s)", st.GetExitCode(), st.GetMessage())
	}
	if lines := logLines(t, st.GetLogPath()); len(lines) != 1 || lines[0] != "ran" {
		t.Fatalf("log %q, want [ran]", lines)
	}
	// The kubelet's UpdateContainerResources carries the same limits.
	run := p.container(t, "running", sh("sleep 60"), true)
	if _, err := env.rt.UpdateContainerResources(context.Background(), &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: run, Linux: &runtimeapi.LinuxContainerResources{HugepageLimits: limits, CpuShares: 4},
	}); err != nil {
		t.Fatalf("UpdateContainerResources with hugepage limits: %v", err)
	}
}
