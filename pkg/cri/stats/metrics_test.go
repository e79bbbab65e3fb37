package stats

import (
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// critestMetrics are the names critest v1.37.0 (pkg/validate/pod.go,
// expectedMetricDescriptorNames) expects from ListMetricDescriptors.
var critestMetrics = []string{
	"container_blkio_device_usage_total", "container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
	"container_cpu_cfs_throttled_seconds_total", "container_cpu_system_seconds_total", "container_cpu_usage_seconds_total",
	"container_cpu_user_seconds_total", "container_file_descriptors", "container_fs_inodes_free", "container_fs_inodes_total",
	"container_fs_limit_bytes", "container_fs_reads_bytes_total", "container_fs_reads_total", "container_fs_usage_bytes",
	"container_fs_writes_bytes_total", "container_fs_writes_total", "container_last_seen", "container_memory_cache",
	"container_memory_failcnt", "container_memory_failures_total", "container_memory_kernel_usage", "container_memory_mapped_file",
	"container_memory_max_usage_bytes", "container_memory_rss", "container_memory_swap", "container_memory_usage_bytes",
	"container_memory_working_set_bytes", "container_network_receive_bytes_total", "container_network_receive_errors_total",
	"container_network_receive_packets_dropped_total", "container_network_receive_packets_total", "container_network_transmit_bytes_total",
	"container_network_transmit_errors_total", "container_network_transmit_packets_dropped_total", "container_network_transmit_packets_total",
	"container_oom_events_total", "container_pressure_cpu_stalled_seconds_total", "container_pressure_cpu_waiting_seconds_total",
	"container_pressure_io_stalled_seconds_total", "container_pressure_io_waiting_seconds_total", "container_pressure_memory_stalled_seconds_total",
	"container_pressure_memory_waiting_seconds_total", "container_processes", "container_sockets", "container_spec_cpu_period",
	"container_spec_cpu_quota", "container_spec_cpu_shares", "container_spec_memory_limit_bytes", "container_spec_memory_reservation_limit_bytes",
	"container_spec_memory_swap_limit_bytes", "container_start_time_seconds", "container_threads", "container_threads_max", "container_ulimits_soft",
}

// critestUnimplemented are the names critest lets a runtime leave out
// (unimplementedMetricDescriptors); hugetlb is the one we do.
var critestUnimplemented = []string{"container_hugetlb_max_usage_bytes", "container_hugetlb_usage_bytes"}

func TestMetricDescriptors(t *testing.T) {
	got := map[string]*runtimeapi.MetricDescriptor{}
	for _, d := range Descriptors() {
		if _, dup := got[d.GetName()]; dup {
			t.Errorf("%s listed twice", d.GetName())
		}
		got[d.GetName()] = d
		if d.GetHelp() == "" || len(d.GetLabelKeys()) == 0 {
			t.Errorf("%s: needs help and label keys: %v", d.GetName(), d)
		}
		if !slices.IsSorted(d.GetLabelKeys()) {
			t.Errorf("%s: label keys not sorted: %v", d.GetName(), d.GetLabelKeys())
		}
		if !strings.HasPrefix(d.GetName(), "container_") {
			t.Errorf("%s: not a cAdvisor container metric name", d.GetName())
		}
	}
	for _, want := range critestMetrics {
		if _, ok := got[want]; !ok && !slices.Contains(critestUnimplemented, want) {
			t.Errorf("descriptor %s missing", want)
		}
	}
	// cAdvisor's own labels, beside the base ones.
	for name, extra := range map[string][]string{
		"container_cpu_usage_seconds_total":     {"cpu"},
		"container_memory_failures_total":       {"failure_type", "scope"},
		"container_fs_usage_bytes":              {"device"},
		"container_blkio_device_usage_total":    {"device", "major", "minor", "operation"},
		"container_network_receive_bytes_total": {"interface"},
		"container_ulimits_soft":                {"ulimit"},
		"container_memory_rss":                  nil,
	} {
		want := slices.Sorted(slices.Values(append(slices.Clone(metricBaseLabels), extra...)))
		if !slices.Equal(got[name].GetLabelKeys(), want) {
			t.Errorf("%s: label keys %v, want %v", name, got[name].GetLabelKeys(), want)
		}
	}
}

// series indexes metrics by name and by label values joined with ",".
func series(ms []*runtimeapi.Metric) map[string]map[string]uint64 {
	out := map[string]map[string]uint64{}
	for _, m := range ms {
		if out[m.GetName()] == nil {
			out[m.GetName()] = map[string]uint64{}
		}
		out[m.GetName()][strings.Join(m.GetLabelValues(), ",")] = m.GetValue().GetValue()
	}
	return out
}

func TestContainerSeries(t *testing.T) {
	now := time.Unix(1_700_000_100, 0)
	full := ContainerReading{
		now:     now,
		started: time.Unix(1_700_000_000, 500),
		cg: Sample{
			CPUNanos: 3_500_000_000, MemUsage: 100, MemWorkingSet: 80, MemRSS: 60, PgFault: 50, PgMajFault: 5, Pids: 7,
			CPUPSI: &runtimeapi.PsiStats{Some: &runtimeapi.PsiData{Total: 2e9}, Full: &runtimeapi.PsiData{Total: 1e9}},
			detail: cgroupDetail{
				cpuUserNanos: 2e9, cpuSystemNanos: 1e9, cfsPeriods: 10, cfsThrottled: 4, cfsThrottledNanos: 3e9,
				memCache: 20, memMappedFile: 8, memSwap: 16, memKernel: 4, memFailcnt: 2, memMaxUsage: 120,
				pgFaultSelf: 40, pgMajFaultSelf: 3, oomKills: 1, threadsMax: 1024,
				ioBytes: []ioCounter{{"/dev/vda", 254, 0, "Read", 4096}, {"/dev/vda", 254, 0, "Write", 8192}, {"/dev/vda", 254, 0, "Total", 12288}},
				ioOps:   []ioCounter{{"/dev/vda", 254, 0, "Read", 1}, {"/dev/vda", 254, 0, "Write", 2}},
			},
		},
		spec:  &cgroupSpec{cpuShares: 1024, cpuPeriod: 100000, cpuQuota: 20000, memLimit: 64 << 20, memSwapLimit: 64 << 20},
		procs: &procSample{processes: 2, fds: 9, sockets: 1, openFilesSoft: 1024, openFilesSoftOK: true},
		layer: &layerUsage{fs: fsInfo{device: "/dev/vda1", capacity: 1 << 30, inodesFree: 500}, usedBytes: 4096, inodesUsed: 12},
	}
	const base = "c,id1,busybox,c_pod,ns,pod"
	const labelsCPU = "c,total,id1,busybox,c_pod,ns,pod"
	for _, tc := range []struct {
		name   string
		in     ContainerReading
		want   map[string]map[string]uint64 // a subset of the series
		absent []string
	}{
		{
			name: "every source read",
			in:   full,
			want: map[string]map[string]uint64{
				"container_cpu_usage_seconds_total":         {labelsCPU: 3},
				"container_cpu_user_seconds_total":          {base: 2},
				"container_cpu_system_seconds_total":        {base: 1},
				"container_cpu_cfs_periods_total":           {base: 10},
				"container_cpu_cfs_throttled_periods_total": {base: 4},
				"container_cpu_cfs_throttled_seconds_total": {base: 3},
				"container_memory_usage_bytes":              {base: 100},
				"container_memory_max_usage_bytes":          {base: 120},
				"container_memory_working_set_bytes":        {base: 80},
				"container_memory_cache":                    {base: 20},
				"container_memory_swap":                     {base: 16},
				"container_memory_failures_total": {
					"c,pgfault,id1,busybox,c_pod,ns,pod,container":    40,
					"c,pgmajfault,id1,busybox,c_pod,ns,pod,container": 3,
					"c,pgfault,id1,busybox,c_pod,ns,pod,hierarchy":    50,
					"c,pgmajfault,id1,busybox,c_pod,ns,pod,hierarchy": 5,
				},
				"container_oom_events_total":                    {base: 1},
				"container_pressure_cpu_waiting_seconds_total":  {base: 2},
				"container_pressure_cpu_stalled_seconds_total":  {base: 1},
				"container_spec_cpu_shares":                     {base: 1024},
				"container_spec_cpu_period":                     {base: 100000},
				"container_spec_cpu_quota":                      {base: 20000},
				"container_spec_memory_limit_bytes":             {base: 64 << 20},
				"container_spec_memory_reservation_limit_bytes": {base: 0},
				"container_spec_memory_swap_limit_bytes":        {base: 64 << 20},
				"container_start_time_seconds":                  {base: 1_700_000_000},
				"container_last_seen":                           {base: 1_700_000_100},
				"container_processes":                           {base: 2},
				"container_threads":                             {base: 7},
				"container_threads_max":                         {base: 1024},
				"container_file_descriptors":                    {base: 9},
				"container_sockets":                             {base: 1},
				"container_ulimits_soft":                        {"c,id1,busybox,c_pod,ns,pod,max_open_files": 1024},
				"container_fs_usage_bytes":                      {"c,/dev/vda1,id1,busybox,c_pod,ns,pod": 4096},
				"container_fs_limit_bytes":                      {"c,/dev/vda1,id1,busybox,c_pod,ns,pod": 1 << 30},
				"container_fs_inodes_total":                     {"c,/dev/vda1,id1,busybox,c_pod,ns,pod": 12},
				"container_fs_inodes_free":                      {"c,/dev/vda1,id1,busybox,c_pod,ns,pod": 500},
				"container_fs_reads_bytes_total":                {"c,/dev/vda,id1,busybox,c_pod,ns,pod": 4096},
				"container_fs_writes_bytes_total":               {"c,/dev/vda,id1,busybox,c_pod,ns,pod": 8192},
				"container_fs_reads_total":                      {"c,/dev/vda,id1,busybox,c_pod,ns,pod": 1},
				"container_fs_writes_total":                     {"c,/dev/vda,id1,busybox,c_pod,ns,pod": 2},
				"container_blkio_device_usage_total": {
					"c,/dev/vda,id1,busybox,254,0,c_pod,ns,Read,pod":  4096,
					"c,/dev/vda,id1,busybox,254,0,c_pod,ns,Write,pod": 8192,
					"c,/dev/vda,id1,busybox,254,0,c_pod,ns,Total,pod": 12288,
				},
			},
			absent: []string{"container_pressure_memory_waiting_seconds_total", "container_network_receive_bytes_total"},
		},
		{
			name: "unreadable limits, processes and layer leave their series out",
			in:   ContainerReading{now: now, cg: full.cg},
			want: map[string]map[string]uint64{
				"container_threads":   {base: 7},
				"container_last_seen": {base: 1_700_000_100},
			},
			absent: []string{"container_spec_cpu_shares", "container_processes", "container_file_descriptors", "container_ulimits_soft", "container_fs_usage_bytes", "container_start_time_seconds"},
		},
		{
			name: "unset cpu period and quota, unlimited open files, no I/O accounting",
			in: ContainerReading{now: now, cg: Sample{Pids: 1}, spec: &cgroupSpec{cpuShares: 2},
				procs: &procSample{processes: 1}},
			want:   map[string]map[string]uint64{"container_spec_cpu_shares": {base: 2}, "container_spec_memory_limit_bytes": {base: 0}},
			absent: []string{"container_spec_cpu_period", "container_spec_cpu_quota", "container_ulimits_soft", "container_fs_reads_total", "container_blkio_device_usage_total", "container_pressure_cpu_waiting_seconds_total"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := ContainerSeries(Labels{Container: "c", ID: "id1", Image: "busybox", Name: "c_pod", Namespace: "ns", Pod: "pod"}, tc.in)
			got := series(out)
			for name, want := range tc.want {
				for labels, v := range want {
					if gv, ok := got[name][labels]; !ok || gv != v {
						t.Errorf("%s{%s} = %d (present %v), want %d; have %v", name, labels, gv, ok, v, got[name])
					}
				}
			}
			for _, name := range tc.absent {
				if _, ok := got[name]; ok {
					t.Errorf("%s must be absent: %v", name, got[name])
				}
			}
			for _, m := range out {
				if keys := metricIndex[m.GetName()].desc.GetLabelKeys(); len(keys) != len(m.GetLabelValues()) {
					t.Errorf("%s: %d values for keys %v", m.GetName(), len(m.GetLabelValues()), keys)
				}
			}
		})
	}
}

func TestNetworkSeries(t *testing.T) {
	got := series(NetworkSeries(Labels{ID: "sb1", Name: "sb1", Namespace: "ns", Pod: "pod"},
		[]NetDev{{name: "eth0", rxBytes: 1, rxPackets: 2, rxErrors: 3, rxDropped: 4, txBytes: 5, txPackets: 6, txErrors: 7, txDropped: 8}}))
	const l = ",sb1,,eth0,sb1,ns,pod"
	for name, want := range map[string]uint64{
		"container_network_receive_bytes_total": 1, "container_network_receive_packets_total": 2,
		"container_network_receive_errors_total": 3, "container_network_receive_packets_dropped_total": 4,
		"container_network_transmit_bytes_total": 5, "container_network_transmit_packets_total": 6,
		"container_network_transmit_errors_total": 7, "container_network_transmit_packets_dropped_total": 8,
	} {
		if got[name][l] != want {
			t.Errorf("%s = %v, want {%s: %d}", name, got[name], l, want)
		}
	}
}

func TestSeriesBuilderRejectsUnknown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"container_no_such_metric", nil},
		{"container_fs_usage_bytes", nil},             // needs device
		{"container_memory_rss", []string{"surplus"}}, // takes none
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("want a panic")
				}
			}()
			newSeriesBuilder(Labels{}).add(tc.name, 1, tc.extra...)
		})
	}
}

