package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Label keys of the metrics, sorted as the CRI asks. They are cAdvisor's
// names, so dashboards built on the kubelet's cAdvisor metrics keep
// working: container (the CRI container name, "" for pod-level series),
// id, image, name (the runtime's name), namespace and pod.
var (
	metricLabelKeys        = []string{"container", "id", "image", "name", "namespace", "pod"}
	metricNetworkLabelKeys = []string{"container", "id", "image", "interface", "name", "namespace", "pod"}
)

// metricDef is one metric: its descriptor and how it is read from stats.
type metricDef struct {
	desc *runtimeapi.MetricDescriptor
	typ  runtimeapi.MetricType
}

// The metrics, by name. Values are unsigned integers (the CRI's Metric
// carries a UInt64Value), so container_cpu_usage_seconds_total is whole
// seconds; exact figures are in ListContainerStats.
const (
	metricCPUSeconds     = "container_cpu_usage_seconds_total"
	metricMemUsage       = "container_memory_usage_bytes"
	metricMemWorkingSet  = "container_memory_working_set_bytes"
	metricMemRSS         = "container_memory_rss"
	metricMemFailures    = "container_memory_failures_total"
	metricProcesses      = "container_processes"
	metricFsUsage        = "container_fs_usage_bytes"
	metricFsInodes       = "container_fs_inodes_total"
	metricNetRxBytes     = "container_network_receive_bytes_total"
	metricNetTxBytes     = "container_network_transmit_bytes_total"
	metricNetRxErrors    = "container_network_receive_errors_total"
	metricNetTxErrors    = "container_network_transmit_errors_total"
	metricMemMajorFaults = "container_memory_major_page_faults_total"
)

var metricDefs = []metricDef{
	{&runtimeapi.MetricDescriptor{Name: metricCPUSeconds, Help: "Cumulative cpu time consumed in seconds.", LabelKeys: metricLabelKeys}, runtimeapi.MetricType_COUNTER},
	{&runtimeapi.MetricDescriptor{Name: metricMemUsage, Help: "Current memory usage in bytes, including all memory regardless of when it was accessed.", LabelKeys: metricLabelKeys}, runtimeapi.MetricType_GAUGE},
	{&runtimeapi.MetricDescriptor{Name: metricMemWorkingSet, Help: "Current working set in bytes.", LabelKeys: metricLabelKeys}, runtimeapi.MetricType_GAUGE},
	{&runtimeapi.MetricDescriptor{Name: metricMemRSS, Help: "Size of RSS in bytes.", LabelKeys: metricLabelKeys}, runtimeapi.MetricType_GAUGE},
	{&runtimeapi.MetricDescriptor{Name: metricMemFailures, Help: "Cumulative count of minor page faults.", LabelKeys: metricLabelKeys}, runtimeapi.MetricType_COUNTER},
	{&runtimeapi.MetricDescriptor{Name: metricMemMajorFaults, Help: "Cumulative count of major page faults.", LabelKeys: metricLabelKeys}, runtimeapi.MetricType_COUNTER},
	{&runtimeapi.MetricDescriptor{Name: metricProcesses, Help: "Number of processes running inside the container.", LabelKeys: metricLabelKeys}, runtimeapi.MetricType_GAUGE},
	{&runtimeapi.MetricDescriptor{Name: metricFsUsage, Help: "Number of bytes consumed by the container's writable layer.", LabelKeys: metricLabelKeys}, runtimeapi.MetricType_GAUGE},
	{&runtimeapi.MetricDescriptor{Name: metricFsInodes, Help: "Number of inodes used by the container's writable layer.", LabelKeys: metricLabelKeys}, runtimeapi.MetricType_GAUGE},
	{&runtimeapi.MetricDescriptor{Name: metricNetRxBytes, Help: "Cumulative count of bytes received.", LabelKeys: metricNetworkLabelKeys}, runtimeapi.MetricType_COUNTER},
	{&runtimeapi.MetricDescriptor{Name: metricNetTxBytes, Help: "Cumulative count of bytes transmitted.", LabelKeys: metricNetworkLabelKeys}, runtimeapi.MetricType_COUNTER},
	{&runtimeapi.MetricDescriptor{Name: metricNetRxErrors, Help: "Cumulative count of errors encountered while receiving.", LabelKeys: metricNetworkLabelKeys}, runtimeapi.MetricType_COUNTER},
	{&runtimeapi.MetricDescriptor{Name: metricNetTxErrors, Help: "Cumulative count of errors encountered while transmitting.", LabelKeys: metricNetworkLabelKeys}, runtimeapi.MetricType_COUNTER},
}

var metricTypes = func() map[string]runtimeapi.MetricType {
	m := map[string]runtimeapi.MetricType{}
	for _, d := range metricDefs {
		m[d.desc.GetName()] = d.typ
	}
	return m
}()

