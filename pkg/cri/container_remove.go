package cri

import (
	"context"
	"fmt"
	"os"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/lifecycle"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// RemoveContainer removes a container, force-stopping it if it runs.
// Removing an absent container succeeds.
func (s *Service) RemoveContainer(ctx context.Context, r *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.getContainer(r.GetContainerId())
	if errdefs.IsNotFound(err) {
		klog.FromContext(ctx).V(4).Info("Container to remove is absent", "containerID", r.GetContainerId())
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removeContainer(ctx, c); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// removeContainer kills the container's task if needed, deletes it, and
// removes the rootfs, the record and the name. Each step tolerates what an
// earlier, interrupted removal already did.
func (s *Service) removeContainer(ctx context.Context, c *container) error {
	logger := klog.FromContext(ctx).WithValues("containerID", c.Meta.ID)
	if err := c.Update(containerStatus.MarkRemoving); err != nil {
		return lifecycle.WithID(err, c.Meta.ID)
	}
	defer func() { _ = c.Update(containerStatus.EndRemove) }()
	if task, err := s.tasks.Get(taskNamespace, c.Meta.ID); err == nil {
		if err := s.killAndDelete(ctx, task); err != nil {
			return fmt.Errorf("delete task of container %s: %w", c.Meta.ID, err)
		}
		// The exit event may still be in flight; record the exit now.
		if e, err := task.Wait(ctx); err == nil {
			_ = s.recordExit(ctx, c, e)
		}
	}
	if err := s.removeRootfsMount(c.Meta.ID); err != nil {
		return err
	}
	if err := s.images.RemoveRootfs(ctx, c.Meta.ID); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	if err := s.releaseImageVolumes(ctx, c.Meta); err != nil {
		return err
	}
	if err := os.RemoveAll(s.volumesDir(c.Meta.ID)); err != nil {
		return fmt.Errorf("remove anonymous volumes of container %s: %w", c.Meta.ID, err)
	}
	if err := s.deleteContainerRecord(ctx, c.Meta.ID); err != nil {
		return err
	}
	s.containers.Delete(c.Meta.ID)
	s.containerNames.Release(c.Meta.Name, c.Meta.ID)
	s.nriNotify(ctx, c, "RemoveContainer", s.nri.RemoveContainer)
	logger.V(2).Info("Removed container")
	s.publishContainerEvent(ctx, c, evDeleted)
	return nil
}