func TestDetail1(t *testing.T) {
	m := &v1stats.Metrics{
		CPU: &v1stats.CPUStat{
			Usage:      &v1stats.CPUUsage{Total: 9, User: 6, Kernel: 3},
			Throttling: &v1stats.Throttle{Periods: 10, ThrottledPeriods: 2, ThrottledTime: 7},
		},
		Memory: &v1stats.MemoryStat{
			TotalCache: 11, TotalMappedFile: 12, PgFault: 13, PgMajFault: 14,
			Usage:  &v1stats.MemoryEntry{Usage: 100, Max: 150, Failcnt: 3},
			Swap:   &v1stats.MemoryEntry{Usage: 130},
			Kernel: &v1stats.MemoryEntry{Usage: 15},
		},
		MemoryOomControl: &v1stats.MemoryOomControl{OomKill: 2},
		Pids:             &v1stats.PidsStat{Current: 3, Limit: 0},
		Blkio: &v1stats.BlkIOStat{
			IoServiceBytesRecursive: []*v1stats.BlkIOEntry{{Op: "Read", Device: "/dev/vda", Major: 254, Value: 4096}, {Op: "Write", Major: 8, Minor: 16, Value: 1}},
			IoServicedRecursive:     []*v1stats.BlkIOEntry{{Op: "Read", Device: "/dev/vda", Major: 254, Value: 1}},
		},
	}
	d := detail1(m)
	want := cgroupDetail{
		cpuUserNanos: 6, cpuSystemNanos: 3, cfsPeriods: 10, cfsThrottled: 2, cfsThrottledNanos: 7,
		memCache: 11, memMappedFile: 12, memSwap: 30, memKernel: 15, memFailcnt: 3, memMaxUsage: 150,
		pgFaultSelf: 13, pgMajFaultSelf: 14, oomKills: 2,
	}
	gotIO, gotOps := d.ioBytes, d.ioOps
	d.ioBytes, d.ioOps = nil, nil
	if !equalDetail(d, want) {
		t.Fatalf("detail1 = %+v, want %+v", d, want)
	}
	if len(gotIO) != 2 || gotIO[0] != (ioCounter{"/dev/vda", 254, 0, "Read", 4096}) || gotIO[1].device != "8:16" || len(gotOps) != 1 {
		t.Fatalf("io = %+v ops = %+v", gotIO, gotOps)
	}
	// No swap accounting: memsw absent, no swap figure; a pids limit.
	m.Memory.Swap = nil
	m.Pids.Limit = 512
	if d := detail1(m); d.memSwap != 0 || d.threadsMax != 512 {
		t.Fatalf("without memsw: swap %d, threadsMax %d", d.memSwap, d.threadsMax)
	}
}

