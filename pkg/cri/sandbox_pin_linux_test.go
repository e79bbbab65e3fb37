package cri

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// noPauseConfig is a pod as the kubelet sends one without
// shareProcessNamespace: PID mode CONTAINER, with sysctls of the two
// namespaces that can have them.
func (e *testEnv) noPauseConfig(name string) *runtimeapi.PodSandboxConfig {
	cfg := e.podConfig(name)
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
	}
	cfg.Linux.Sysctls = map[string]string{"kernel.shmmni": "2048", "net.ipv4.ip_unprivileged_port_start": "81"}
	return cfg
}

// runOwnPIDContainer creates and starts a container in its own PID
// namespace, as the kubelet does in such a pod.
func (e *testEnv) runOwnPIDContainer(ctx context.Context, sbID string, sbCfg *runtimeapi.PodSandboxConfig, name string, args ...string) string {
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
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			}},
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

func (e *testEnv) execOut(ctx context.Context, id string, cmd ...string) string {
	e.t.Helper()
	resp, err := e.client.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 10})
	if err != nil || resp.GetExitCode() != 0 {
		e.t.Fatalf("exec %v in %s: %v, exit %d, stderr %q", cmd, id, err, resp.GetExitCode(), resp.GetStderr())
	}
	return string(resp.GetStdout())
}

// podView is what a container sees of its pod's namespaces.
const podView = "hostname; cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_unprivileged_port_start; for n in ipc uts net; do readlink /proc/self/ns/$n; done"

// TestSandboxWithoutPause (issue 14 item 1): a pod in PID mode CONTAINER
// runs no pause task and no shim; its containers share the pinned network,
// IPC and UTS namespaces (hostname, sysctls, /dev/shm, as seen from inside
// them), its stats come from its containers and its netns, it stays READY
// across a daemon restart (where a new container joins it), and a stop
// removes the pins and makes it NOTREADY for good.
func TestSandboxWithoutPause(t *testing.T) {
	e := newTestEnv(t, withImages())
	_, ctx := ktesting.NewTestContext(t)
	cfg := e.noPauseConfig("nopause")
	id := e.run(ctx, cfg)

	st := e.status(ctx, id)
	if st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY || st.GetStatus().GetNetwork().GetIp() == "" {
		t.Fatalf("status = %v", st.GetStatus())
	}
	if pid, _ := sandboxInfoOf(t, st); pid != 0 {
		t.Errorf("info pid = %d, want 0: no pause", pid)
	}
	if _, err := e.svc.tasks.Get(taskNamespace, id); !errdefs.IsNotFound(err) {
		t.Errorf("task of the sandbox: %v, want NotFound", err)
	}
	if pids := pidsWithCmdline("cri-runtime-shim", e.state+"/", id); len(pids) != 0 {
		t.Errorf("shims of the sandbox: %v, want none", pids)
	}
	ipcPin, utsPin := filepath.Join(e.netnsDir(), id+".ipc"), filepath.Join(e.netnsDir(), id+".uts")
	for _, p := range []string{ipcPin, utsPin} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("pinned namespace: %v", err)
		}
	}

	a := e.runOwnPIDContainer(ctx, id, cfg, "a", "sleep", "100000")
	b := e.runOwnPIDContainer(ctx, id, cfg, "b", "sleep", "100000")
	va, vb := strings.Fields(e.execOut(ctx, a, "sh", "-c", podView)), strings.Fields(e.execOut(ctx, b, "sh", "-c", podView))
	if len(va) != 6 || va[0] != "nopause" || va[1] != "2048" || va[2] != "81" {
		t.Errorf("container a sees hostname, kernel.shmmni, ip_unprivileged_port_start, ns: %q; want nopause 2048 81 …", va)
	}
	if strings.Join(va, " ") != strings.Join(vb, " ") {
		t.Errorf("the pod's containers see different namespaces:\n a %q\n b %q", va, vb)
	}
	for i, n := range []string{"ipc", "uts", "net"} {
		if host, _ := os.Readlink("/proc/self/ns/" + n); len(va) == 6 && va[3+i] == host {
			t.Errorf("container's %s namespace is the host's %s", n, host)
		}
	}
	if host, _ := os.ReadFile("/proc/sys/kernel/shmmni"); strings.TrimSpace(string(host)) == "2048" {
		t.Errorf("the pod's sysctl reached the host")
	}
	e.execOut(ctx, a, "sh", "-c", "echo shared > /dev/shm/x")
	if got := e.execOut(ctx, b, "cat", "/dev/shm/x"); got != "shared\n" {
		t.Errorf("/dev/shm/x in b = %q, want what a wrote", got)
	}

	ps, err := e.client.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id})
	if err != nil {
		t.Fatalf("PodSandboxStats: %v", err)
	}
	l := ps.GetStats().GetLinux()
	if len(l.GetContainers()) != 2 || l.GetMemory().GetWorkingSetBytes().GetValue() == 0 || l.GetProcess().GetProcessCount().GetValue() < 2 {
		t.Errorf("pod stats: containers %d, memory %v, processes %v", len(l.GetContainers()), l.GetMemory(), l.GetProcess())
	}
	if d := l.GetNetwork().GetDefaultInterface(); d.GetName() != "eth0" || d.GetTxBytes() == nil {
		t.Errorf("pod network: %v", l.GetNetwork())
	}

	// A restart keeps it READY; a container made after it joins the pins.
	e.restart()
	if st := e.status(ctx, id).GetStatus(); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("after restart: %v, want READY", st.GetState())
	}
	c := e.runOwnPIDContainer(ctx, id, cfg, "c", "sleep", "100000")
	if vc := strings.Fields(e.execOut(ctx, c, "sh", "-c", podView)); strings.Join(vc, " ") != strings.Join(va, " ") {
		t.Errorf("a container made after the restart sees %q, want %q", vc, va)
	}

	if _, err := e.client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if st := e.status(ctx, id).GetStatus(); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("after stop: %v", st.GetState())
	}
	for _, p := range []string{ipcPin, utsPin} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("pinned namespace after stop: %v", err)
		}
	}
	e.restart()
	if st := e.status(ctx, id).GetStatus(); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("a stopped pod after a restart: %v, want NOTREADY", st.GetState())
	}
	e.stopAndRemove(ctx, id)
	e.assertNoLeaks(id)
}

