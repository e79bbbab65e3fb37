package cri

import (
	"context"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// UpdatePodSandboxResources records the pod-level resources the kubelet
// reports after it has resized the pod's cgroup itself (the CRI calls it
// after the fact, best effort). There is nothing to apply: with a cgroup
// parent the kubelet owns the pod cgroup, and without one there is no pod
// cgroup. The record feeds the pod's available memory in its stats when
// the pod has no cgroup of its own. It is kept in memory only: the sandbox
// record has no field for it yet, and the kubelet sends it again on every
// resize.
func (s *Service) UpdatePodSandboxResources(ctx context.Context, r *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	sb, err := s.getSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	s.observer().podRes.Store(sb.Meta.ID, proto.Clone(r))
	klog.FromContext(ctx).V(4).Info("Recorded pod sandbox resources", "podSandboxID", sb.Meta.ID,
		"memoryLimit", r.GetResources().GetMemoryLimitInBytes(), "cpuQuota", r.GetResources().GetCpuQuota())
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
