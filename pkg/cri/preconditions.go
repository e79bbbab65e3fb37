package cri

import (
	"context"
	"fmt"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/cri/lifecycle"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// The preconditions of pkg/cri/lifecycle as the handlers ask them, each
// with one error class: an object that does not exist is NotFound (from
// the index); an object that exists in the wrong state is
// FailedPrecondition, whichever handler asks.

// requireRunning: the container is RUNNING (exec, attach, checkpoint, log
// reopen).
func requireRunning(c *container) error {
	return lifecycle.WithID(c.Status().RequireRunning(), c.Meta.ID)
}

// requireReady: the sandbox is READY and no stop or removal of it is in
// flight (a new container, port-forward, stats, metrics).
func requireReady(sb *sandbox) error {
	return lifecycle.WithID(sb.Status().RequireReady(), sb.Meta.ID)
}

// liveTask is the task of a container that has one (CREATED or RUNNING):
// stats, metrics, resource updates and start need it. An existing
// container without one is FailedPrecondition, as is one whose task is
// gone or has exited before its exit was recorded.
func (s *Service) liveTask(c *container) (taskHandle, error) {
	if err := lifecycle.WithID(c.Status().RequireLiveTask(), c.Meta.ID); err != nil {
		return nil, err
	}
	return s.liveTaskOf(c.Meta.ID)
}

// liveTaskOf is the task of an existing object (a container, or a
// sandbox's pause) that has not exited; FailedPrecondition if the task is
// gone or has exited before its exit was recorded.
func (s *Service) liveTaskOf(id string) (taskHandle, error) {
	t, err := s.tasks.Get(taskNamespace, id)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("task %s is gone: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return nil, err
	}
	select {
	case <-t.Exited():
		return nil, fmt.Errorf("task %s has exited: %w", id, errdefs.ErrFailedPrecondition)
	default:
	}
	return t, nil
}

// notLive is what a list of live objects (stats, metrics) skips: an object
// gone meanwhile, or without a live task or a ready sandbox.
func notLive(err error) bool { return errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) }

// recordExit writes a container's exit into its status, once (Exited).
// The stop and remove paths call it too, so the caller of StopContainer
// sees the container EXITED when the call returns; the exit event that
// follows finds it recorded and changes nothing.
func (s *Service) recordExit(ctx context.Context, c *container, e *runtime.Exit) error {
	return c.UpdateSync(ctx, func(st containerStatus) (containerStatus, error) { return st.Exited(exitOf(e)) })
}

// exitOf is a task's exit as pkg/cri/lifecycle takes it; an exit without a
// time happened now.
func exitOf(e *runtime.Exit) lifecycle.Exit {
	at := e.ExitedAt
	if at.IsZero() {
		at = time.Now()
	}
	return lifecycle.Exit{Code: int32(e.Status), At: at, OOMKilled: e.OOMKilled}
}

// sandboxStopped records that a sandbox is NOTREADY from at (Stopped).
func sandboxStopped(ctx context.Context, sb *sandbox, at time.Time) error {
	return sb.UpdateSync(ctx, func(st sandboxStatus) (sandboxStatus, error) { return st.Stopped(at) })
}
