package cri

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
	"github.com/cri-runtime/cri-runtime/pkg/network"
)

func TestSandboxNetworkAndDNS(t *testing.T) {
	e := newTestEnv(t)
	_, ctx := ktesting.NewTestContext(t)
	a := e.podConfig("a")
	a.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"ns1.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}}
	idA := e.run(ctx, a)
	idB := e.run(ctx, e.podConfig("b"))

	stA, stB := e.status(ctx, idA), e.status(ctx, idB)
	for _, st := range []*runtimeapi.PodSandboxStatusResponse{stA, stB} {
		s := st.GetStatus()
		if s.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY || s.GetNetwork().GetIp() == "" {
			t.Fatalf("status = %v", s)
		}
		if !strings.HasPrefix(s.GetNetwork().GetIp(), strings.TrimSuffix(e.subnet, "0/24")) {
			t.Errorf("pod IP %s is not in %s", s.GetNetwork().GetIp(), e.subnet)
		}
		if s.GetLabels()["env"] != "test" || s.GetAnnotations()["note"] != "sandbox test" || s.GetCreatedAt() == 0 || st.GetTimestamp() == 0 {
			t.Errorf("status lost labels, annotations or times: %v", st)
		}
	}
	ipA, ipB := stA.GetStatus().GetNetwork().GetIp(), stB.GetStatus().GetNetwork().GetIp()
	if ipA == ipB {
		t.Fatalf("two pods got the same IP %s", ipA)
	}
	_, nsA := sandboxInfoOf(t, stA)
	_, nsB := sandboxInfoOf(t, stB)
	if nsA != filepath.Join(e.netnsDir(), idA) {
		t.Errorf("netns of %s = %q", idA, nsA)
	}
	// The host reaches a pod; a pod reaches the other.
	if err := ping(t, "", ipA); err != nil {
		t.Errorf("host -> pod a: %v", err)
	}
	if err := ping(t, nsB, ipA); err != nil {
		t.Errorf("pod b -> pod a: %v", err)
	}

	// DNS options, hostname and hosts land in the sandbox dir.
	resolv, err := os.ReadFile(filepath.Join(e.svc.sandboxDir(idA), sandboxResolvFile))
	if err != nil {
		t.Fatal(err)
	}
	want := "nameserver 10.96.0.10\nsearch ns1.svc.cluster.local svc.cluster.local\noptions ndots:5\n"
	if string(resolv) != want {
		t.Errorf("resolv.conf = %q, want %q", resolv, want)
	}
	if h, _ := os.ReadFile(filepath.Join(e.svc.sandboxDir(idA), sandboxHostnameFile)); string(h) != "a\n" {
		t.Errorf("hostname = %q", h)
	}
	if h, _ := os.ReadFile(filepath.Join(e.svc.sandboxDir(idA), sandboxHostsFile)); !strings.Contains(string(h), ipA+"\ta\n") {
		t.Errorf("hosts lacks %s: %q", ipA, h)
	}
	if ms := mountsUnder(e.svc.sandboxDir(idA)); len(ms) != 1 || filepath.Base(ms[0]) != sandboxShmDir {
		t.Errorf("sandbox mounts = %v, want its shm", ms)
	}

	// List with each filter.
	list := func(f *runtimeapi.PodSandboxFilter) []string {
		resp, err := e.client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range resp.GetItems() {
			ids = append(ids, it.GetId())
		}
		return ids
	}
	for _, tc := range []struct {
		name   string
		filter *runtimeapi.PodSandboxFilter
		want   int
	}{
		{"all", nil, 2},
		{"id", &runtimeapi.PodSandboxFilter{Id: idA}, 1},
		{"id prefix", &runtimeapi.PodSandboxFilter{Id: idA[:12]}, 1},
		{"ready", &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}, 2},
		{"notready", &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}}, 0},
		{"label", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "b"}}, 1},
		{"labels", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "b", "env": "prod"}}, 0},
	} {
		if got := list(tc.filter); len(got) != tc.want {
			t.Errorf("%s: listed %v, want %d", tc.name, got, tc.want)
		}
	}

	// Stop: NOTREADY, no IP reported, pod unreachable, netns gone.
	if _, err := e.client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: idA}); err != nil {
		t.Fatal(err)
	}
	st := e.status(ctx, idA).GetStatus()
	if st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.GetNetwork().GetIp() != "" {
		t.Errorf("after stop: %v", st)
	}
	if _, err := os.Stat(nsA); !os.IsNotExist(err) {
		t.Errorf("netns %s after stop: %v", nsA, err)
	}
	if got := list(&runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}}); len(got) != 1 || got[0] != idA {
		t.Errorf("notready after stop: %v", got)
	}
	e.stopAndRemove(ctx, idA)
	e.stopAndRemove(ctx, idB)
	e.assertNoLeaks(idA, idB)
}

