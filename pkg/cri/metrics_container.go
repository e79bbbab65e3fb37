package cri

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// containerReading is everything read about one live container for its
// metrics; containerSeries turns it into series without further I/O.
type containerReading struct {
	now     time.Time
	started time.Time // zero if unknown
	cg      cgroupSample
	spec    *cgroupSpec // nil if unreadable
	procs   *procSample // nil if unreadable
	layer   *layerUsage // nil if unmeasured
}

// layerUsage is the writable layer and the filesystem it is on.
type layerUsage struct {
	fs                    fsInfo
	usedBytes, inodesUsed uint64
}

// containerSeries computes a container's series. Sources that could not be
// read add no series rather than zeros that would read as real values.
func containerSeries(b *seriesBuilder, r containerReading) {
	cg, d := r.cg, r.cg.detail
	b.add("container_cpu_usage_seconds_total", seconds(cg.cpuNanos), "total")
	b.add("container_cpu_user_seconds_total", seconds(d.cpuUserNanos))
	b.add("container_cpu_system_seconds_total", seconds(d.cpuSystemNanos))
	b.add("container_cpu_cfs_periods_total", d.cfsPeriods)
	b.add("container_cpu_cfs_throttled_periods_total", d.cfsThrottled)
	b.add("container_cpu_cfs_throttled_seconds_total", seconds(d.cfsThrottledNanos))

	b.add("container_memory_usage_bytes", cg.memUsage)
	b.add("container_memory_max_usage_bytes", d.memMaxUsage)
	b.add("container_memory_working_set_bytes", cg.memWorkingSet)
	b.add("container_memory_rss", cg.memRSS)
	b.add("container_memory_cache", d.memCache)
	b.add("container_memory_mapped_file", d.memMappedFile)
	b.add("container_memory_swap", d.memSwap)
	b.add("container_memory_kernel_usage", d.memKernel)
	b.add("container_memory_failcnt", d.memFailcnt)
	b.add("container_memory_failures_total", d.pgFaultSelf, "pgfault", "container")
	b.add("container_memory_failures_total", d.pgMajFaultSelf, "pgmajfault", "container")
	b.add("container_memory_failures_total", cg.pgFault, "pgfault", "hierarchy")
	b.add("container_memory_failures_total", cg.pgMajFault, "pgmajfault", "hierarchy")
	b.add("container_oom_events_total", d.oomKills)

	pressureSeries(b, "cpu", cg.cpuPSI)
	pressureSeries(b, "memory", cg.memPSI)
	pressureSeries(b, "io", cg.ioPSI)

	if s := r.spec; s != nil {
		b.add("container_spec_cpu_shares", s.cpuShares)
		// cAdvisor leaves out a period and a quota that are not set.
		if s.cpuPeriod > 0 {
			b.add("container_spec_cpu_period", s.cpuPeriod)
		}
		if s.cpuQuota > 0 {
			b.add("container_spec_cpu_quota", s.cpuQuota)
		}
		b.add("container_spec_memory_limit_bytes", s.memLimit)
		b.add("container_spec_memory_reservation_limit_bytes", s.memReservation)
		b.add("container_spec_memory_swap_limit_bytes", s.memSwapLimit)
	}

	if !r.started.IsZero() {
		b.add("container_start_time_seconds", uint64(r.started.Unix()))
	}
	b.add("container_last_seen", uint64(r.now.Unix()))

	b.add("container_threads", cg.pids)
	b.add("container_threads_max", d.threadsMax)
	if p := r.procs; p != nil {
		b.add("container_processes", p.processes)
		b.add("container_file_descriptors", p.fds)
		b.add("container_sockets", p.sockets)
		if p.openFilesSoftOK {
			b.add("container_ulimits_soft", p.openFilesSoft, "max_open_files")
		}
	}

	if l := r.layer; l != nil {
		dev := l.fs.device
		b.add("container_fs_usage_bytes", l.usedBytes, dev)
		b.add("container_fs_limit_bytes", l.fs.capacity, dev)
		b.add("container_fs_inodes_total", l.inodesUsed, dev)
		b.add("container_fs_inodes_free", l.fs.inodesFree, dev)
	}
	ioSeries(b, d)
}

