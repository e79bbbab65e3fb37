package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// teardown undoes what the run did, in order, and returns the leaks it
// found on the way: what the daemon should have cleaned up itself.
func teardown(daemon *exec.Cmd, startedRegistry bool, shmBefore map[int]bool) []string {
	var found []string
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "e2e teardown: "+format+"\n", args...) }

	if daemon != nil && env.rt != nil {
		// The veths and IPs of the pods still there, from the CNI cache,
		// before their removal deletes it: a veth left on the bridge can
		// then still be tied to its pod.
		rememberNet()
		removeAll(logf)
		// With every pod gone, no shim of this run may be alive.
		for _, p := range ourShims() {
			found = append(found, fmt.Sprintf("shim process %d after every pod was removed: %s", p.pid, p.cmdline))
		}
	}
	if env.conn != nil {
		env.conn.Close()
	}
	if daemon != nil {
		stopDaemon(daemon, logf)
		for _, m := range mountsUnder(env.tmp) {
			// The netns dir is bind-mounted on itself on purpose (so pinned
			// namespaces can be mounted into it) and stays for the next
			// start; only what is mounted inside it is a leak.
			if m == netnsDir() {
				continue
			}
			found = append(found, "mount after the daemon stopped: "+m)
		}
		for _, n := range netnsFiles() {
			found = append(found, "netns file after the daemon stopped: "+n)
		}
		// On the shared host, only what names an id of this run counts.
		hostFound := hostLeaks(runIDs())
		for _, l := range hostFound {
			found = append(found, l+" after the daemon stopped")
		}
		cleanHostLeaks(runIDs(), logf)
	}
	// Clean up whatever is left, leak or not.
	if env.tmp != "" {
		for _, p := range ourShims() {
			logf("killing leftover shim %d", p.pid)
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		// A leftover shim's container outlives it (re-parented to init):
		// kill what runc still knows of, as a reboot would.
		for _, id := range killContainersUnder(filepath.Join(env.state, "runtime")) {
			logf("killed leftover container %s", id)
		}
		for _, m := range mountsUnder(env.tmp) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				logf("unmount %s: %v", m, err)
			}
		}
	}
	for id, critestLeftover := range shmSegments() {
		if critestLeftover && !shmBefore[id] {
			if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
				logf("remove shm segment %d: %v", id, err)
			}
		}
	}
	if startedRegistry {
		if out, err := exec.Command(filepath.Join(env.repo, "hack", "registry.sh"), "stop").CombinedOutput(); err != nil {
			logf("stop registry: %v: %s", err, out)
		}
	}
	if env.tmp != "" {
		if left := mountsUnder(env.tmp); len(left) > 0 {
			// Never RemoveAll across a mount: it would delete what is mounted.
			logf("keeping %s: still mounted: %v", env.tmp, left)
		} else if err := os.RemoveAll(env.tmp); err != nil {
			logf("remove %s: %v", env.tmp, err)
		}
	}
	return found
}

// removeAll stops and removes every container and pod through the CRI, as
// the kubelet would; StopX/RemoveX are idempotent, so errors are only logged.
func removeAll(logf func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if cs, err := env.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err == nil {
		for _, c := range cs.GetContainers() {
			if _, err := env.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.GetId(), Timeout: 5}); err != nil {
				logf("stop container %s: %v", c.GetId(), err)
			}
			if _, err := env.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.GetId()}); err != nil {
				logf("remove container %s: %v", c.GetId(), err)
			}
		}
	} else {
		logf("list containers: %v", err)
	}
	if ps, err := env.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
		for _, p := range ps.GetItems() {
			if _, err := env.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
				logf("stop pod %s: %v", p.GetId(), err)
			}
			if _, err := env.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
				logf("remove pod %s: %v", p.GetId(), err)
			}
		}
	} else {
		logf("list pods: %v", err)
	}
}

// stopDaemon sends SIGTERM, waits up to 15 s, then SIGKILL: only to the
// daemon this run started, by its PID.
func stopDaemon(daemon *exec.Cmd, logf func(string, ...any)) {
	if daemon.Process == nil || daemonExited == nil {
		return
	}
	_ = daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-daemonExited:
		return
	case <-time.After(15 * time.Second):
	}
	logf("daemon %d ignored SIGTERM for 15s: SIGKILL", daemon.Process.Pid)
	_ = daemon.Process.Kill()
	select {
	case <-daemonExited:
	case <-time.After(5 * time.Second):
		logf("daemon %d still not reaped", daemon.Process.Pid)
	}
}
