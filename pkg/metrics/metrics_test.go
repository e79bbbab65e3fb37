package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// serve starts m's endpoint on a free loopback port and returns a scrape
// function.
func serve(t *testing.T, m *Metrics, pprof bool) (scrape func(path string) (int, string)) {
	t.Helper()
	srv, err := Listen(Config{Address: "127.0.0.1:0", Pprof: pprof}, m)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	return func(path string) (int, string) {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
}

// call runs the unary interceptor around a handler that returns resp, err.
func call(m *Metrics, method string, req, resp any, err error) {
	h := func(ctx context.Context, req any) (any, error) { return resp, err }
	_, _ = m.UnaryServerInterceptor()(context.Background(), req, &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/" + method}, h)
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, "\n"+l) {
			t.Errorf("/metrics lacks %q", l)
		}
	}
}

func TestRPCHistogramByMethodAndCode(t *testing.T) {
	m := New()
	scrape := serve(t, m, false)
	call(m, "RunPodSandbox", &runtimeapi.RunPodSandboxRequest{}, &runtimeapi.RunPodSandboxResponse{PodSandboxId: "p1"}, nil)
	call(m, "ContainerStatus", &runtimeapi.ContainerStatusRequest{}, nil, status.Error(codes.NotFound, "gone"))
	call(m, "ContainerStatus", &runtimeapi.ContainerStatusRequest{}, nil, status.Error(codes.NotFound, "gone"))
	code, body := scrape("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	wantLines(t, body,
		`cri_runtime_cri_request_duration_seconds_count{code="OK",method="RunPodSandbox"} 1`,
		`cri_runtime_cri_request_duration_seconds_count{code="NotFound",method="ContainerStatus"} 2`,
		// The Go and process collectors.
		`go_goroutines `, `process_resident_memory_bytes `,
	)
	if code, _ := scrape("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without pprof = %d, want 404", code)
	}
}

func TestStreamObserved(t *testing.T) {
	m := New()
	scrape := serve(t, m, false)
	h := func(srv any, ss grpc.ServerStream) error { return status.Error(codes.Unavailable, "shutting down") }
	_ = m.StreamServerInterceptor()(nil, nil, &grpc.StreamServerInfo{FullMethod: "/runtime.v1.RuntimeService/GetContainerEvents"}, h)
	_, body := scrape("/metrics")
	wantLines(t, body, `cri_runtime_cri_request_duration_seconds_count{code="Unavailable",method="GetContainerEvents"} 1`)
}

