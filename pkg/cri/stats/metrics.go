package stats

import (
	"slices"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The metrics are cAdvisor's, by name, label set and meaning, so that the
// kubelet's CRI metrics (PodAndContainerStatsFromCRI) serve what its
// cAdvisor collector served. Every series carries the base labels:
// container (the CRI container name, "" for pod-level series), id, image,
// name (the runtime's name), namespace and pod; some add their own
// (metricDef.extra). Label keys are sorted, as the CRI asks. Values are
// unsigned integers (the CRI's Metric carries a UInt64Value), so the
// *_seconds metrics are whole seconds; ListContainerStats has nanoseconds.
var metricBaseLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

// metricDef is one metric: its name, help, type and the labels it adds to
// the base ones (values given in this order).
type metricDef struct {
	name  string
	help  string
	typ   runtimeapi.MetricType
	extra []string
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// metricDefs is the full set, in cAdvisor's words. docs/stats.md says
// where each value comes from.
var metricDefs = []metricDef{
	// CPU: cpuacct / cpu.stat.
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, []string{"cpu"}},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, nil},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, nil},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, nil},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, nil},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, nil},
	// Memory: memory.* (v1), memory.stat/events/peak (v2).
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, nil},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, nil},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, nil},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, nil},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, nil},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, nil},
	{"container_memory_failcnt", "Number of memory usage hits limits.", counter, nil},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, nil},
	// Pressure: *.pressure (the unified hierarchy, also on hybrid hosts).
	{"container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", counter, nil},
	{"container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", counter, nil},
	{"container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", counter, nil},
	{"container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", counter, nil},
	{"container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", counter, nil},
	{"container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", counter, nil},
	// Limits in force: the cgroup's files.
	{"container_spec_cpu_shares", "CPU share of the container.", gauge, nil},
	{"container_spec_cpu_period", "CPU period of the container.", gauge, nil},
	{"container_spec_cpu_quota", "CPU quota of the container.", gauge, nil},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", gauge, nil},
	{"container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", gauge, nil},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", gauge, nil},
	// Lifecycle.
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil},
	{"container_last_seen", "Last time a container was seen by the exporter.", gauge, nil},
	// Processes: cgroup.procs, pids.*, /proc/<pid>/{fd,limits}.
	{"container_processes", "Number of processes running inside the container.", gauge, nil},
	{"container_threads", "Number of threads running inside the container.", gauge, nil},
	{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", gauge, nil},
	{"container_file_descriptors", "Number of open file descriptors for the container.", gauge, nil},
	{"container_sockets", "Number of open sockets for the container.", gauge, nil},
	{"container_ulimits_soft", "Soft ulimit values for the container root process. Unlimited if -1, except priority and nice.", gauge, []string{"ulimit"}},
	// Filesystem: the writable layer and the filesystem under it.
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"}},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"}},
	{"container_fs_inodes_total", "Number of Inodes.", gauge, []string{"device"}},
	{"container_fs_inodes_free", "Number of available Inodes.", gauge, []string{"device"}},
	// Block I/O: blkio (v1), io.stat (v2).
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, []string{"device"}},
	{"container_fs_reads_total", "Cumulative count of reads completed.", counter, []string{"device"}},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, []string{"device"}},
	{"container_fs_writes_total", "Cumulative count of writes completed.", counter, []string{"device"}},
	{"container_blkio_device_usage_total", "Blkio Device bytes usage.", counter, []string{"device", "major", "minor", "operation"}},
	// Network: the pod's namespace, /proc/<pause pid>/net/dev.
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", counter, []string{"interface"}},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", counter, []string{"interface"}},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", counter, []string{"interface"}},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", counter, []string{"interface"}},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", counter, []string{"interface"}},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", counter, []string{"interface"}},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", counter, []string{"interface"}},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", counter, []string{"interface"}},
}

// metricIndex is metricDefs by name, with each one's sorted label keys.
var metricIndex = func() map[string]indexedMetric {
	m := make(map[string]indexedMetric, len(metricDefs))
	for _, d := range metricDefs {
		keys := slices.Sorted(slices.Values(append(slices.Clone(metricBaseLabels), d.extra...)))
		m[d.name] = indexedMetric{def: d, desc: &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: keys}}
	}
	return m
}()

type indexedMetric struct {
	def  metricDef
	desc *runtimeapi.MetricDescriptor
}

// Descriptors lists the metrics the series are built of, in a fixed
// order: ListMetricDescriptors' answer, the same for the daemon's life, as
// the CRI asks.
func Descriptors() []*runtimeapi.MetricDescriptor {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDefs))
	for _, d := range metricDefs {
		out = append(out, metricIndex[d.name].desc)
	}
	return out
}

// Labels are the base label values of one object's series: container is
// the CRI container name ("" for pod-level series), name the runtime's.
type Labels struct {
	Container, ID, Image, Name, Namespace, Pod string
}

// seriesBuilder collects the series of one object, all with the same base
// label values.
type seriesBuilder struct {
	base map[string]string
	out  []*runtimeapi.Metric
}

func newSeriesBuilder(l Labels) *seriesBuilder {
	return &seriesBuilder{base: map[string]string{
		"container": l.Container, "id": l.ID, "image": l.Image, "name": l.Name, "namespace": l.Namespace, "pod": l.Pod,
	}}
}

// add appends a live (timestamp 0) series of a metric of metricDefs; extra
// are the values of the metric's own labels, in metricDef.extra's order.
// An unknown name or a wrong count of extra values is a bug and panics, so
// that the table tests catch it.
func (b *seriesBuilder) add(name string, v uint64, extra ...string) {
	im, ok := metricIndex[name]
	if !ok || len(extra) != len(im.def.extra) {
		panic("metric " + name + ": not in metricDefs, or wrong extra labels")
	}
	values := make([]string, 0, len(im.desc.GetLabelKeys()))
	for _, k := range im.desc.GetLabelKeys() {
		if i := slices.Index(im.def.extra, k); i >= 0 {
			values = append(values, extra[i])
		} else {
			values = append(values, b.base[k])
		}
	}
	b.out = append(b.out, &runtimeapi.Metric{Name: name, MetricType: im.def.typ, LabelValues: values, Value: &runtimeapi.UInt64Value{Value: v}})
}

// NetworkSeries is the pod-level series of its interfaces.
func NetworkSeries(l Labels, devs []NetDev) []*runtimeapi.Metric {
	b := newSeriesBuilder(l)
	addNetworkSeries(b, devs)
	return b.out
}

func addNetworkSeries(b *seriesBuilder, devs []NetDev) {
	for _, d := range devs {
		b.add("container_network_receive_bytes_total", d.rxBytes, d.name)
		b.add("container_network_receive_packets_total", d.rxPackets, d.name)
		b.add("container_network_receive_packets_dropped_total", d.rxDropped, d.name)
		b.add("container_network_receive_errors_total", d.rxErrors, d.name)
		b.add("container_network_transmit_bytes_total", d.txBytes, d.name)
		b.add("container_network_transmit_packets_total", d.txPackets, d.name)
		b.add("container_network_transmit_packets_dropped_total", d.txDropped, d.name)
		b.add("container_network_transmit_errors_total", d.txErrors, d.name)
	}
}

// seconds turns nanoseconds into the whole seconds a UInt64Value carries.
func seconds(nanos uint64) uint64 { return nanos / uint64(time.Second) }