func TestDetail2(t *testing.T) {
	m := &v2stats.Metrics{
		CPU:          &v2stats.CPUStat{UserUsec: 2, SystemUsec: 1, NrPeriods: 5, NrThrottled: 1, ThrottledUsec: 3},
		Memory:       &v2stats.MemoryStat{File: 7, FileMapped: 6, SwapUsage: 5, KernelStack: 1, Slab: 2, Sock: 1, MaxUsage: 99, Pgfault: 4, Pgmajfault: 1},
		MemoryEvents: &v2stats.MemoryEvents{Max: 3, OomKill: 1},
		Pids:         &v2stats.PidsStat{Limit: ^uint64(0)},
		Io:           &v2stats.IOStat{Usage: []*v2stats.IOEntry{{Major: 8, Rbytes: 10, Wbytes: 20, Rios: 1, Wios: 2}}},
	}
	d := detail2(m)
	if d.cpuUserNanos != 2000 || d.cfsThrottledNanos != 3000 || d.memKernel != 4 || d.memFailcnt != 3 || d.oomKills != 1 || d.threadsMax != 0 || d.memMaxUsage != 99 {
		t.Fatalf("detail2 = %+v", d)
	}
	if len(d.ioBytes) != 2 || d.ioBytes[1] != (ioCounter{"8:0", 8, 0, "Write", 20}) || d.ioOps[0].value != 1 {
		t.Fatalf("io = %+v %+v", d.ioBytes, d.ioOps)
	}
}

