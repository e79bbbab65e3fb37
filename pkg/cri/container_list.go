package cri

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/chunks"
)

// ListContainers lists containers matching the filter.
func (s *Service) ListContainers(ctx context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := r.GetFilter()
	var out []*runtimeapi.Container
	for _, c := range s.containers.List() {
		st := c.Status()
		if matchContainer(f, c.Meta, st) {
			out = append(out, toCRIContainer(c.Meta, st))
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// matchContainer applies a ListContainers filter: id and sandbox id match
// exactly or by prefix, state exactly, labels as a selector (all equal).
func matchContainer(f *runtimeapi.ContainerFilter, m containerMeta, st containerStatus) bool {
	if f == nil {
		return true
	}
	if id := f.GetId(); id != "" && !strings.HasPrefix(m.ID, id) {
		return false
	}
	if sb := f.GetPodSandboxId(); sb != "" && !strings.HasPrefix(m.SandboxID, sb) {
		return false
	}
	if f.GetState() != nil && f.GetState().GetState() != st.State() {
		return false
	}
	return matchLabels(f.GetLabelSelector(), m.config.GetLabels())
}

// matchLabels reports whether labels has every key=value of selector.
func matchLabels(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// StreamContainers is ListContainers in chunks.
func (s *Service) StreamContainers(r *runtimeapi.StreamContainersRequest, srv grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	resp, err := s.ListContainers(srv.Context(), &runtimeapi.ListContainersRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return chunks.Send(resp.GetContainers(), func(c []*runtimeapi.Container) *runtimeapi.StreamContainersResponse {
		return &runtimeapi.StreamContainersResponse{Containers: c}
	}, srv.Send)
}
