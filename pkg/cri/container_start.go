package cri

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// StartContainer starts a created container.
func (s *Service) StartContainer(ctx context.Context, r *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.getContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("containerID", c.Meta.ID))
	if err := c.Update(markStarting); err != nil {
		return nil, err
	}
	defer func() {
		_ = c.Update(func(st containerStatus) (containerStatus, error) { st.starting = false; return st, nil })
	}()
	task, err := s.tasks.Get(taskNamespace, c.Meta.ID)
	if err != nil {
		return nil, fmt.Errorf("task of container %s: %w", c.Meta.ID, err)
	}
	if err := s.nriEvent(ctx, c, s.nri.StartContainer); err != nil {
		return nil, errdefs.WithClass(err, errdefs.ErrFailedPrecondition)
	}
	// The start time is taken before the start: a container that exits at
	// once may have its exit recorded before Start returns.
	startedAt := time.Now().UnixNano()
	if err := task.Start(ctx); err != nil {
		// The container cannot run: record why, so its status says so.
		_ = c.UpdateSync(ctx, func(st containerStatus) (containerStatus, error) {
			st.FinishedAt, st.ExitCode, st.Reason, st.Message = time.Now().UnixNano(), 128, "StartError", err.Error()
			return st, nil
		})
		return nil, err
	}
	if err := c.UpdateSync(ctx, func(st containerStatus) (containerStatus, error) {
		st.StartedAt, st.Pid = startedAt, task.Pid()
		return st, nil
	}); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Started container", "pid", task.Pid())
	s.nriNotify(ctx, c, "PostStartContainer", s.nri.PostStartContainer)
	s.publishContainerEvent(ctx, c, evStarted)
	return &runtimeapi.StartContainerResponse{}, nil
}

// markStarting refuses unless the container is CREATED and idle.
func markStarting(st containerStatus) (containerStatus, error) {
	if st.State() != runtimeapi.ContainerState_CONTAINER_CREATED || st.starting || st.removing {
		return st, fmt.Errorf("container is %s%s, not CREATED: %w", stateName(st.State()), busy(st), errdefs.ErrFailedPrecondition)
	}
	st.starting = true
	return st, nil
}

func busy(st containerStatus) string {
	switch {
	case st.starting:
		return " (starting)"
	case st.removing:
		return " (being removed)"
	case st.stopping:
		return " (stopping)"
	}
	return ""
}

func stateName(s runtimeapi.ContainerState) string {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return "CREATED"
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return "RUNNING"
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return "EXITED"
	}
	return "UNKNOWN"
}
