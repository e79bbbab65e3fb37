package cri

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/lifecycle"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// StartContainer starts a created container.
func (s *Service) StartContainer(ctx context.Context, r *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.getContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("containerID", c.Meta.ID))
	if err := c.Update(containerStatus.MarkStarting); err != nil {
		return nil, lifecycle.WithID(err, c.Meta.ID)
	}
	defer func() { _ = c.Update(containerStatus.EndStart) }()
	task, err := s.liveTask(c)
	if err != nil {
		return nil, err
	}
	if err := s.nriEvent(ctx, c, s.nri.StartContainer); err != nil {
		return nil, errdefs.WithClass(err, errdefs.ErrFailedPrecondition)
	}
	// The start time is taken before the start: a container that exits at
	// once may have its exit recorded before Start returns.
	startedAt := time.Now()
	if err := task.Start(ctx); err != nil {
		// The container cannot run: record why, so its status says so.
		_ = c.UpdateSync(ctx, func(st containerStatus) (containerStatus, error) { return st.StartFailed(time.Now(), err.Error()) })
		return nil, err
	}
	if err := c.UpdateSync(ctx, func(st containerStatus) (containerStatus, error) { return st.Started(task.Pid(), startedAt) }); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Started container", "pid", task.Pid())
	s.nriNotify(ctx, c, "PostStartContainer", s.nri.PostStartContainer)
	s.publishContainerEvent(ctx, c, evStarted)
	return &runtimeapi.StartContainerResponse{}, nil
}
