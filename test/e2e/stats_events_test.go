package e2e

// Stats, metrics, stream lists and container events through the CRI
// socket (issue "Exec, attach, port-forward, logs, stats, events and the
// rest of CRI v1").

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func containerStats(t *testing.T, id string) *runtimeapi.ContainerStats {
	t.Helper()
	resp, err := env.rt.ContainerStats(context.Background(), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStats %s: %v", id, err)
	}
	return resp.GetStats()
}

// TestStats: a container's memory and CPU grow when it allocates and
// computes; its writable layer grows when it writes; the pod (created
// without a cgroup parent, as crictl does) reports the sum; exited
// containers are FailedPrecondition (NotFound is for a container that does
// not exist) and left out of lists, and so is a stopped pod.
func TestStats(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "stats")
	cfg := sh("sleep 100000")
	cfg.Labels = map[string]string{"stats": "yes"}
	id := p.container(t, "idle", cfg, true)
	ctx := context.Background()

	before := containerStats(t, id)
	if before.GetAttributes().GetId() != id || before.GetCpu().GetUsageCoreNanoSeconds() == nil || before.GetMemory().GetWorkingSetBytes() == nil {
		t.Fatalf("first stats: %v", before)
	}

	// 30 MiB into the pod's /dev/shm tmpfs: charged to the writer's cgroup,
	// never reclaimable file cache, so it is working set.
	if out, code := execSync(t, id, "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=30"); code != 0 {
		t.Fatalf("dd to /dev/shm: %d %s", code, out)
	}
	// Some CPU: a busy shell loop of about a second.
	if out, code := execSync(t, id, "sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"); code != 0 {
		t.Fatalf("busy loop: %d %s", code, out)
	}
	// 5 MiB into the writable layer.
	if out, code := execSync(t, id, "dd", "if=/dev/zero", "of=/big", "bs=1M", "count=5"); code != 0 {
		t.Fatalf("dd to /big: %d %s", code, out)
	}
	after := containerStats(t, id)

	ws0, ws1 := before.GetMemory().GetWorkingSetBytes().GetValue(), after.GetMemory().GetWorkingSetBytes().GetValue()
	if ws1 < ws0+25<<20 {
		t.Errorf("working set %d → %d after writing 30 MiB to /dev/shm", ws0, ws1)
	}
	if u := after.GetMemory().GetUsageBytes().GetValue(); u < ws1 {
		t.Errorf("usage %d < working set %d", u, ws1)
	}
	if after.GetMemory().GetPageFaults().GetValue() == 0 {
		t.Errorf("no page faults: %v", after.GetMemory())
	}
	cpu0, cpu1 := before.GetCpu().GetUsageCoreNanoSeconds().GetValue(), after.GetCpu().GetUsageCoreNanoSeconds().GetValue()
	if cpu1 < cpu0+50e6 {
		t.Errorf("cpu %d → %d ns after a busy loop", cpu0, cpu1)
	}
	if after.GetCpu().GetUsageNanoCores() == nil || after.GetCpu().GetUsageNanoCores().GetValue() == 0 {
		t.Errorf("no usage_nano_cores on a second reading after a busy loop: %v", after.GetCpu())
	}
	if wl := after.GetWritableLayer(); wl.GetUsedBytes().GetValue() < 5<<20 || wl.GetInodesUsed().GetValue() < 2 {
		t.Errorf("writable layer after writing 5 MiB: %v", wl)
	}
	t.Logf("container: working set %d → %d, cpu %d → %d ns, nano cores %d, layer %d bytes %d inodes",
		ws0, ws1, cpu0, cpu1, after.GetCpu().GetUsageNanoCores().GetValue(), after.GetWritableLayer().GetUsedBytes().GetValue(), after.GetWritableLayer().GetInodesUsed().GetValue())

	// The pod has no cgroup parent: its figures are its pause's plus its
	// containers'.
	ps, err := env.rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: p.id})
	if err != nil {
		t.Fatalf("PodSandboxStats of a pod without a cgroup parent: %v", err)
	}
	l := ps.GetStats().GetLinux()
	if l.GetMemory().GetWorkingSetBytes().GetValue() < ws1 || l.GetCpu().GetUsageCoreNanoSeconds().GetValue() < cpu1 {
		t.Errorf("pod stats below its container's: %v", l)
	}
	if n := l.GetProcess().GetProcessCount().GetValue(); n < 2 {
		t.Errorf("pod process count %d, want pause + sleep", n)
	}
	if len(l.GetContainers()) != 1 || l.GetContainers()[0].GetAttributes().GetId() != id {
		t.Errorf("pod's container stats: %v", l.GetContainers())
	}
	if d := l.GetNetwork().GetDefaultInterface(); d.GetName() != "eth0" || d.GetTxBytes() == nil {
		t.Errorf("pod network: %v", l.GetNetwork())
	}

	// Lists: by pod, by label; an exited container is left out, and
	// FailedPrecondition on its own: it exists, without a live task.
	done := p.container(t, "done", sh("true"), true)
	waitExited(t, done, 20*time.Second)
	for _, f := range []*runtimeapi.ContainerStatsFilter{
		{PodSandboxId: p.id},
		{LabelSelector: map[string]string{"stats": "yes"}},
		{Id: id[:12]},
	} {
		resp, err := env.rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range resp.GetStats() {
			ids = append(ids, s.GetAttributes().GetId())
		}
		if !slices.Equal(ids, []string{id}) {
			t.Errorf("ListContainerStats(%v) = %v, want [%s]", f, ids, id)
		}
	}
	if _, err := env.rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: done}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ContainerStats of an exited container: %v, want FailedPrecondition", err)
	}
	if _, err := env.rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: "nosuchcontainer"}); status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStats of a missing container: %v, want NotFound", err)
	}
	lp, err := env.rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{Id: p.id}})
	if err != nil || len(lp.GetStats()) != 1 {
		t.Fatalf("ListPodSandboxStats by id: %v, %v", lp, err)
	}

	// The stream gives what the list gives.
	stream, err := env.rt.StreamContainerStats(ctx, &runtimeapi.StreamContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: p.id}})
	if err != nil {
		t.Fatal(err)
	}
	var streamed []string
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("StreamContainerStats: %v", err)
		}
		for _, s := range m.GetContainerStats() {
			streamed = append(streamed, s.GetAttributes().GetId())
		}
	}
	if !slices.Equal(streamed, []string{id}) {
		t.Errorf("StreamContainerStats = %v, want [%s]", streamed, id)
	}

	// Metrics: the descriptors the kubelet reads, and this pod's series.
	descs, err := env.rt.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, d := range descs.GetDescriptors() {
		names[d.GetName()] = true
		if !slices.IsSorted(d.GetLabelKeys()) {
			t.Errorf("%s: label keys not sorted: %v", d.GetName(), d.GetLabelKeys())
		}
	}
	for _, want := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_rss", "container_network_receive_bytes_total", "container_network_transmit_bytes_total", "container_processes"} {
		if !names[want] {
			t.Errorf("descriptor %s missing", want)
		}
	}
	pm, err := env.rt.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range pm.GetPodMetrics() {
		if m.GetPodSandboxId() != p.id {
			continue
		}
		for _, cm := range m.GetContainerMetrics() {
			for _, mm := range cm.GetMetrics() {
				if cm.GetContainerId() == id && mm.GetName() == "container_memory_working_set_bytes" && mm.GetValue().GetValue() >= 25<<20 {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("ListPodSandboxMetrics: no working set series of %s: %v", id, pm)
	}

	// A stopped pod exists but is not ready: FailedPrecondition on its
	// own, left out of the list.
	if _, err := env.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: p.id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("PodSandboxStats of a stopped pod: %v, want FailedPrecondition", err)
	}
	if _, err := env.rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "nosuchpod"}); status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStats of a missing pod: %v, want NotFound", err)
	}
	if lp, err := env.rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{Id: p.id}}); err != nil || len(lp.GetStats()) != 0 {
		t.Errorf("ListPodSandboxStats of a stopped pod: %v, %v; want none", lp, err)
	}
	if _, err := env.rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ContainerStats of a container of a stopped pod: %v, want FailedPrecondition", err)
	}
}

