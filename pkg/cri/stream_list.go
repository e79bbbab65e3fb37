package cri

import (
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamChunk is how many items one message of a Stream* RPC carries:
// small enough that a message of the largest items (pod stats with their
// containers' stats) stays far below gRPC's 4 MiB default.
const streamChunk = 100

// sendChunks sends items in messages of at most streamChunk items each,
// every item once; none at all when there are no items (the CRI asks for
// lists of at least one item, then EOF).
func sendChunks[T any, M any](items []T, wrap func([]T) *M, send func(*M) error) error {
	for len(items) > 0 {
		n := min(len(items), streamChunk)
		if err := send(wrap(items[:n:n])); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

// StreamPodSandboxes is ListPodSandbox in chunks.
func (s *Service) StreamPodSandboxes(r *runtimeapi.StreamPodSandboxesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	resp, err := s.ListPodSandbox(stream.Context(), &runtimeapi.ListPodSandboxRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendChunks(resp.GetItems(), func(c []*runtimeapi.PodSandbox) *runtimeapi.StreamPodSandboxesResponse {
		return &runtimeapi.StreamPodSandboxesResponse{PodSandboxes: c}
	}, stream.Send)
}

// StreamContainers is ListContainers in chunks.
func (s *Service) StreamContainers(r *runtimeapi.StreamContainersRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	resp, err := s.ListContainers(stream.Context(), &runtimeapi.ListContainersRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendChunks(resp.GetContainers(), func(c []*runtimeapi.Container) *runtimeapi.StreamContainersResponse {
		return &runtimeapi.StreamContainersResponse{Containers: c}
	}, stream.Send)
}

// StreamContainerStats is ListContainerStats in chunks.
func (s *Service) StreamContainerStats(r *runtimeapi.StreamContainerStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	items, err := s.listContainerStats(stream.Context(), r.GetFilter())
	if err != nil {
		return err
	}
	return sendChunks(items, func(c []*runtimeapi.ContainerStats) *runtimeapi.StreamContainerStatsResponse {
		return &runtimeapi.StreamContainerStatsResponse{ContainerStats: c}
	}, stream.Send)
}

// StreamPodSandboxStats is ListPodSandboxStats in chunks.
func (s *Service) StreamPodSandboxStats(r *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	items, err := s.listSandboxStats(stream.Context(), r.GetFilter())
	if err != nil {
		return err
	}
	return sendChunks(items, func(c []*runtimeapi.PodSandboxStats) *runtimeapi.StreamPodSandboxStatsResponse {
		return &runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: c}
	}, stream.Send)
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in chunks.
func (s *Service) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	items, err := s.podSandboxMetrics(stream.Context())
	if err != nil {
		return err
	}
	return sendChunks(items, func(c []*runtimeapi.PodSandboxMetrics) *runtimeapi.StreamPodSandboxMetricsResponse {
		return &runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: c}
	}, stream.Send)
}

// StreamImages is ListImages in chunks.
func (s *Service) StreamImages(r *runtimeapi.StreamImagesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	resp, err := s.ListImages(stream.Context(), &runtimeapi.ListImagesRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return sendChunks(resp.GetImages(), func(c []*runtimeapi.Image) *runtimeapi.StreamImagesResponse {
		return &runtimeapi.StreamImagesResponse{Images: c}
	}, stream.Send)
}