func equalDetail(a, b cgroupDetail) bool {
	a.ioBytes, a.ioOps, b.ioBytes, b.ioOps = nil, nil, nil, nil
	return a.cpuUserNanos == b.cpuUserNanos && a.cpuSystemNanos == b.cpuSystemNanos && a.cfsPeriods == b.cfsPeriods &&
		a.cfsThrottled == b.cfsThrottled && a.cfsThrottledNanos == b.cfsThrottledNanos && a.memCache == b.memCache &&
		a.memMappedFile == b.memMappedFile && a.memSwap == b.memSwap && a.memKernel == b.memKernel && a.memFailcnt == b.memFailcnt &&
		a.memMaxUsage == b.memMaxUsage && a.pgFaultSelf == b.pgFaultSelf && a.pgMajFaultSelf == b.pgMajFaultSelf &&
		a.oomKills == b.oomKills && a.threadsMax == b.threadsMax
}

func TestParseCPUMax(t *testing.T) {
	for _, tc := range []struct {
		in            string
		quota, period uint64
	}{
		{"20000 100000\n", 20000, 100000},
		{"max 100000\n", 0, 100000},
		{"garbage", 0, 0},
	} {
		if q, p := parseCPUMax(tc.in); q != tc.quota || p != tc.period {
			t.Errorf("parseCPUMax(%q) = %d %d, want %d %d", tc.in, q, p, tc.quota, tc.period)
		}
	}
}

