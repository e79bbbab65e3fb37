package cri

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/chunks"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/cri/stats"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/network"
)

// PodSandboxStats reports a ready pod's CPU, memory, processes and network
// and the stats of its live containers. An absent pod is NotFound, a
// stopped one (or one being stopped) FailedPrecondition.
func (s *Service) PodSandboxStats(ctx context.Context, r *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.getSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st, err := s.sandboxStats(ctx, sb)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the stats of the ready pods matching the
// filter (id or id prefix, labels); stopped pods are skipped.
func (s *Service) ListPodSandboxStats(ctx context.Context, r *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	out, err := s.listSandboxStats(ctx, r.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

func (s *Service) listSandboxStats(ctx context.Context, f *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	var out []*runtimeapi.PodSandboxStats
	for _, sb := range s.sandboxes.List() {
		if f != nil && (f.GetId() != "" && !strings.HasPrefix(sb.Meta.ID, f.GetId()) || !matchLabels(f.GetLabelSelector(), sb.Meta.config.GetLabels())) {
			continue
		}
		st, err := s.sandboxStats(ctx, sb)
		switch {
		case notLive(err):
			continue
		case err != nil:
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// sandboxStats measures a ready pod. With a cgroup parent (as the kubelet
// sets, one per pod) the parent is the pod's cgroup and is read as a
// whole. Without one (crictl, critest) the pause and every container share
// the runtime's default parent with other pods, so the pod's figures are
// the sum of its pause's (if it has one) and its live containers' cgroups.
func (s *Service) sandboxStats(ctx context.Context, sb *sandbox) (*runtimeapi.PodSandboxStats, error) {
	if err := requireReady(sb); err != nil {
		return nil, err
	}
	pause := stats.Sample{At: time.Now()}
	if !sb.Meta.NoPause {
		var err error
		if pause, err = s.taskCgroupSample(sb.Meta.ID); err != nil {
			return nil, err
		}
	}
	var containers []*runtimeapi.ContainerStats
	for _, c := range s.containersOf(sb.Meta.ID) {
		cs, err := s.containerStats(ctx, c)
		switch {
		case notLive(err):
			continue
		case err != nil:
			return nil, err
		}
		containers = append(containers, cs)
	}
	pod, err := s.podCgroupSample(sb, pause)
	if err != nil {
		return nil, err
	}
	cfg := sb.Meta.config
	linux := &runtimeapi.LinuxPodSandboxStats{
		Process:    &runtimeapi.ProcessUsage{Timestamp: pod.At.UnixNano(), ProcessCount: &runtimeapi.UInt64Value{Value: pod.Pids}},
		Io:         &runtimeapi.IoUsage{Timestamp: pod.At.UnixNano(), Psi: pod.IOPSI},
		Containers: containers,
	}
	linux.Cpu, linux.Memory = s.usage.Usage(sb.Meta.ID, pod)
	if !hostNetwork(cfg) {
		linux.Network = podNetwork(sb)
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.Meta.ID, Metadata: cfg.GetMetadata(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations()},
		Linux:      linux,
	}, nil
}

// podCgroupSample is the reading of the whole pod: its cgroup parent, or
// the sum of the pause's and the live containers' cgroups.
func (s *Service) podCgroupSample(sb *sandbox, pause stats.Sample) (stats.Sample, error) {
	if parent := sb.Meta.config.GetLinux().GetCgroupParent(); parent != "" {
		p, err := s.podTaskCgroup(sb, parent)
		if err != nil {
			return stats.Sample{}, err
		}
		return stats.ReadCgroup(path.Dir(p))
	}
	sum := pause
	for _, c := range s.containersOf(sb.Meta.ID) {
		cs, err := s.taskCgroupSample(c.Meta.ID)
		switch {
		case notLive(err):
			continue
		case err != nil:
			return stats.Sample{}, err
		}
		sum = sum.Add(cs)
	}
	if podLimit := s.podMemoryLimit(sb); podLimit > 0 {
		sum.MemLimit = podLimit
	}
	return sum, nil
}

// podTaskCgroup is the cgroup of the pod's pause, or for a pod without
// one, the cgroup a task named after the pod would get: either way a
// child of the pod's cgroup.
func (s *Service) podTaskCgroup(sb *sandbox, parent string) (string, error) {
	if sb.Meta.NoPause {
		cp, err := spec.PodCgroupsPath(s.cfg.Containers, parent, sb.Meta.ID)
		if err != nil {
			return "", err
		}
		return stats.CgroupFSPath(cp)
	}
	t, err := s.tasks.Get(taskNamespace, sb.Meta.ID)
	if err != nil {
		return "", err
	}
	return s.taskCgroupPath(t)
}

// podMemoryLimit is the pod's memory limit as UpdatePodSandboxResources
// last reported it (resources plus overhead); 0 when unknown.
func (s *Service) podMemoryLimit(sb *sandbox) uint64 {
	res, over := podResources(sb.Status())
	limit := res.GetMemoryLimitInBytes()
	if limit <= 0 {
		return 0
	}
	return uint64(limit + max(over.GetMemoryLimitInBytes(), 0))
}

// podNetwork reads the pod's interfaces through its pause process, or its
// pinned netns; nil if they cannot be read (the pause just exited).
func podNetwork(sb *sandbox) *runtimeapi.NetworkUsage {
	ifaces, err := podNetDevs(sb)
	if err != nil {
		return nil
	}
	return stats.NetworkUsage(ifaces, time.Now())
}

// podNetDevs reads a pod's interfaces: through its pause, or its pinned
// netns when it has none.
func podNetDevs(sb *sandbox) ([]stats.NetDev, error) {
	if sb.Meta.NoPause {
		if sb.Meta.NetNSPath == "" {
			return nil, fmt.Errorf("pod sandbox %s has no network namespace: %w", sb.Meta.ID, errdefs.ErrNotFound)
		}
		ns, err := network.LoadNetNS(sb.Meta.NetNSPath)
		if err != nil {
			return nil, err
		}
		var out []stats.NetDev
		err = ns.Do(func() (err error) {
			out, err = stats.ReadThreadNetDev()
			return err
		})
		return out, err
	}
	pid := sb.Status().Pid
	if pid <= 0 {
		return nil, fmt.Errorf("pod sandbox %s has no pause: %w", sb.Meta.ID, errdefs.ErrNotFound)
	}
	return stats.ReadNetDev(pid)
}

// StreamPodSandboxStats is ListPodSandboxStats in chunks.
func (s *Service) StreamPodSandboxStats(r *runtimeapi.StreamPodSandboxStatsRequest, srv grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	items, err := s.listSandboxStats(srv.Context(), r.GetFilter())
	if err != nil {
		return err
	}
	return chunks.Send(items, func(c []*runtimeapi.PodSandboxStats) *runtimeapi.StreamPodSandboxStatsResponse {
		return &runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: c}
	}, srv.Send)
}
