// Package metrics is the daemon's Prometheus endpoint ([metrics] in the
// config, docs/metrics.md): the Go and process collectors, a latency
// histogram of every CRI RPC, pod start latency, image pulls, the objects
// the daemon holds, what restore found, and event delivery.
//
// It observes the daemon from outside its layers: gRPC interceptors see
// every RPC (and from PullImage, RunPodSandbox, CreateContainer and
// StartContainer the pull and pod-start figures), and a State function the
// daemon supplies is read at scrape time for the gauges. With metrics off
// nothing of this package is built: no registry, no interceptor, no
// listener. Label values come from small fixed sets (the CRI method
// names, the gRPC codes, the reasons below), never from IDs or images.
//
// It imports only pkg/errdefs of cri-runtime.
package metrics

import (
	"context"
	"path"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const namespace = "cri_runtime"

// State is what the gauges read of the daemon at scrape time.
type State struct {
	// PodSandboxes counts sandboxes by CRI state: "ready", "notready".
	PodSandboxes map[string]int
	// Containers counts containers by CRI state: "created", "running",
	// "exited", "unknown".
	Containers map[string]int
	// Shims is the number of shims (one per task: pause or container).
	Shims int
	// SubscribersCutOff counts event subscribers cut off for falling a
	// whole buffer behind, by stream: "container_events" (CRI
	// GetContainerEvents clients), "task_events" (the daemon's own
	// subscribers of task exits).
	SubscribersCutOff map[string]int64
	// EventsReplayed counts container events handed to a (re)connecting
	// GetContainerEvents client from what restore recorded.
	EventsReplayed int64
}

// RestoreFound is what restore found at start-up.
type RestoreFound struct {
	PodSandboxes int // sandbox records loaded
	Containers   int // container records loaded
	// Tasks by what restore did with them.
	TasksRunning     int // the shim answered: monitored again
	TasksExited      int // the shim was dead: cleaned up, its exit published
	TasksBundleGone  int // the bundle was gone (a reboot): cleaned up
	TasksNeverCreate int // the daemon died before the create: removed
}

// Pull failure reasons, from the gRPC code PullImage returned.
var pullReasons = map[codes.Code]string{
	codes.NotFound:           "not_found",
	codes.FailedPrecondition: "refused",
	codes.Unavailable:        "registry_unavailable",
	codes.DeadlineExceeded:   "timeout",
	codes.Canceled:           "canceled",
	codes.InvalidArgument:    "invalid",
	codes.ResourceExhausted:  "resource_exhausted",
	codes.Unimplemented:      "unsupported",
}

const reasonOther = "other"

func pullReason(c codes.Code) string {
	if r, ok := pullReasons[c]; ok {
		return r
	}
	return reasonOther
}

// Metrics holds the daemon's collectors. Build it only when metrics are
// on; every method is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	rpc          *prometheus.HistogramVec
	podStart     prometheus.Histogram
	pulls        prometheus.Counter
	pullFailures *prometheus.CounterVec
	pullSeconds  prometheus.Histogram
	pullBytes    prometheus.Counter

	restoreSeconds prometheus.Gauge
	restoreFound   *prometheus.GaugeVec

	state *stateCollector
	pods  podStarts
}

// New builds the registry with the Go and process collectors and the
// daemon's own metrics.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rpc: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "cri_request_duration_seconds",
			Help:    "Latency of CRI RPCs by method and gRPC code (for the GetContainerEvents stream: its lifetime).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"method", "code"}),
		podStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "pod_start_duration_seconds",
			Help:    "Time from a RunPodSandbox request to the first of the pod's containers started.",
			Buckets: []float64{.1, .25, .5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300},
		}),
		pulls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "image_pulls_total",
			Help: "PullImage requests finished, successful or not.",
		}),
		pullFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "image_pull_failures_total",
			Help: "PullImage requests that failed, by reason.",
		}, []string{"reason"}),
		pullSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "image_pull_duration_seconds",
			Help:    "Duration of successful PullImage requests (an image already present counts too).",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200},
		}),
		pullBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "image_pull_bytes_total",
			Help: "Bytes of response bodies read from registries (manifests, configs, layers).",
		}),
		restoreSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "restore_duration_seconds",
			Help: "How long the start-up restore of tasks and CRI objects took.",
		}),
		restoreFound: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "restore_found",
			Help: "What the start-up restore found: records loaded and tasks by outcome.",
		}, []string{"what"}),
		state: &stateCollector{},
	}
	m.pods.init()
	for _, r := range pullReasons {
		m.pullFailures.WithLabelValues(r)
	}
	m.pullFailures.WithLabelValues(reasonOther)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.rpc, m.podStart, m.pulls, m.pullFailures, m.pullSeconds, m.pullBytes,
		m.restoreSeconds, m.restoreFound, m.state,
	)
	return m
}

// Registry is the registry /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// WatchState has the gauges read fn at every scrape.
func (m *Metrics) WatchState(fn func() State) { m.state.set(fn) }

// AddPullBytes counts n bytes read from a registry.
func (m *Metrics) AddPullBytes(n int64) { m.pullBytes.Add(float64(n)) }

// ObserveRestore records the start-up restore.
func (m *Metrics) ObserveRestore(took time.Duration, f RestoreFound) {
	m.restoreSeconds.Set(took.Seconds())
	for what, n := range map[string]int{
		"pod_sandboxes":       f.PodSandboxes,
		"containers":          f.Containers,
		"tasks_running":       f.TasksRunning,
		"tasks_exited":        f.TasksExited,
		"tasks_bundle_gone":   f.TasksBundleGone,
		"tasks_never_created": f.TasksNeverCreate,
	} {
		m.restoreFound.WithLabelValues(what).Set(float64(n))
	}
}

