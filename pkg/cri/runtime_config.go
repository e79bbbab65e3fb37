package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// UpdateRuntimeConfig takes the node's pod CIDR from the kubelet; pods
// created later get addresses from it when the CNI config asks for
// "ipRanges".
func (s *Service) UpdateRuntimeConfig(ctx context.Context, r *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := r.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	if err := s.network.SetPodCIDR(cidr); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Updated pod CIDR", "podCIDR", cidr)
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
