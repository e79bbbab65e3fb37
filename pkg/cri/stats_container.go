package cri

import (
	"context"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/chunks"
	"github.com/cri-runtime/cri-runtime/pkg/cri/stats"
)

// ContainerStats reports a live container's CPU, memory, processes and
// writable layer. An absent container is NotFound, one without a live
// task (exited) FailedPrecondition.
func (s *Service) ContainerStats(ctx context.Context, r *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.getContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	st, err := s.containerStats(ctx, c)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats reports the stats of the live containers matching the
// filter (id or id prefix, pod sandbox id or prefix, labels); containers
// without a live task are skipped.
func (s *Service) ListContainerStats(ctx context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	out, err := s.listContainerStats(ctx, r.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

func (s *Service) listContainerStats(ctx context.Context, f *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	var out []*runtimeapi.ContainerStats
	for _, c := range s.containers.List() {
		if !matchContainerStats(f, c.Meta) {
			continue
		}
		st, err := s.containerStats(ctx, c)
		switch {
		case notLive(err):
			continue // exited or removed meanwhile
		case err != nil:
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func matchContainerStats(f *runtimeapi.ContainerStatsFilter, m containerMeta) bool {
	if f == nil {
		return true
	}
	if id := f.GetId(); id != "" && !strings.HasPrefix(m.ID, id) {
		return false
	}
	if sb := f.GetPodSandboxId(); sb != "" && !strings.HasPrefix(m.SandboxID, sb) {
		return false
	}
	return matchLabels(f.GetLabelSelector(), m.config.GetLabels())
}

// containerStats reads a container's cgroup and writable layer;
// FailedPrecondition if it has no live task.
func (s *Service) containerStats(ctx context.Context, c *container) (*runtimeapi.ContainerStats, error) {
	t, err := s.liveTask(c)
	if err != nil {
		return nil, err
	}
	p, err := s.taskCgroupPath(t)
	if err != nil {
		return nil, err
	}
	sample, err := stats.ReadCgroup(p)
	if err != nil {
		return nil, err
	}
	cfg := c.Meta.config
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: c.Meta.ID, Metadata: cfg.GetMetadata(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations()},
	}
	out.Cpu, out.Memory = s.usage.Usage(c.Meta.ID, sample)
	out.Io = &runtimeapi.IoUsage{Timestamp: sample.At.UnixNano(), Psi: sample.IOPSI}
	out.WritableLayer = stats.WritableLayer(ctx, c.Meta.ID, s.upperDir(c.Meta.ID), filepath.Join(s.rootDir, "containers"), sample.At)
	return out, nil
}

// upperDir is the writable layer of a container's overlay rootfs, as the
// image service lays it out under the daemon's root.
func (s *Service) upperDir(id string) string {
	return filepath.Join(s.rootDir, "containers", id, "upper")
}

// taskCgroupSample reads the cgroup of a live task; FailedPrecondition if
// the task is gone or has exited.
func (s *Service) taskCgroupSample(id string) (stats.Sample, error) {
	p, err := s.taskCgroup(id)
	if err != nil {
		return stats.Sample{}, err
	}
	return stats.ReadCgroup(p)
}

// taskCgroup is the cgroup of a live task; FailedPrecondition if the task
// is gone or has exited (its container or sandbox exists: no live task).
func (s *Service) taskCgroup(id string) (string, error) {
	t, err := s.liveTaskOf(id)
	if err != nil {
		return "", err
	}
	return s.taskCgroupPath(t)
}

// taskCgroupPath is a task's cgroup, from its bundle's config.json, read
// once per task.
func (s *Service) taskCgroupPath(t taskHandle) (string, error) {
	return s.usage.CgroupPath(t.ID(), t.Bundle())
}

// StreamContainerStats is ListContainerStats in chunks.
func (s *Service) StreamContainerStats(r *runtimeapi.StreamContainerStatsRequest, srv grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	items, err := s.listContainerStats(srv.Context(), r.GetFilter())
	if err != nil {
		return err
	}
	return chunks.Send(items, func(c []*runtimeapi.ContainerStats) *runtimeapi.StreamContainerStatsResponse {
		return &runtimeapi.StreamContainerStatsResponse{ContainerStats: c}
	}, srv.Send)
}
