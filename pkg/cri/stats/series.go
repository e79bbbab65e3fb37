package stats

import (
	"context"
	"strconv"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// ContainerReading is everything read about one live container for its
// metrics (ReadContainer); ContainerSeries turns it into series without
// further I/O.
type ContainerReading struct {
	now     time.Time
	started time.Time // zero if unknown
	cg      Sample
	spec    *cgroupSpec // nil if unreadable
	procs   *procSample // nil if unreadable
	layer   *layerUsage // nil if unmeasured
}

// layerUsage is the writable layer and the filesystem it is on.
type layerUsage struct {
	fs                    fsInfo
	usedBytes, inodesUsed uint64
}

// ContainerSeries computes a container's series. Sources that could not be
// read add no series rather than zeros that would read as real values.
func ContainerSeries(l Labels, r ContainerReading) []*runtimeapi.Metric {
	b := newSeriesBuilder(l)
	addContainerSeries(b, r)
	return b.out
}

func addContainerSeries(b *seriesBuilder, r ContainerReading) {
	cg, d := r.cg, r.cg.detail
	b.add("container_cpu_usage_seconds_total", seconds(cg.CPUNanos), "total")
	b.add("container_cpu_user_seconds_total", seconds(d.cpuUserNanos))
	b.add("container_cpu_system_seconds_total", seconds(d.cpuSystemNanos))
	b.add("container_cpu_cfs_periods_total", d.cfsPeriods)
	b.add("container_cpu_cfs_throttled_periods_total", d.cfsThrottled)
	b.add("container_cpu_cfs_throttled_seconds_total", seconds(d.cfsThrottledNanos))

	b.add("container_memory_usage_bytes", cg.MemUsage)
	b.add("container_memory_max_usage_bytes", d.memMaxUsage)
	b.add("container_memory_working_set_bytes", cg.MemWorkingSet)
	b.add("container_memory_rss", cg.MemRSS)
	b.add("container_memory_cache", d.memCache)
	b.add("container_memory_mapped_file", d.memMappedFile)
	b.add("container_memory_swap", d.memSwap)
	b.add("container_memory_kernel_usage", d.memKernel)
	b.add("container_memory_failcnt", d.memFailcnt)
	b.add("container_memory_failures_total", d.pgFaultSelf, "pgfault", "container")
	b.add("container_memory_failures_total", d.pgMajFaultSelf, "pgmajfault", "container")
	b.add("container_memory_failures_total", cg.PgFault, "pgfault", "hierarchy")
	b.add("container_memory_failures_total", cg.PgMajFault, "pgmajfault", "hierarchy")
	b.add("container_oom_events_total", d.oomKills)

	pressureSeries(b, "cpu", cg.CPUPSI)
	pressureSeries(b, "memory", cg.MemPSI)
	pressureSeries(b, "io", cg.IOPSI)

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

	b.add("container_threads", cg.Pids)
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

// ContainerSource is where a live container's metrics are read.
type ContainerSource struct {
	ID      string // for the log
	Cgroup  string // under the hierarchies' roots (CgroupFSPath)
	InitPid int    // 0 if unknown
	Started time.Time
	// UpperDir is its writable layer, on the filesystem of the LayerFS.
	UpperDir string
}

// ReadContainer reads a live container for its metrics at now. Only the
// cgroup is required (a cgroup that is gone is ErrNotFound): the limits,
// processes and writable layer are best effort, and their series are left
// out when unreadable.
func ReadContainer(ctx context.Context, src ContainerSource, now time.Time, layers *LayerFS) (ContainerReading, error) {
	cg, err := ReadCgroup(src.Cgroup)
	if err != nil {
		return ContainerReading{}, err
	}
	logger := klog.FromContext(ctx).WithValues("containerID", src.ID)
	r := ContainerReading{now: now, started: src.Started, cg: cg}
	if spec, err := readCgroupSpec(src.Cgroup); err == nil {
		r.spec = &spec
	} else {
		logger.V(4).Info("Could not read a container's cgroup limits", "err", err)
	}
	if procs, err := readProcSample(src.Cgroup, src.InitPid); err == nil {
		r.procs = &procs
	} else {
		logger.V(4).Info("Could not read a container's processes", "err", err)
	}
	if fi := layers.get(ctx); fi != nil {
		if used, inodes, ok := measureLayer(ctx, src.ID, src.UpperDir); ok {
			r.layer = &layerUsage{fs: *fi, usedBytes: used, inodesUsed: inodes}
		}
	}
	return r, nil
}

// LayerFS reads the filesystem under the writable layers (dir) once: make
// one per call of ListPodSandboxMetrics. It is not safe for concurrent use.
type LayerFS struct {
	dir  string
	done bool
	info *fsInfo
}

// NewLayerFS reads the filesystem of dir when first asked.
func NewLayerFS(dir string) *LayerFS { return &LayerFS{dir: dir} }

func (l *LayerFS) get(ctx context.Context) *fsInfo {
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