// TestSandboxWithoutPauseAfterReboot: a pod without a pause whose pinned
// namespaces and sandbox dir are gone when the daemon starts (a reboot
// empties the state dir) is NOTREADY, and removes cleanly.
func TestSandboxWithoutPauseAfterReboot(t *testing.T) {
	e := newTestEnv(t)
	_, ctx := ktesting.NewTestContext(t)
	id := e.run(ctx, e.noPauseConfig("rebooted"))
	e.close()
	if err := removeNetNS(filepath.Join(e.netnsDir(), id+".ipc")); err != nil {
		t.Fatal(err)
	}
	if err := removeNetNS(filepath.Join(e.netnsDir(), id+".uts")); err != nil {
		t.Fatal(err)
	}
	e.open()
	if st := e.status(ctx, id).GetStatus(); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("with its pinned namespaces gone: %v, want NOTREADY", st.GetState())
	}
	e.stopAndRemove(ctx, id)
	e.assertNoLeaks(id)
}

// TestSandboxWithoutPauseRefusesPodPID: a container asking for the pod's
// PID namespace in a pod that has none is FailedPrecondition, naming why.
func TestSandboxWithoutPauseRefusesPodPID(t *testing.T) {
	e := newTestEnv(t, withImages())
	_, ctx := ktesting.NewTestContext(t)
	cfg := e.noPauseConfig("podpid")
	id := e.run(ctx, cfg)
	if _, err := runtimeapi.NewImageServiceClient(e.conn).PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: execTestImage}}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: id,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "shared"},
			Image:    &runtimeapi.ImageSpec{Image: execTestImage},
			Command:  []string{"true"},
		},
		SandboxConfig: cfg,
	})
	wantCode(t, err, codes.FailedPrecondition, "a pod-PID container in a pod without a pause")
	if err != nil && !strings.Contains(err.Error(), "no pause process") {
		t.Errorf("message %q does not say the pod has no pause", err)
	}
	e.stopAndRemove(ctx, id)
	e.assertNoLeaks(id)
}