func TestPullCountsAndReasons(t *testing.T) {
	m := New()
	scrape := serve(t, m, false)
	pull := func(err error) {
		h := func(ctx context.Context, req any) (any, error) { return &runtimeapi.PullImageResponse{}, err }
		_, _ = m.UnaryServerInterceptor()(context.Background(), &runtimeapi.PullImageRequest{}, &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.ImageService/PullImage"}, h)
	}
	pull(nil)
	pull(status.Error(codes.NotFound, "no such image"))
	pull(status.Error(codes.FailedPrecondition, "401"))
	pull(status.Error(codes.DeadlineExceeded, "stalled"))
	pull(status.Error(codes.Aborted, "odd"))
	m.AddPullBytes(1000)
	m.AddPullBytes(24)
	_, body := scrape("/metrics")
	wantLines(t, body,
		`cri_runtime_image_pulls_total 5`,
		`cri_runtime_image_pull_failures_total{reason="not_found"} 1`,
		`cri_runtime_image_pull_failures_total{reason="refused"} 1`,
		`cri_runtime_image_pull_failures_total{reason="timeout"} 1`,
		`cri_runtime_image_pull_failures_total{reason="other"} 1`,
		// Every reason is there from the start, at 0.
		`cri_runtime_image_pull_failures_total{reason="registry_unavailable"} 0`,
		`cri_runtime_image_pull_duration_seconds_count 1`,
		`cri_runtime_image_pull_bytes_total 1024`,
	)
}

func TestPodStartLatency(t *testing.T) {
	m := New()
	scrape := serve(t, m, false)
	run := func(pod string) {
		call(m, "RunPodSandbox", &runtimeapi.RunPodSandboxRequest{}, &runtimeapi.RunPodSandboxResponse{PodSandboxId: pod}, nil)
	}
	create := func(pod, ctr string) {
		call(m, "CreateContainer", &runtimeapi.CreateContainerRequest{PodSandboxId: pod}, &runtimeapi.CreateContainerResponse{ContainerId: ctr}, nil)
	}
	start := func(ctr string, err error) {
		call(m, "StartContainer", &runtimeapi.StartContainerRequest{ContainerId: ctr}, &runtimeapi.StartContainerResponse{}, err)
	}
	run("p1")
	create("p1", "c1")
	create("p1", "c2")
	start("c1", status.Error(codes.Unknown, "runc failed")) // not running: not the pod's start
	start("c2", nil)                                        // the pod's start
	start("c1", nil)                                        // a second container: not another
	run("p2")
	call(m, "RemovePodSandbox", &runtimeapi.RemovePodSandboxRequest{PodSandboxId: "p2"}, &runtimeapi.RemovePodSandboxResponse{}, nil)
	create("p2", "c3") // after the removal: not followed
	start("c3", nil)
	create("unknown-pod", "c4") // a pod of an earlier daemon run
	start("c4", nil)
	_, body := scrape("/metrics")
	wantLines(t, body, `cri_runtime_pod_start_duration_seconds_count 1`)
	m.pods.mu.Lock()
	defer m.pods.mu.Unlock()
	if len(m.pods.pending) != 0 || len(m.pods.owner) != 0 {
		t.Errorf("pod starts left behind: pending %v, owner %v", m.pods.pending, m.pods.owner)
	}
}

func TestPodStartsBounded(t *testing.T) {
	var p podStarts
	p.init()
	for i := range maxPendingPods + 10 {
		p.run(strings.Repeat("p", 1+i%7)+string(rune('a'+i%26))+time.Duration(i).String(), time.Now())
	}
	if len(p.pending) > maxPendingPods {
		t.Errorf("%d pods followed, bound %d", len(p.pending), maxPendingPods)
	}
}

func TestStateAndRestore(t *testing.T) {
	m := New()
	scrape := serve(t, m, false)
	_, body := scrape("/metrics")
	if strings.Contains(body, "cri_runtime_shims") {
		t.Error("state gauges before WatchState")
	}
	m.WatchState(func() State {
		return State{
			PodSandboxes:      map[string]int{"ready": 2, "notready": 1},
			Containers:        map[string]int{"running": 3, "exited": 4},
			Shims:             5,
			SubscribersCutOff: map[string]int64{"container_events": 1},
			EventsReplayed:    7,
		}
	})
	m.ObserveRestore(1500*time.Millisecond, RestoreFound{PodSandboxes: 2, Containers: 4, TasksRunning: 3, TasksExited: 1})
	_, body = scrape("/metrics")
	wantLines(t, body,
		`cri_runtime_pod_sandboxes{state="ready"} 2`,
		`cri_runtime_pod_sandboxes{state="notready"} 1`,
		`cri_runtime_containers{state="running"} 3`,
		`cri_runtime_containers{state="created"} 0`,
		`cri_runtime_shims 5`,
		`cri_runtime_event_subscribers_cut_off_total{stream="container_events"} 1`,
		`cri_runtime_event_subscribers_cut_off_total{stream="task_events"} 0`,
		`cri_runtime_events_replayed_total 7`,
		`cri_runtime_restore_duration_seconds 1.5`,
		`cri_runtime_restore_found{what="tasks_running"} 3`,
		`cri_runtime_restore_found{what="tasks_bundle_gone"} 0`,
		`cri_runtime_restore_found{what="containers"} 4`,
	)
}

func TestPprofOnTheSameListener(t *testing.T) {
	scrape := serve(t, New(), true)
	code, body := scrape("/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ = %d:\n%s", code, body)
	}
	if code, _ := scrape("/debug/pprof/cmdline"); code != http.StatusOK {
		t.Errorf("GET /debug/pprof/cmdline = %d", code)
	}
}

func TestListenOnTakenAddressFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Listen(Config{Address: l.Addr().String()}, New())
	if err == nil || !strings.Contains(err.Error(), "metrics.address") || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("Listen on a taken address = %v, want an error naming metrics.address and the address", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"off", Config{}, true},
		{"loopback", Config{Address: "127.0.0.1:9090"}, true},
		{"all interfaces", Config{Address: ":9090", Pprof: true}, true},
		{"ipv6", Config{Address: "[::1]:9090"}, true},
		{"no port", Config{Address: "127.0.0.1"}, false},
		{"bad port", Config{Address: "127.0.0.1:http"}, false},
		{"port too big", Config{Address: "127.0.0.1:70000"}, false},
		{"pprof without address", Config{Pprof: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok || (err != nil && !errdefs.IsInvalidArgument(err)) {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
