package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// CheckpointContainer is not implemented. A checkpoint is `runc checkpoint`
// (CRIU) of the container's init, driven by whoever owns the task: the
// shim. The shim protocol has no checkpoint call and pkg/cri may not run
// runc itself (runc belongs below pkg/runtime), so it needs, bottom up: a
// Checkpoint(ctx, api.CheckpointRequest{ImagePath, WorkPath, LeaveRunning})
// call in pkg/shim/api and the shim's process package (go-runc's
// Checkpoint with CheckpointOpts), a Task.Checkpoint in pkg/runtime, and
// here the archive the kubelet expects at Location (the CRIU images plus
// config.dump, spec.dump and the rootfs diff, as CRI-O writes it).
// The answer also says whether CRIU works on this host at all.
func (s *Service) CheckpointContainer(ctx context.Context, r *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	c, err := s.getContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := requireRunning(c); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("checkpoint of container %s: the shim has no checkpoint call, and the facade may not run runc itself; %s: %w",
		c.Meta.ID, s.criuCheck(ctx), errdefs.ErrNotImplemented)
}

// criuCheck runs `criu check` once per daemon and describes its outcome.
func (s *Service) criuCheck(ctx context.Context) string { return s.criu.Check(ctx) }
