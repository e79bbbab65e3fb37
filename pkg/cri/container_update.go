package cri

import (
	"context"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
)

// UpdateContainerResources changes a container's cgroup limits; they are
// kept with the container so that its status reports them.
func (s *Service) UpdateContainerResources(ctx context.Context, r *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.getContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	res := r.GetLinux()
	if res == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	task, err := s.liveTask(c)
	if err != nil {
		return nil, err
	}
	tmp := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	if err := spec.ApplyOpts(tmp, spec.WithResources(res, s.cfg.Containers), spec.WithOOMScoreAdj(res.GetOomScoreAdj(), s.oomFloor)); err != nil {
		return nil, err
	}
	if err := s.nriUpdateContainer(ctx, c, tmp.Linux.Resources); err != nil {
		return nil, err
	}
	if err := spec.ApplyOpts(tmp, spec.WithHugetlbController(s.hugetlb, s.cfg.Containers)); err != nil {
		return nil, err
	}
	if tmp.Linux.Resources != nil {
		if err := task.Update(ctx, tmp.Linux.Resources); err != nil {
			return nil, err
		}
	}
	raw, err := protojson.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode resources: %w", err)
	}
	if err := c.UpdateSync(ctx, func(st containerStatus) (containerStatus, error) {
		st.Resources = string(raw)
		return st, nil
	}); err != nil {
		return nil, err
	}
	s.nriNotify(ctx, c, "PostUpdateContainer", s.nri.PostUpdateContainer)
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog makes the container's shim reopen its log file, after
// the kubelet rotated it.
func (s *Service) ReopenContainerLog(ctx context.Context, r *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	task, err := s.runningTask(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := task.ReopenLog(ctx); err != nil {
		return nil, err
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