// pressureSeries adds a resource's PSI: "some" is waiting, "full" stalled.
func pressureSeries(b *seriesBuilder, resource string, psi *runtimeapi.PsiStats) {
	if psi == nil {
		return
	}
	if s := psi.GetSome(); s != nil {
		b.add("container_pressure_"+resource+"_waiting_seconds_total", seconds(s.GetTotal()))
	}
	// The kernel has no "full" line for cpu before 5.13.
	if f := psi.GetFull(); f != nil {
		b.add("container_pressure_"+resource+"_stalled_seconds_total", seconds(f.GetTotal()))
	}
}

// ioSeries adds the block I/O counters per device.
func ioSeries(b *seriesBuilder, d cgroupDetail) {
	for _, c := range d.ioBytes {
		switch c.op {
		case "Read":
			b.add("container_fs_reads_bytes_total", c.value, c.device)
		case "Write":
			b.add("container_fs_writes_bytes_total", c.value, c.device)
		}
		b.add("container_blkio_device_usage_total", c.value, c.device, strconv.FormatUint(c.major, 10), strconv.FormatUint(c.minor, 10), c.op)
	}
	for _, c := range d.ioOps {
		switch c.op {
		case "Read":
			b.add("container_fs_reads_total", c.value, c.device)
		case "Write":
			b.add("container_fs_writes_total", c.value, c.device)
		}
	}
}

// podSandboxMetrics reads every ready pod: the network of its namespace,
// then each live container.
func (s *Service) podSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	now := time.Now()
	layers := &layerFS{dir: filepath.Join(s.rootDir, "containers")}
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
				b := newSeriesBuilder("", sb.Meta.ID, "", sb.Meta.ID, md.GetNamespace(), md.GetName())
				networkSeries(b, devs)
				pm.Metrics = b.out
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

// layerFS reads the filesystem under the writable layers once per call.
type layerFS struct {
	dir  string
	done bool
	info *fsInfo
}

func (l *layerFS) get(ctx context.Context) *fsInfo {
	if !l.done {
		l.done = true
		fi, err := readFSInfo(l.dir)
		if err != nil {
			klog.FromContext(ctx).V(4).Info("Could not stat the writable layers' filesystem", "path", l.dir, "err", err)
			return nil
		}
		l.info = &fi
	}
	return l.info
}

// containerMetrics reads a live container; FailedPrecondition if it has
// no live task. Only the cgroup is required: the limits, processes and
// writable layer are best effort, and their series are left out when
// unreadable.
func (s *Service) containerMetrics(ctx context.Context, c *container, pod *runtimeapi.PodSandboxMetadata, now time.Time, layers *layerFS) (*runtimeapi.ContainerMetrics, error) {
	st := c.Status()
	if _, err := s.liveTask(c); err != nil {
		return nil, err
	}
	p, err := s.taskCgroup(c.Meta.ID)
	if err != nil {
		return nil, err
	}
	cg, err := readCgroup(p)
	if err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).WithValues("containerID", c.Meta.ID)
	r := containerReading{now: now, cg: cg}
	if st.StartedAt != 0 {
		r.started = time.Unix(0, st.StartedAt)
	}
	if spec, err := readCgroupSpec(p); err == nil {
		r.spec = &spec
	} else {
		logger.V(4).Info("Could not read a container's cgroup limits", "err", err)
	}
	if procs, err := readProcSample(p, st.Pid); err == nil {
		r.procs = &procs
	} else {
		logger.V(4).Info("Could not read a container's processes", "err", err)
	}
	if fi := layers.get(ctx); fi != nil {
		used, inodes, err := dirUsage(s.upperDir(c.Meta.ID))
		if err != nil {
			logger.V(4).Info("Could not measure a writable layer", "path", s.upperDir(c.Meta.ID), "err", err)
		}
		if err == nil || errors.Is(err, errLayerTruncated) {
			r.layer = &layerUsage{fs: *fi, usedBytes: used, inodesUsed: inodes}
		}
	}
	b := newSeriesBuilder(c.Meta.config.GetMetadata().GetName(), c.Meta.ID, c.Meta.ImageName, c.Meta.Name, pod.GetNamespace(), pod.GetName())
	containerSeries(b, r)
	return &runtimeapi.ContainerMetrics{ContainerId: c.Meta.ID, Metrics: b.out}, nil
}
