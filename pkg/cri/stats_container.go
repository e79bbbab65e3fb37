package cri

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
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
	if _, err := s.liveTask(c); err != nil {
		return nil, err
	}
	sample, err := s.taskCgroupSample(c.Meta.ID)
	if err != nil {
		return nil, err
	}
	cfg := c.Meta.config
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: c.Meta.ID, Metadata: cfg.GetMetadata(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations()},
	}
	s.fillUsage(c.Meta.ID, sample, &out.Cpu, &out.Memory)
	out.Io = &runtimeapi.IoUsage{Timestamp: sample.at.UnixNano(), Psi: sample.ioPSI}
	upper := s.upperDir(c.Meta.ID)
	used, inodes, err := dirUsage(upper)
	if err != nil {
		// The layer is a best-effort figure: report the rest (and what
		// a walk cut short at its bounds counted).
		klog.FromContext(ctx).V(4).Info("Could not measure a writable layer", "containerID", c.Meta.ID, "path", upper, "err", err)
	}
	if err == nil || errors.Is(err, errLayerTruncated) {
		out.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  sample.at.UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: filepath.Join(s.rootDir, "containers")},
			UsedBytes:  &runtimeapi.UInt64Value{Value: used},
			InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
		}
	}
	return out, nil
}

// upperDir is the writable layer of a container's overlay rootfs, as the
// image service lays it out under the daemon's root.
func (s *Service) upperDir(id string) string {
	return filepath.Join(s.rootDir, "containers", id, "upper")
}

// taskCgroupSample reads the cgroup of a live task; FailedPrecondition if
// the task is gone or has exited.
func (s *Service) taskCgroupSample(id string) (cgroupSample, error) {
	p, err := s.taskCgroup(id)
	if err != nil {
		return cgroupSample{}, err
	}
	return readCgroup(p)
}

// taskCgroup is the cgroup of a live task; FailedPrecondition if the task
// is gone or has exited (its container or sandbox exists: no live task).
func (s *Service) taskCgroup(id string) (string, error) {
	t, err := s.tasks.Get(taskNamespace, id)
	if errdefs.IsNotFound(err) {
		return "", fmt.Errorf("task %s is gone: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return "", err
	}
	select {
	case <-t.Exited():
		return "", fmt.Errorf("task %s has exited: %w", id, errdefs.ErrFailedPrecondition)
	default:
	}
	return s.taskCgroupPath(t)
}

// taskCgroupPath is a task's cgroup, from its bundle's config.json, read
// once per task.
func (s *Service) taskCgroupPath(t taskHandle) (string, error) {
	o := s.observer()
	if p, ok := o.cgroups.Load(t.ID()); ok {
		return p.(string), nil
	}
	p, err := bundleCgroupsPath(t.Bundle())
	if err != nil {
		return "", fmt.Errorf("cgroup of task %s: %w", t.ID(), err)
	}
	o.cgroups.Store(t.ID(), p)
	return p, nil
}

// fillUsage converts a cgroup reading into the CRI's CPU and memory usage;
// usage_nano_cores is the rate since the last reading of the same id.
func (s *Service) fillUsage(id string, sample cgroupSample, cpu **runtimeapi.CpuUsage, mem **runtimeapi.MemoryUsage) {
	ts := sample.at.UnixNano()
	*cpu = &runtimeapi.CpuUsage{
		Timestamp:            ts,
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: sample.cpuNanos},
		Psi:                  sample.cpuPSI,
	}
	if rate, ok := s.observer().rates.observe(id, sample.at, sample.cpuNanos); ok {
		(*cpu).UsageNanoCores = &runtimeapi.UInt64Value{Value: rate}
	}
	*mem = &runtimeapi.MemoryUsage{
		Timestamp:       ts,
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: sample.memWorkingSet},
		UsageBytes:      &runtimeapi.UInt64Value{Value: sample.memUsage},
		RssBytes:        &runtimeapi.UInt64Value{Value: sample.memRSS},
		PageFaults:      &runtimeapi.UInt64Value{Value: sample.pgFault},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: sample.pgMajFault},
		Psi:             sample.memPSI,
	}
	if sample.memLimit > 0 {
		avail := uint64(0)
		if sample.memLimit > sample.memWorkingSet {
			avail = sample.memLimit - sample.memWorkingSet
		}
		(*mem).AvailableBytes = &runtimeapi.UInt64Value{Value: avail}
	}
}
