package cri

import (
	"context"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/chunks"
	"github.com/cri-runtime/cri-runtime/pkg/cri/stats"
)

// ListMetricDescriptors lists the metrics ListPodSandboxMetrics returns;
// the list is fixed for the daemon's life, as the CRI asks.
func (s *Service) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: stats.Descriptors()}, nil
}

// ListPodSandboxMetrics reports the metrics of every ready pod: per
// container CPU, memory, processes, limits and filesystem, and per pod the
// network of its namespace.
func (s *Service) ListPodSandboxMetrics(ctx context.Context, _ *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	out, err := s.podSandboxMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in chunks.
func (s *Service) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, srv grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	items, err := s.podSandboxMetrics(srv.Context())
	if err != nil {
		return err
	}
	return chunks.Send(items, func(c []*runtimeapi.PodSandboxMetrics) *runtimeapi.StreamPodSandboxMetricsResponse {
		return &runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: c}
	}, srv.Send)
}

// podSandboxMetrics reads every ready pod: the network of its namespace,
// then each live container.
func (s *Service) podSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	now := time.Now()
	layers := stats.NewLayerFS(filepath.Join(s.rootDir, "containers"))
	var out []*runtimeapi.PodSandboxMetrics
	for _, sb := range s.sandboxes.List() {
		if requireReady(sb) != nil {
			continue
		}
		cfg := sb.Meta.config
		md := cfg.GetMetadata()
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.Meta.ID}
		if !hostNetwork(cfg) {
			// Labelled as cAdvisor labels the pause container's series.
			if devs, err := podNetDevs(sb); err == nil {
				pm.Metrics = stats.NetworkSeries(stats.Labels{ID: sb.Meta.ID, Name: sb.Meta.ID, Namespace: md.GetNamespace(), Pod: md.GetName()}, devs)
			}
		}
		for _, c := range s.containersOf(sb.Meta.ID) {
			cm, err := s.containerMetrics(ctx, c, md, now, layers)
			switch {
			case notLive(err):
				continue // no live task, or gone meanwhile
			case err != nil:
				return nil, err
			}
			pm.ContainerMetrics = append(pm.ContainerMetrics, cm)
		}
		out = append(out, pm)
	}
	return out, nil
}

// containerMetrics reads a live container; FailedPrecondition if it has
// no live task. Only the cgroup is required: the limits, processes and
// writable layer are best effort, and their series are left out when
// unreadable.
func (s *Service) containerMetrics(ctx context.Context, c *container, pod *runtimeapi.PodSandboxMetadata, now time.Time, layers *stats.LayerFS) (*runtimeapi.ContainerMetrics, error) {
	st := c.Status()
	t, err := s.liveTask(c)
	if err != nil {
		return nil, err
	}
	p, err := s.taskCgroupPath(t)
	if err != nil {
		return nil, err
	}
	src := stats.ContainerSource{ID: c.Meta.ID, Cgroup: p, InitPid: st.Pid, UpperDir: s.upperDir(c.Meta.ID)}
	if st.StartedAt != 0 {
		src.Started = time.Unix(0, st.StartedAt)
	}
	r, err := stats.ReadContainer(ctx, src, now, layers)
	if err != nil {
		return nil, err
	}
	labels := stats.Labels{Container: c.Meta.config.GetMetadata().GetName(), ID: c.Meta.ID, Image: c.Meta.ImageName, Name: c.Meta.Name, Namespace: pod.GetNamespace(), Pod: pod.GetName()}
	return &runtimeapi.ContainerMetrics{ContainerId: c.Meta.ID, Metrics: stats.ContainerSeries(labels, r)}, nil
}
