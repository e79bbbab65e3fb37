package cri

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"
)

// TestPodSandboxResourcesSurviveRestart: the resources of
// UpdatePodSandboxResources are kept in the sandbox's status, read back
// after a daemon restart, and still bound the pod's available memory in
// its stats (a pod without a cgroup parent has no pod cgroup to read the
// limit from).
func TestPodSandboxResourcesSurviveRestart(t *testing.T) {
	e := newTestEnv(t)
	_, ctx := ktesting.NewTestContext(t)
	cfg := e.podConfig("resized")
	cfg.Linux.CgroupParent = ""
	id := e.run(ctx, cfg)

	const limit, overhead = 256 << 20, 16 << 20
	if _, err := e.client.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: id,
		Resources:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: limit, CpuQuota: 50000, CpuPeriod: 100000},
		Overhead:     &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: overhead},
	}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		sb, err := e.svc.getSandbox(id)
		if err != nil {
			t.Fatal(err)
		}
		res, over := podResources(sb.Status())
		if res.GetMemoryLimitInBytes() != limit || res.GetCpuQuota() != 50000 || over.GetMemoryLimitInBytes() != overhead {
			t.Errorf("%s: resources %v overhead %v, want memory %d cpu quota 50000, overhead memory %d", when, res, over, limit, overhead)
		}
		if got := e.svc.podMemoryLimit(sb); got != limit+overhead {
			t.Errorf("%s: pod memory limit %d, want %d", when, got, limit+overhead)
		}
		resp, err := e.client.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id})
		if err != nil {
			t.Fatalf("%s: PodSandboxStats: %v", when, err)
		}
		mem := resp.GetStats().GetLinux().GetMemory()
		avail := mem.GetAvailableBytes().GetValue()
		if avail == 0 || avail+mem.GetWorkingSetBytes().GetValue() != limit+overhead {
			t.Errorf("%s: available %d + working set %d, want the pod limit %d", when, avail, mem.GetWorkingSetBytes().GetValue(), limit+overhead)
		}
	}
	check("before restart")
	e.restart()
	check("after restart")

	// A sandbox never updated has no resources recorded.
	other := e.run(ctx, e.podConfig("plain"))
	sb, err := e.svc.getSandbox(other)
	if err != nil {
		t.Fatal(err)
	}
	if res, over := podResources(sb.Status()); res != nil || over != nil || e.svc.podMemoryLimit(sb) != 0 {
		t.Errorf("never updated: resources %v overhead %v", res, over)
	}
	e.stopAndRemove(ctx, id)
	e.stopAndRemove(ctx, other)
	e.assertNoLeaks(id, other)
}
