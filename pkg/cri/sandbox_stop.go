package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/lifecycle"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/network"
)

// StopPodSandbox stops every container of the pod, kills the pause task
// (or removes the pinned IPC and UTS namespaces of a pod without one),
// tears the pod network down and unmounts /dev/shm. It is idempotent: an
// absent or already stopped sandbox is success.
func (s *Service) StopPodSandbox(ctx context.Context, r *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.getSandbox(r.GetPodSandboxId())
	if err != nil {
		if errdefs.IsNotFound(err) {
			klog.FromContext(ctx).V(4).Info("Pod sandbox to stop is gone", "podSandboxID", r.GetPodSandboxId())
			return &runtimeapi.StopPodSandboxResponse{}, nil
		}
		return nil, err
	}
	ctx = klog.NewContext(ctx, klog.LoggerWithValues(klog.FromContext(ctx), "podSandboxID", sb.Meta.ID))
	if err := sb.Update(sandboxStatus.MarkStopping); err != nil {
		return nil, lifecycle.WithID(err, sb.Meta.ID)
	}
	defer func() { _ = sb.Update(sandboxStatus.EndStop) }()
	if err := s.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Stopped pod sandbox")
	s.publishSandboxEvent(ctx, sb, evStopped)
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// stopSandbox does the work of a stop; the caller holds the stopping or
// removing flag. Every step is idempotent, so a stop that failed half way
// is finished by the next one. The pause goes down while CNI DEL runs:
// the plugins work on the pinned netns, which the pause does not hold.
func (s *Service) stopSandbox(ctx context.Context, sb *sandbox) error {
	id := sb.Meta.ID
	start := time.Now()
	for _, c := range s.containersOf(id) {
		if err := s.stopContainer(ctx, c, 0); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop container %s of pod sandbox: %w", c.Meta.ID, err)
		}
		s.nriStopContainer(ctx, c)
	}
	s.nriStopPodSandbox(ctx, sb)
	containersDone := time.Now()
	type result struct {
		err  error
		took time.Duration
	}
	pause := make(chan result, 1)
	go func() {
		t0 := time.Now()
		var err error
		if t, gerr := s.tasks.Get(taskNamespace, id); gerr == nil {
			if err = s.killAndDelete(ctx, t); err != nil {
				err = fmt.Errorf("stop pause task: %w", err)
			}
		}
		if err == nil {
			err = network.RemoveNamespaces(s.netnsDir, id)
		}
		pause <- result{err, time.Since(t0)}
	}()
	var netErr error
	if !sb.Status().NetworkDown {
		netErr = s.teardownPodNetwork(ctx, sb)
	}
	netTook := time.Since(containersDone)
	pr := <-pause
	if err := errors.Join(pr.err, netErr); err != nil {
		return err
	}
	if err := unmountShm(s.sandboxFile(id, sandboxShmDir)); err != nil {
		return err
	}
	persistStart := time.Now()
	// A sandbox already stopped (a remove after a stop) has nothing new
	// to persist: no second write of its record.
	if st := sb.Status(); st.StoppedAt == 0 || !st.NetworkDown {
		now := time.Now()
		if err := sb.UpdateSync(ctx, func(st sandboxStatus) (sandboxStatus, error) { return st.StopFinished(now) }); err != nil {
			return err
		}
	}
	klog.FromContext(ctx).V(4).Info("Stopped the parts of a pod sandbox", "containers", containersDone.Sub(start),
		"pause", pr.took, "network", netTook, "persist", time.Since(persistStart), "total", time.Since(start))
	return nil
}

// teardownPodNetwork runs CNI DEL (from the cache, so it works for a
// half set-up network and after a restart) and removes the pinned netns.
func (s *Service) teardownPodNetwork(ctx context.Context, sb *sandbox) error {
	if sb.Meta.NetNSPath == "" {
		return nil // host network
	}
	if err := s.network.Teardown(ctx, setupRequest(sb.Meta.ID, sb.Meta.NetNSPath, sb.Meta.config)); err != nil {
		return fmt.Errorf("tear down pod network: %w", err)
	}
	return removeNetNS(sb.Meta.NetNSPath)
}

// removeNetNS unmounts and removes a pinned netns; a missing one is fine.
func removeNetNS(path string) error {
	ns, err := network.LoadNetNS(path)
	switch {
	case errdefs.IsNotFound(err):
		return nil
	case errdefs.IsInvalidArgument(err):
		// The file is there but no longer pinned (a crash mid-create).
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove netns: %w", err)
		}
		return nil
	case err != nil:
		return err
	}
	return ns.Remove()
}

// mountShm mounts the pod's /dev/shm tmpfs at path.
func mountShm(path, size string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("create shm dir: %w", err)
	}
	if err := unix.Mount("shm", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size="+size); err != nil {
		return fmt.Errorf("mount shm at %s: %w", path, err)
	}
	return nil
}

// unmountShm unmounts the pod's /dev/shm; nothing mounted is fine.
func unmountShm(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount shm at %s: %w", path, err)
	}
	return nil
}
