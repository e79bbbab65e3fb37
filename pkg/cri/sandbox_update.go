package cri

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// UpdatePodSandboxResources records the pod-level resources the kubelet
// reports after it has resized the pod's cgroup itself (the CRI calls it
// after the fact, best effort). There is nothing to apply: with a cgroup
// parent the kubelet owns the pod cgroup, and without one there is no pod
// cgroup. The record is kept in the sandbox's status, so it survives a
// restart, and feeds the pod's available memory in its stats when the pod
// has no cgroup of its own.
func (s *Service) UpdatePodSandboxResources(ctx context.Context, r *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	sb, err := s.getSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	res, err := marshalResources(r.GetResources())
	if err != nil {
		return nil, err
	}
	over, err := marshalResources(r.GetOverhead())
	if err != nil {
		return nil, err
	}
	if err := sb.UpdateSync(ctx, func(st sandboxStatus) (sandboxStatus, error) {
		st.Resources, st.Overhead = res, over
		return st, nil
	}); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(4).Info("Recorded pod sandbox resources", "podSandboxID", sb.Meta.ID,
		"memoryLimit", r.GetResources().GetMemoryLimitInBytes(), "cpuQuota", r.GetResources().GetCpuQuota())
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}

// marshalResources is res as protojson; "" for nil.
func marshalResources(res *runtimeapi.LinuxContainerResources) (string, error) {
	if res == nil {
		return "", nil
	}
	raw, err := protojson.Marshal(res)
	if err != nil {
		return "", fmt.Errorf("encode resources: %w", err)
	}
	return string(raw), nil
}

// podResources decodes the resources and overhead that
// UpdatePodSandboxResources recorded in st; nil for what was never
// recorded or cannot be read.
func podResources(st sandboxStatus) (res, over *runtimeapi.LinuxContainerResources) {
	decode := func(s string) *runtimeapi.LinuxContainerResources {
		if s == "" {
			return nil
		}
		r := &runtimeapi.LinuxContainerResources{}
		if err := protojson.Unmarshal([]byte(s), r); err != nil {
			return nil
		}
		return r
	}
	return decode(st.Resources), decode(st.Overhead)
}