func TestSandboxHostNetwork(t *testing.T) {
	// No CNI config at all: host-network pods need none.
	e := newTestEnv(t, withoutNetworkConfig())
	_, ctx := ktesting.NewTestContext(t)

	resp, err := e.client.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.GetStatus().GetConditions() {
		if c.GetType() == runtimeapi.NetworkReady && (c.GetStatus() || c.GetReason() == "") {
			t.Errorf("NetworkReady without a CNI config: %v", c)
		}
	}
	_, err = e.client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: e.podConfig("net")})
	wantCode(t, err, codes.FailedPrecondition, "pod network without a CNI config")
	if entries, _ := os.ReadDir(filepath.Join(e.state, "sandboxes")); len(entries) > 0 {
		t.Errorf("a refused pod left a sandbox dir")
	}

	cfg := e.podConfig("host")
	cfg.Hostname = ""
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE,
	}}
	id := e.run(ctx, cfg)
	st := e.status(ctx, id)
	pid, netns := sandboxInfoOf(t, st)
	if netns != "" || st.GetStatus().GetNetwork().GetIp() != "" {
		t.Errorf("host-network pod has netns %q, ip %q", netns, st.GetStatus().GetNetwork().GetIp())
	}
	if got := st.GetStatus().GetLinux().GetNamespaces().GetOptions().GetNetwork(); got != runtimeapi.NamespaceMode_NODE {
		t.Errorf("status namespace options network = %v", got)
	}
	for _, kind := range []string{"net", "ipc"} {
		podNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
		if err != nil {
			t.Fatal(err)
		}
		// Ask a fresh process: this one's main thread may be parked in a
		// namespace that pkg/network's netns creation left it in.
		out, err := exec.Command("readlink", "/proc/self/ns/"+kind).Output()
		if err != nil {
			t.Fatal(err)
		}
		if host := strings.TrimSpace(string(out)); podNS != host {
			t.Errorf("host-%s pod: pause pid %d is in %s, the host in %s", kind, pid, podNS, host)
		}
	}
	if ms := mountsUnder(e.svc.sandboxDir(id)); len(ms) != 0 {
		t.Errorf("host-IPC pod has mounts %v", ms)
	}
	hn, _ := os.Hostname()
	if h, _ := os.ReadFile(filepath.Join(e.svc.sandboxDir(id), sandboxHostnameFile)); string(h) != hn+"\n" {
		t.Errorf("hostname file %q, host %q", h, hn)
	}
	e.stopAndRemove(ctx, id)
	e.assertNoLeaks(id)
}

func TestSandboxNameReservation(t *testing.T) {
	e := newTestEnv(t)
	_, ctx := ktesting.NewTestContext(t)
	cfg := e.podConfig("same")

	// Concurrent identical requests (a kubelet retry) get one sandbox.
	ids := make([]string, 3)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			if err != nil {
				t.Errorf("RunPodSandbox %d: %v", i, err)
				return
			}
			ids[i] = resp.GetPodSandboxId()
		}()
	}
	wg.Wait()
	if ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("identical requests got %v", ids)
	}
	if again := e.run(ctx, cfg); again != ids[0] {
		t.Errorf("a later identical request got %s, want %s", again, ids[0])
	}
	other := e.podConfig("same")
	other.Labels["changed"] = "yes"
	_, err := e.client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: other})
	wantCode(t, err, codes.AlreadyExists, "same name, other config")
	if !strings.Contains(err.Error(), ids[0]) {
		t.Errorf("AlreadyExists does not name the holder %s: %v", ids[0], err)
	}
	// Another attempt is another name.
	next := e.podConfig("same")
	next.Metadata.Attempt = 1
	id2 := e.run(ctx, next)
	if id2 == ids[0] {
		t.Error("attempt 1 got the sandbox of attempt 0")
	}
	e.stopAndRemove(ctx, ids[0])
	// Once removed, the name is free for another config.
	id3 := e.run(ctx, other)
	e.stopAndRemove(ctx, id2)
	e.stopAndRemove(ctx, id3)
	e.assertNoLeaks(ids[0], id2, id3)
}