// UnaryServerInterceptor observes every unary RPC. Chain it outside the
// CRI interceptor, so that it sees the gRPC code that one mapped.
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observe(info.FullMethod, req, resp, err, start)
		return resp, err
	}
}

// StreamServerInterceptor observes every streaming RPC when it ends.
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.observe(info.FullMethod, nil, nil, err, start)
		return err
	}
}

func (m *Metrics) observe(fullMethod string, req, resp any, err error, start time.Time) {
	took := time.Since(start)
	method := path.Base(fullMethod)
	code := status.Code(err)
	m.rpc.WithLabelValues(method, code.String()).Observe(took.Seconds())
	switch method {
	case "PullImage":
		m.pulls.Inc()
		if err != nil {
			m.pullFailures.WithLabelValues(pullReason(code)).Inc()
		} else {
			m.pullSeconds.Observe(took.Seconds())
		}
	case "RunPodSandbox":
		if r, ok := resp.(*runtimeapi.RunPodSandboxResponse); ok && err == nil {
			m.pods.run(r.GetPodSandboxId(), start)
		}
	case "CreateContainer":
		if r, ok := resp.(*runtimeapi.CreateContainerResponse); ok && err == nil {
			if q, ok := req.(*runtimeapi.CreateContainerRequest); ok {
				m.pods.create(q.GetPodSandboxId(), r.GetContainerId())
			}
		}
	case "StartContainer":
		if q, ok := req.(*runtimeapi.StartContainerRequest); ok && err == nil {
			if d, ok := m.pods.start(q.GetContainerId()); ok {
				m.podStart.Observe(d.Seconds())
			}
		}
	case "RemoveContainer":
		if q, ok := req.(*runtimeapi.RemoveContainerRequest); ok {
			m.pods.removeContainer(q.GetContainerId())
		}
	case "RemovePodSandbox":
		if q, ok := req.(*runtimeapi.RemovePodSandboxRequest); ok {
			m.pods.removePod(q.GetPodSandboxId())
		}
	}
}

// podStarts follows pods from RunPodSandbox to their first started
// container. Both maps are bounded: past maxPendingPods, new pods are not
// followed (a kubelet never has that many pods starting at once).
type podStarts struct {
	mu      sync.Mutex
	pending map[string]time.Time // pod ID → RunPodSandbox received
	owner   map[string]string    // container ID → its pod ID, for pending pods
}

const maxPendingPods = 4096

func (p *podStarts) init() {
	p.pending = map[string]time.Time{}
	p.owner = map[string]string{}
}

func (p *podStarts) run(pod string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) < maxPendingPods {
		p.pending[pod] = at
	}
}

func (p *podStarts) create(pod, ctr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pending[pod]; ok && len(p.owner) < 8*maxPendingPods {
		p.owner[ctr] = pod
	}
}

// start reports how long ctr's pod took to run its first container, once
// per pod.
func (p *podStarts) start(ctr string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pod, ok := p.owner[ctr]
	if !ok {
		return 0, false
	}
	at := p.pending[pod]
	p.forgetLocked(pod)
	return time.Since(at), true
}

func (p *podStarts) removeContainer(ctr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.owner, ctr)
}

func (p *podStarts) removePod(pod string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetLocked(pod)
}

func (p *podStarts) forgetLocked(pod string) {
	delete(p.pending, pod)
	for c, owner := range p.owner {
		if owner == pod {
			delete(p.owner, c)
		}
	}
}

// stateCollector turns the daemon's State into gauges at scrape time.
type stateCollector struct {
	mu sync.Mutex
	fn func() State
}

var (
	podsDesc     = prometheus.NewDesc(namespace+"_pod_sandboxes", "Pod sandboxes by CRI state.", []string{"state"}, nil)
	ctrsDesc     = prometheus.NewDesc(namespace+"_containers", "Containers by CRI state.", []string{"state"}, nil)
	shimsDesc    = prometheus.NewDesc(namespace+"_shims", "Running shims (one per pod sandbox and per container task).", nil, nil)
	cutOffDesc   = prometheus.NewDesc(namespace+"_event_subscribers_cut_off_total", "Event subscribers cut off for falling a whole buffer behind: each missed the events after that and must resubscribe.", []string{"stream"}, nil)
	replayedDesc = prometheus.NewDesc(namespace+"_events_replayed_total", "Container events replayed from what restore recorded to GetContainerEvents clients that (re)connected after a restart.", nil, nil)
)

var (
	podStates = []string{"ready", "notready"}
	ctrStates = []string{"created", "running", "exited", "unknown"}
	streams   = []string{"container_events", "task_events"}
)

func (c *stateCollector) set(fn func() State) {
	c.mu.Lock()
	c.fn = fn
	c.mu.Unlock()
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{podsDesc, ctrsDesc, shimsDesc, cutOffDesc, replayedDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fn := c.fn
	c.mu.Unlock()
	if fn == nil {
		return
	}
	s := fn()
	for _, st := range podStates {
		ch <- prometheus.MustNewConstMetric(podsDesc, prometheus.GaugeValue, float64(s.PodSandboxes[st]), st)
	}
	for _, st := range ctrStates {
		ch <- prometheus.MustNewConstMetric(ctrsDesc, prometheus.GaugeValue, float64(s.Containers[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(shimsDesc, prometheus.GaugeValue, float64(s.Shims))
	for _, st := range streams {
		ch <- prometheus.MustNewConstMetric(cutOffDesc, prometheus.CounterValue, float64(s.SubscribersCutOff[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(replayedDesc, prometheus.CounterValue, float64(s.EventsReplayed))
}