// TestPodSandboxMetrics: the cAdvisor series of a live container carry
// real values: the limits it was created with, its processes and open
// files, its start time, its writable layer; and the pod's interfaces
// carry packet counters. Each series has as many label values as its
// descriptor has keys.
func TestPodSandboxMetrics(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "metrics")
	cfg := sh("exec 3</dev/null 4</dev/null; sleep 100000")
	cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 512, MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 64 << 20,
	}}
	before := time.Now()
	id := p.container(t, "m", cfg, true)
	if out, code := execSync(t, id, "dd", "if=/dev/zero", "of=/big", "bs=1M", "count=3"); code != 0 {
		t.Fatalf("dd to /big: %d %s", code, out)
	}
	ctx := context.Background()
	descs, err := env.rt.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range descs.GetDescriptors() {
		keys[d.GetName()] = d.GetLabelKeys()
	}
	resp, err := env.rt.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// name → first value; label counts checked on every series.
	pod, ctr := map[string]uint64{}, map[string]uint64{}
	check := func(into map[string]uint64, ms []*runtimeapi.Metric) {
		for _, m := range ms {
			if len(m.GetLabelValues()) != len(keys[m.GetName()]) {
				t.Errorf("%s: values %v for keys %v", m.GetName(), m.GetLabelValues(), keys[m.GetName()])
			}
			if _, seen := into[m.GetName()]; !seen {
				into[m.GetName()] = m.GetValue().GetValue()
			}
		}
	}
	for _, pm := range resp.GetPodMetrics() {
		if pm.GetPodSandboxId() != p.id {
			continue
		}
		check(pod, pm.GetMetrics())
		for _, cm := range pm.GetContainerMetrics() {
			if cm.GetContainerId() == id {
				check(ctr, cm.GetMetrics())
			}
		}
	}
	for name, want := range map[string]uint64{
		"container_spec_cpu_period":              100000,
		"container_spec_cpu_quota":               20000,
		"container_spec_cpu_shares":              512,
		"container_spec_memory_limit_bytes":      64 << 20,
		"container_spec_memory_swap_limit_bytes": 64 << 20,
		"container_processes":                    1, // the shell exec'd into sleep
	} {
		if got, ok := ctr[name]; !ok || got != want {
			t.Errorf("%s = %d (present %v), want %d", name, got, ok, want)
		}
	}
	if v := ctr["container_file_descriptors"]; v < 5 {
		t.Errorf("container_file_descriptors = %d, want stdio plus fds 3 and 4", v)
	}
	if v := ctr["container_fs_usage_bytes"]; v < 3<<20 {
		t.Errorf("container_fs_usage_bytes = %d after writing 3 MiB", v)
	}
	for _, name := range []string{"container_memory_usage_bytes", "container_threads", "container_ulimits_soft", "container_fs_limit_bytes", "container_fs_inodes_total"} {
		if v, ok := ctr[name]; v == 0 {
			t.Errorf("%s = 0 (present %v)", name, ok)
		}
	}
	if st := int64(ctr["container_start_time_seconds"]); st < before.Unix()-1 || st > time.Now().Unix() {
		t.Errorf("container_start_time_seconds = %d, want between %d and now", st, before.Unix())
	}
	for _, name := range []string{"container_network_receive_packets_total", "container_network_transmit_packets_total", "container_network_receive_packets_dropped_total", "container_network_transmit_packets_dropped_total"} {
		if _, ok := pod[name]; !ok {
			t.Errorf("pod series %s missing: %v", name, pod)
		}
	}
	var absent []string
	for name := range keys {
		if _, ok := ctr[name]; !ok {
			if _, ok := pod[name]; !ok {
				absent = append(absent, name)
			}
		}
	}
	slices.Sort(absent)
	t.Logf("container: %d series kinds, pod: %d; fds %d, sockets %d, fs %d bytes, threads %d/%d; no series (source absent here): %v",
		len(ctr), len(pod), ctr["container_file_descriptors"], ctr["container_sockets"], ctr["container_fs_usage_bytes"], ctr["container_threads"], ctr["container_threads_max"], absent)
}