func TestSandboxValidationAndIdempotence(t *testing.T) {
	e := newTestEnv(t)
	_, ctx := ktesting.NewTestContext(t)
	for _, tc := range []struct {
		name    string
		mutate  func(*runtimeapi.RunPodSandboxRequest)
		handler string
	}{
		{"no config", func(r *runtimeapi.RunPodSandboxRequest) { r.Config = nil }, ""},
		{"no metadata", func(r *runtimeapi.RunPodSandboxRequest) { r.Config.Metadata = nil }, ""},
		{"no uid", func(r *runtimeapi.RunPodSandboxRequest) { r.Config.Metadata.Uid = "" }, ""},
		{"relative log dir", func(r *runtimeapi.RunPodSandboxRequest) { r.Config.LogDirectory = "logs/x" }, ""},
		{"log dir escape", func(r *runtimeapi.RunPodSandboxRequest) { r.Config.LogDirectory = "/var/log/../../etc" }, ""},
		{"bad hostname", func(r *runtimeapi.RunPodSandboxRequest) { r.Config.Hostname = "a b" }, ""},
		{"bad dns server", func(r *runtimeapi.RunPodSandboxRequest) {
			r.Config.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"not-an-ip"}}
		}, ""},
		{"unknown handler", func(r *runtimeapi.RunPodSandboxRequest) { r.RuntimeHandler = "nope" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runtimeapi.RunPodSandboxRequest{Config: e.podConfig("v")}
			tc.mutate(r)
			_, err := e.client.RunPodSandbox(ctx, r)
			wantCode(t, err, codes.InvalidArgument, tc.name)
		})
	}

	id := e.run(ctx, e.podConfig("idem"))
	for i := 0; i < 2; i++ {
		if _, err := e.client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := e.client.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	if _, err := e.client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Errorf("stop after remove: %v", err)
	}
	_, err := e.client.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	wantCode(t, err, codes.NotFound, "status after remove")

	// Remove without a stop first stops.
	id2 := e.run(ctx, e.podConfig("direct"))
	if _, err := e.client.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id2}); err != nil {
		t.Fatal(err)
	}
	e.assertNoLeaks(id, id2)
}

func TestSandboxParallelNoLeaks(t *testing.T) {
	e := newTestEnv(t)
	_, ctx := ktesting.NewTestContext(t)
	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: e.podConfig(fmt.Sprintf("p%d", i))})
			if err != nil {
				t.Errorf("RunPodSandbox p%d: %v", i, err)
				return
			}
			ids[i] = resp.GetPodSandboxId()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ips := map[string]bool{}
	for _, id := range ids {
		ip := e.status(ctx, id).GetStatus().GetNetwork().GetIp()
		if ip == "" || ips[ip] {
			t.Errorf("pod %s ip %q (duplicate or empty)", id, ip)
		}
		ips[ip] = true
	}
	if ports, _ := os.ReadDir(filepath.Join("/sys/class/net", e.bridge, "brif")); len(ports) != n {
		t.Errorf("bridge has %d ports, want %d", len(ports), n)
	}
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Errorf("StopPodSandbox: %v", err)
			}
			if _, err := e.client.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Errorf("RemovePodSandbox: %v", err)
			}
		}()
	}
	wg.Wait()
	resp, err := e.client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(resp.GetItems()) != 0 {
		t.Errorf("listed after removing all: %v %v", resp.GetItems(), err)
	}
	e.assertNoLeaks(ids...)
}