// ListMetricDescriptors lists the metrics ListPodSandboxMetrics returns;
// the list is fixed for the daemon's life, as the CRI asks.
func (s *Service) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDefs))
	for _, d := range metricDefs {
		out = append(out, d.desc)
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: out}, nil
}

// ListPodSandboxMetrics reports the metrics of every ready pod: per
// container CPU, memory, processes and writable layer, and per pod the
// network of its namespace.
func (s *Service) ListPodSandboxMetrics(ctx context.Context, _ *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	out, err := s.podSandboxMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

func (s *Service) podSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	stats, err := s.listSandboxStats(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*runtimeapi.PodSandboxMetrics, 0, len(stats))
	for _, ps := range stats {
		out = append(out, s.toPodMetrics(ps))
	}
	return out, nil
}

func (s *Service) toPodMetrics(ps *runtimeapi.PodSandboxStats) *runtimeapi.PodSandboxMetrics {
	md := ps.GetAttributes().GetMetadata()
	pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: ps.GetAttributes().GetId()}
	// Network series belong to the pod (its namespace), labelled as
	// cAdvisor labels the pause container's.
	podLabels := func(iface string) []string {
		return []string{"", ps.GetAttributes().GetId(), "", iface, ps.GetAttributes().GetId(), md.GetNamespace(), md.GetName()}
	}
	if n := ps.GetLinux().GetNetwork(); n != nil {
		ifaces := n.GetInterfaces()
		if n.GetDefaultInterface() != nil {
			ifaces = append([]*runtimeapi.NetworkInterfaceUsage{n.GetDefaultInterface()}, ifaces...)
		}
		for _, i := range ifaces {
			l := podLabels(i.GetName())
			pm.Metrics = append(pm.Metrics,
				metric(metricNetRxBytes, l, i.GetRxBytes()), metric(metricNetTxBytes, l, i.GetTxBytes()),
				metric(metricNetRxErrors, l, i.GetRxErrors()), metric(metricNetTxErrors, l, i.GetTxErrors()))
		}
	}
	for _, cs := range ps.GetLinux().GetContainers() {
		id := cs.GetAttributes().GetId()
		var image, name string
		if c, err := s.containers.Get(id); err == nil {
			image, name = c.Meta.ImageName, c.Meta.Name
		}
		l := []string{cs.GetAttributes().GetMetadata().GetName(), id, image, name, md.GetNamespace(), md.GetName()}
		cm := &runtimeapi.ContainerMetrics{ContainerId: id}
		if v := cs.GetCpu().GetUsageCoreNanoSeconds(); v != nil {
			cm.Metrics = append(cm.Metrics, metric(metricCPUSeconds, l, &runtimeapi.UInt64Value{Value: v.GetValue() / 1e9}))
		}
		mem := cs.GetMemory()
		cm.Metrics = append(cm.Metrics,
			metric(metricMemUsage, l, mem.GetUsageBytes()), metric(metricMemWorkingSet, l, mem.GetWorkingSetBytes()),
			metric(metricMemRSS, l, mem.GetRssBytes()), metric(metricMemFailures, l, mem.GetPageFaults()),
			metric(metricMemMajorFaults, l, mem.GetMajorPageFaults()))
		if p, err := s.containerPids(id); err == nil {
			cm.Metrics = append(cm.Metrics, metric(metricProcesses, l, &runtimeapi.UInt64Value{Value: p}))
		}
		if wl := cs.GetWritableLayer(); wl != nil {
			cm.Metrics = append(cm.Metrics, metric(metricFsUsage, l, wl.GetUsedBytes()), metric(metricFsInodes, l, wl.GetInodesUsed()))
		}
		cm.Metrics = dropNil(cm.Metrics)
		pm.ContainerMetrics = append(pm.ContainerMetrics, cm)
	}
	pm.Metrics = dropNil(pm.Metrics)
	return pm
}

// containerPids is pids.current of a container's cgroup.
func (s *Service) containerPids(id string) (uint64, error) {
	smp, err := s.taskCgroupSample(id)
	if err != nil {
		return 0, err
	}
	return smp.pids, nil
}

// metric is a live (timestamp 0) metric; nil if the value is missing.
func metric(name string, labels []string, v *runtimeapi.UInt64Value) *runtimeapi.Metric {
	if v == nil {
		return nil
	}
	return &runtimeapi.Metric{Name: name, MetricType: metricTypes[name], LabelValues: labels, Value: &runtimeapi.UInt64Value{Value: v.GetValue()}}
}

func dropNil(ms []*runtimeapi.Metric) []*runtimeapi.Metric {
	out := ms[:0]
	for _, m := range ms {
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}
