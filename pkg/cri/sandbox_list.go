package cri

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/chunks"
)

// ListPodSandbox lists the sandboxes that match the filter: id (or id
// prefix), state and label selector.
func (s *Service) ListPodSandbox(ctx context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := r.GetFilter()
	var out []*runtimeapi.PodSandbox
	for _, sb := range s.sandboxes.List() {
		st := sb.Status()
		if !matchSandbox(f, sb.Meta, st) {
			continue
		}
		cfg := sb.Meta.config
		out = append(out, &runtimeapi.PodSandbox{
			Id:             sb.Meta.ID,
			Metadata:       cfg.GetMetadata(),
			State:          st.State(),
			CreatedAt:      sb.Meta.CreatedAt.UnixNano(),
			Labels:         cfg.GetLabels(),
			Annotations:    cfg.GetAnnotations(),
			RuntimeHandler: sb.Meta.RuntimeHandler,
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// matchSandbox applies a ListPodSandbox filter; a nil filter matches all.
func matchSandbox(f *runtimeapi.PodSandboxFilter, m sandboxMeta, st sandboxStatus) bool {
	if f == nil {
		return true
	}
	if f.GetId() != "" && !strings.HasPrefix(m.ID, f.GetId()) {
		return false
	}
	if f.GetState() != nil && f.GetState().GetState() != st.State() {
		return false
	}
	return matchLabels(f.GetLabelSelector(), m.config.GetLabels())
}

// StreamPodSandboxes is ListPodSandbox in chunks.
func (s *Service) StreamPodSandboxes(r *runtimeapi.StreamPodSandboxesRequest, srv grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	resp, err := s.ListPodSandbox(srv.Context(), &runtimeapi.ListPodSandboxRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return chunks.Send(resp.GetItems(), func(c []*runtimeapi.PodSandbox) *runtimeapi.StreamPodSandboxesResponse {
		return &runtimeapi.StreamPodSandboxesResponse{PodSandboxes: c}
	}, srv.Send)
}