func TestSandboxRestart(t *testing.T) {
	e := newTestEnv(t)
	_, ctx := ktesting.NewTestContext(t)
	id := e.run(ctx, e.podConfig("survivor"))
	before := e.status(ctx, id)
	ip := before.GetStatus().GetNetwork().GetIp()
	pid, netns := sandboxInfoOf(t, before)

	// A netns with a CNI attachment but no sandbox record: what a crash in
	// the middle of RunPodSandbox leaves. The restart sweeps it.
	orphan := strings.Repeat("0", 56) + testutil.RandHex(t, 4)
	ns, err := network.NewNamedNetNS(e.netnsDir(), orphan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.netw.Setup(ctx, network.SetupRequest{ID: orphan, NetNS: ns.Path(), Name: "orphan", Namespace: "ns1", UID: "u"}); err != nil {
		t.Fatal(err)
	}

	e.restart()
	after := e.status(ctx, id)
	if after.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY || after.GetStatus().GetNetwork().GetIp() != ip {
		t.Fatalf("after restart: %v, want READY with ip %s", after.GetStatus(), ip)
	}
	if p, ns2 := sandboxInfoOf(t, after); p != pid || ns2 != netns {
		t.Errorf("after restart pid %d netns %s, want %d %s", p, ns2, pid, netns)
	}
	if err := ping(t, "", ip); err != nil {
		t.Errorf("host -> pod after restart: %v", err)
	}
	if _, err := os.Stat(ns.Path()); !os.IsNotExist(err) {
		t.Errorf("orphan netns survived the restart: %v", err)
	}
	resp, err := e.client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(resp.GetItems()) != 1 || resp.GetItems()[0].GetId() != id {
		t.Fatalf("listed after restart: %v %v", resp.GetItems(), err)
	}

	// Stop after the restart tears the network down.
	if _, err := e.client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if ports, _ := os.ReadDir(filepath.Join("/sys/class/net", e.bridge, "brif")); len(ports) != 0 {
		t.Errorf("veths left after stop: %d", len(ports))
	}
	if _, err := os.Stat(netns); !os.IsNotExist(err) {
		t.Errorf("netns after stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("pause %d still alive after stop", pid)
	}
	// The stop is durable: it survives another restart.
	e.restart()
	if st := e.status(ctx, id).GetStatus(); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("after second restart: %v", st)
	}
	e.stopAndRemove(ctx, id)
	e.assertNoLeaks(id, orphan)
}

// TestSandboxPauseDies: a pause that dies makes the sandbox NOTREADY; the
// stop still tears the network down.
func TestSandboxPauseDies(t *testing.T) {
	e := newTestEnv(t)
	_, ctx := ktesting.NewTestContext(t)
	id := e.run(ctx, e.podConfig("dies"))
	pid, _ := sandboxInfoOf(t, e.status(ctx, id))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.status(ctx, id).GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		if time.Now().After(deadline) {
			t.Fatal("sandbox still READY 10s after its pause died")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.stopAndRemove(ctx, id)
	e.assertNoLeaks(id)
}

// TestSandboxRollback drives the undo of RunPodSandbox with fault-injecting
// binaries: a CNI plugin whose ADD fails after bridge and host-local did
// their part, and a runc whose create fails after the network is up.
// Neither leaves anything behind, and the name is free again.
func TestSandboxRollback(t *testing.T) {
	t.Run("cni add fails", func(t *testing.T) {
		e := newTestEnv(t, withFailingPlugin())
		_, ctx := ktesting.NewTestContext(t)
		_, err := e.client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: e.podConfig("cnifail")})
		if err == nil || !strings.Contains(err.Error(), "injected ADD failure") {
			t.Fatalf("RunPodSandbox = %v, want the injected failure", err)
		}
		e.assertNoLeaks()
		// The name is free: with a working network the same pod runs.
		e.failingPlugin = false
		e.writeNetworkConfig()
		id := e.run(ctx, e.podConfig("cnifail"))
		e.stopAndRemove(ctx, id)
		e.assertNoLeaks(id)
	})
	t.Run("pause create fails", func(t *testing.T) {
		e := newTestEnv(t)
		_, ctx := ktesting.NewTestContext(t)
		_, err := e.client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: e.podConfig("runcfail"), RuntimeHandler: "failcreate"})
		if err == nil || !strings.Contains(err.Error(), "runc-failcreate") {
			t.Fatalf("RunPodSandbox = %v, want the injected failure", err)
		}
		e.assertNoLeaks()
		resp, err := e.client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil || len(resp.GetItems()) != 0 {
			t.Errorf("listed after a failed run: %v %v", resp.GetItems(), err)
		}
		id := e.run(ctx, e.podConfig("runcfail"))
		e.stopAndRemove(ctx, id)
		e.assertNoLeaks(id)
	})
}