func TestParseOpenFilesSoft(t *testing.T) {
	const limits = `Limit                     Soft Limit           Hard Limit           Units
Max processes             96365                96365                processes
Max open files            1024                 524288               files
`
	for _, tc := range []struct {
		name, in string
		want     uint64
		ok       bool
	}{
		{"limited", limits, 1024, true},
		{"unlimited", "Max open files            unlimited            unlimited            files\n", 0, false},
		{"missing", "Max processes 1 1 processes\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v, ok := parseOpenFilesSoft(strings.NewReader(tc.in)); v != tc.want || ok != tc.ok {
				t.Fatalf("= %d %v, want %d %v", v, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParsePids(t *testing.T) {
	got, err := parsePids(strings.NewReader("1\n42\n\n"))
	if err != nil || !slices.Equal(got, []int{1, 42}) {
		t.Fatalf("parsePids = %v, %v", got, err)
	}
	if _, err := parsePids(strings.NewReader("x\n")); err == nil {
		t.Fatal("a non-number must fail")
	}
}

// TestCountFDs counts this test process's real descriptors: opening a
// socket adds one fd and one socket.
func TestCountFDs(t *testing.T) {
	fds0, socks0 := countFDs("/proc/self/fd")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fds1, socks1 := countFDs("/proc/self/fd")
	if fds1 < fds0+1 || socks1 < socks0+1 {
		t.Fatalf("before %d fds %d sockets, after a listen %d %d", fds0, socks0, fds1, socks1)
	}
	if f, s := countFDs("/proc/0/fd"); f != 0 || s != 0 {
		t.Fatalf("a missing process counts %d %d", f, s)
	}
}

func TestMountSource(t *testing.T) {
	const mi = `22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
25 22 0:21 / /sys/fs/cgroup rw shared:4 - tmpfs tmpfs ro,mode=755
40 22 254:1 /var/lib/x /srv/x rw,relatime - ext4 /dev/vda1 rw
`
	for _, tc := range []struct {
		major, minor uint64
		want         string
		ok           bool
	}{
		{254, 1, "/dev/vda1", true},
		{0, 21, "tmpfs", true},
		{8, 0, "", false},
	} {
		if got, ok := mountSource(strings.NewReader(mi), tc.major, tc.minor); got != tc.want || ok != tc.ok {
			t.Errorf("mountSource(%d:%d) = %q %v, want %q %v", tc.major, tc.minor, got, ok, tc.want, tc.ok)
		}
	}
}

// TestReadFSInfo stats a real directory: its device is named and sized.
func TestReadFSInfo(t *testing.T) {
	fi, err := readFSInfo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if fi.device == "" || fi.capacity == 0 {
		t.Fatalf("readFSInfo = %+v", fi)
	}
	if _, err := readFSInfo("/nonexistent-" + t.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing dir: %v", err)
	}
}