// TestContainerEvents: two subscribers each see every event of 20
// container lifecycles, in order per container, then the pod's own.
func TestContainerEvents(t *testing.T) {
	pullImage(t, e2eBusybox)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type seen struct {
		mu  sync.Mutex
		per map[string][]runtimeapi.ContainerEventType
		err error
	}
	subs := make([]*seen, 2)
	for i := range subs {
		stream, err := env.rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
		if err != nil {
			t.Fatalf("GetContainerEvents: %v", err)
		}
		s := &seen{per: map[string][]runtimeapi.ContainerEventType{}}
		subs[i] = s
		go func() {
			for {
				ev, err := stream.Recv()
				s.mu.Lock()
				if err != nil {
					s.err = err
					s.mu.Unlock()
					return
				}
				s.per[ev.GetContainerId()] = append(s.per[ev.GetContainerId()], ev.GetContainerEventType())
				if ev.GetPodSandboxStatus() == nil {
					s.err = fmt.Errorf("event %s of %s has no pod sandbox status", ev.GetContainerEventType(), ev.GetContainerId())
				}
				s.mu.Unlock()
			}
		}()
	}
	// The streams are open once the server has them; an event published
	// before would be missed. A first pod's events tell us they are live.
	p := runPod(t, "events")
	waitFor := func(id string, n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for _, s := range subs {
			for {
				s.mu.Lock()
				got, err := len(s.per[id]), s.err
				s.mu.Unlock()
				if err != nil {
					t.Fatalf("event stream: %v", err)
				}
				if got >= n {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d events, want %d", id, got, n)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	// The pod's CREATED and STARTED may have been sent before the streams
	// were registered; lifecycles below start after the first container
	// event was seen by both.
	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 5)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := p.container(t, fmt.Sprintf("c%d", i), sh("sleep 1000"), true)
			ids[i] = id
			if _, err := env.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
				t.Errorf("StopContainer: %v", err)
			}
			if _, err := env.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
				t.Errorf("RemoveContainer: %v", err)
			}
		}()
	}
	wg.Wait()
	want := []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
	}
	for _, id := range ids {
		waitFor(id, len(want))
	}
	if _, err := env.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatal(err)
	}
	for i, s := range subs {
		s.mu.Lock()
		for _, id := range ids {
			if got := s.per[id]; !slices.Equal(got, want) {
				t.Errorf("subscriber %d, container %s: events %v, want %v", i, id, got, want)
			}
		}
		s.mu.Unlock()
	}
	// The pod's own events end with STOPPED, DELETED.
	for i, s := range subs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.mu.Lock()
			got := slices.Clone(s.per[p.id])
			s.mu.Unlock()
			if len(got) >= 2 && slices.Equal(got[len(got)-2:], want[2:]) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("subscriber %d: pod events %v, want them to end in STOPPED, DELETED", i, got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestCheckpointContainerSaysWhy: CheckpointContainer is Unimplemented,
// and its message says why and whether CRIU works here.
func TestCheckpointContainerSaysWhy(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "checkpoint")
	id := p.container(t, "run", sh("sleep 1000"), true)
	_, err := env.rt.CheckpointContainer(context.Background(), &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: t.TempDir() + "/cp.tar"})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("CheckpointContainer: %v, want Unimplemented", err)
	}
	t.Logf("CheckpointContainer: %s", status.Convert(err).Message())
}
