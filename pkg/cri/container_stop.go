package cri

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// killGrace bounds the wait for a container after SIGKILL.
const killGrace = 10 * time.Second

// StopContainer stops a running container: its stop signal, then SIGKILL
// after the timeout. Stopping a container that is absent or not running
// succeeds.
func (s *Service) StopContainer(ctx context.Context, r *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.getContainer(r.GetContainerId())
	if errdefs.IsNotFound(err) {
		klog.FromContext(ctx).V(4).Info("Container to stop is absent", "containerID", r.GetContainerId())
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopContainer(ctx, c, r.GetTimeout()); err != nil {
		return nil, err
	}
	s.nriStopContainer(ctx, c)
	return &runtimeapi.StopContainerResponse{}, nil
}

// stopContainer sends the stop signal, waits up to timeout seconds, then
// kills every process of the container and waits a bounded time.
func (s *Service) stopContainer(ctx context.Context, c *container, timeout int64) error {
	logger := klog.FromContext(ctx).WithValues("containerID", c.Meta.ID)
	task, err := s.tasks.Get(taskNamespace, c.Meta.ID)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	select {
	case <-task.Exited():
		e, err := task.Wait(ctx)
		if err != nil {
			return err
		}
		return s.recordExit(ctx, c, e)
	default:
	}
	if timeout > 0 && c.Status().State() == runtimeapi.ContainerState_CONTAINER_RUNNING {
		sig := stopSignal(c)
		logger.V(2).Info("Stopping container", "signal", sig, "timeout", timeout)
		if err := task.Kill(ctx, sig, false); err != nil && !ignorableKillErr(err) {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
		e, err := task.Wait(wctx)
		cancel()
		if err == nil {
			return s.recordExit(ctx, c, e)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	e, err := killContainerTask(ctx, task)
	if err != nil {
		return err
	}
	return s.recordExit(ctx, c, e)
}

// killContainerTask SIGKILLs every process of a task and waits a bounded
// time for its exit.
func killContainerTask(ctx context.Context, task taskHandle) (*runtime.Exit, error) {
	if err := task.Kill(ctx, syscall.SIGKILL, true); err != nil && !ignorableKillErr(err) {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killGrace)
	defer cancel()
	e, err := task.Wait(wctx)
	if err != nil {
		return nil, fmt.Errorf("container %s did not exit within %s of SIGKILL: %w", task.ID(), killGrace, err)
	}
	return e, nil
}

// ignorableKillErr: the process is already gone.
func ignorableKillErr(err error) bool {
	return errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err)
}

// stopSignal is the config's stop signal, else the image's, else SIGTERM.
func stopSignal(c *container) syscall.Signal {
	if sig := c.Meta.config.GetStopSignal(); sig != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		if n, ok := parseSignal(strings.TrimPrefix(sig.String(), "SIGNAL_")); ok {
			return n
		}
	}
	if sig, ok := parseSignal(c.Meta.StopSignal); ok {
		return sig
	}
	return syscall.SIGTERM
}

// parseSignal reads "SIGTERM", "TERM" or "15".
func parseSignal(s string) (syscall.Signal, bool) {
	s = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG")
	if s == "" {
		return 0, false
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), true
	}
	for i := syscall.Signal(1); i < 65; i++ {
		if strings.TrimPrefix(strings.ToUpper(unix.SignalName(i)), "SIG") == s {
			return i, true
		}
	}
	return 0, false
}
