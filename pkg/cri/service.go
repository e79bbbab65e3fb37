// Package cri is the CRI v1 facade: it serves RuntimeService and
// ImageService, translates CRI messages into calls on the task runtime,
// the image service and the network, and maps errors to gRPC codes once
// (in the interceptors). The lifecycle rules of its objects (the
// transitions of a sandbox's and a container's status, and the
// preconditions the handlers check) are one table, pkg/cri/lifecycle; the
// handlers apply them and do the work.
package cri

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/events"
	"github.com/cri-runtime/cri-runtime/pkg/cri/host"
	"github.com/cri-runtime/cri-runtime/pkg/cri/images"
	"github.com/cri-runtime/cri-runtime/pkg/cri/index"
	"github.com/cri-runtime/cri-runtime/pkg/cri/stats"
	"github.com/cri-runtime/cri-runtime/pkg/cri/stream"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/nri"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// Version facts reported by the Version RPC.
const (
	RuntimeName       = "cri-runtime"
	kubeAPIVersion    = "0.1.0"
	runtimeAPIVersion = "v1"
	// taskNamespace is the task runtime namespace of every CRI task.
	taskNamespace = "k8s.io"
)

// RuntimeVersion is set at build time.
var RuntimeVersion = "0.1.0-dev"

// Service serves the CRI. It reaches the layers below only through the
// interfaces of dependencies.go (tasks, images, network, records, NRI);
// its other fields are its config, facts about the host, the index of its
// objects, and the streaming server and event stream it runs itself.
type Service struct {
	runtimeapi.UnimplementedRuntimeServiceServer

	cfg      Config
	stateDir string
	rootDir  string
	// netnsDir is where sandboxes' network namespaces are pinned (the
	// network config's netns_dir); default <stateDir>/netns.
	netnsDir string
	// pauseBinary is the pause program copied into the sandbox rootfs.
	pauseBinary string
	oomFloor    int
	// ownCaps bounds every container's capabilities: what the daemon holds.
	ownCaps []string
	// hugetlb: the host has a hugetlb cgroup controller runc can use.
	hugetlb bool
	// featureProbes caches each handler's probe: binary+root → func() host.Features.
	featureProbes sync.Map

	tasks   taskRuntime
	images  imageService
	network networkManager
	store   recordStore

	sandboxes      *index.Index[*sandbox]
	sandboxNames   *index.Names
	containers     *index.Index[*container]
	containerNames *index.Names

	// nri relays the lifecycle to NRI plugins (nri.go); a disabled one
	// does nothing.
	nriCfg nri.Config
	nri    nriRelay

	events    <-chan runtime.Event
	broadcast *events.Broadcaster // GetContainerEvents
	usage     *stats.Tracker      // what stats remember between calls
	criu      host.CRIU
	stream    *stream.Server
	cancel    context.CancelFunc
	closeOnce sync.Once
	ready     atomic.Bool
}

// Option configures a Service.
type Option func(*Service)

// WithStateDir sets the daemon's state dir (pinned netns, sandbox files).
func WithStateDir(dir string) Option { return func(s *Service) { s.stateDir = dir } }

// WithRootDir sets the daemon's root dir.
func WithRootDir(dir string) Option { return func(s *Service) { s.rootDir = dir } }

// WithNetNSDir sets where sandboxes' network namespaces are pinned; pass
// the network config's netns_dir.
func WithNetNSDir(dir string) Option { return func(s *Service) { s.netnsDir = dir } }

// WithPauseBinary sets the pause program (default: cri-runtime-pause next
// to the daemon, then on PATH).
func WithPauseBinary(path string) Option { return func(s *Service) { s.pauseBinary = path } }

// New builds the CRI service over the task runtime rt. It subscribes to
// the task runtime's events at once, so that nothing the runtime's restore
// publishes is missed.
func New(cfg Config, rt *runtime.Runtime, images imageService, netw networkManager, st recordStore, opts ...Option) (*Service, error) {
	return newService(cfg, runtimeTasks{rt}, images, netw, st, opts...)
}

// newService is New over any taskRuntime: the tests' fake one, too.
func newService(cfg Config, tasks taskRuntime, images imageService, netw networkManager, st recordStore, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		cfg:            cfg,
		stateDir:       "/run/cri-runtime",
		rootDir:        "/var/lib/cri-runtime",
		tasks:          tasks,
		images:         images,
		network:        netw,
		store:          st,
		sandboxes:      index.New("pod sandbox", func(sb *sandbox) string { return sb.Meta.ID }),
		sandboxNames:   index.NewNames("pod sandbox"),
		containers:     index.New("container", func(c *container) string { return c.Meta.ID }),
		containerNames: index.NewNames("container"),
		oomFloor:       host.OOMScoreAdj(),
		ownCaps:        host.Capabilities(),
		hugetlb:        host.HugetlbController(),
		broadcast:      events.New(events.DefaultBuffer),
		usage:          stats.NewTracker(),
	}
	for _, o := range opts {
		o(s)
	}
	if err := s.initNRI(); err != nil {
		return nil, err
	}
	if s.netnsDir == "" {
		s.netnsDir = filepath.Join(s.stateDir, "netns")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.events = tasks.Subscribe(ctx)
	return s, nil
}

// Start restores the CRI objects and starts handling task events; RPCs
// answer Unavailable until it returns.
func (s *Service) Start(ctx context.Context) error {
	if err := s.preparePauseRootfs(); err != nil {
		return err
	}
	if err := s.restore(ctx); err != nil {
		return err
	}
	if err := s.startStreaming(); err != nil {
		return err
	}
	if err := s.startNRI(ctx); err != nil {
		return err
	}
	// Probe every handler now, so Status reports what really works from
	// the first call on.
	for name := range s.cfg.Runtimes {
		s.features(name)
	}
	s.broadcast.RestoreDone()
	s.ready.Store(true)
	return nil
}

// Close stops handling events and serving streams, and ends every
// GetContainerEvents stream (Unavailable). Call it before the gRPC
// server's GracefulStop, which otherwise waits for those streams forever.
// It may be called more than once.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.broadcast.Close()
		s.cancel()
		if s.nri != nil { // a Service built field by field (tests) has none
			s.nri.Stop()
		}
		s.stream.Stop()
	})
}

// Ready reports whether restore has finished.
func (s *Service) Ready() bool { return s.ready.Load() }

// Register adds the CRI services to a gRPC server: the RuntimeService, and
// the ImageService over the same image service (pkg/cri/images).
func (s *Service) Register(srv *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(srv, s)
	runtimeapi.RegisterImageServiceServer(srv, images.New(s.images))
}

// runtimeOpts maps a runtime handler to the task runtime's options; an
// unknown handler is InvalidArgument.
func (s *Service) runtimeOpts(handler string) (runtime.RuntimeOpts, error) {
	if handler == "" {
		handler = s.cfg.DefaultRuntimeHandler
	}
	h, ok := s.cfg.Runtimes[handler]
	if !ok {
		return runtime.RuntimeOpts{}, fmt.Errorf("runtime handler %q is not configured: %w", handler, errdefs.ErrInvalidArgument)
	}
	root := h.Root
	if root == "" {
		root = filepath.Join(s.stateDir, "runtime", handler, taskNamespace)
	}
	return runtime.RuntimeOpts{Binary: h.BinaryPath, Root: root}, nil
}

// sandboxDir holds a sandbox's files on the host: hostname, hosts,
// resolv.conf and the /dev/shm mount.
func (s *Service) sandboxDir(id string) string { return filepath.Join(s.sandboxesParentDir(), id) }

// Files in a sandbox's dir, bind-mounted into its containers.
const (
	sandboxHostnameFile = "hostname"
	sandboxHostsFile    = "hosts"
	sandboxResolvFile   = "resolv.conf"
	// sandboxShmDir is the pod's /dev/shm tmpfs (absent with host IPC).
	sandboxShmDir = "shm"
)

// sandboxFile is the path of one of a sandbox's files.
func (s *Service) sandboxFile(id, name string) string { return filepath.Join(s.sandboxDir(id), name) }

// Counts is what the daemon's metrics read of the CRI objects and events
// (docs/metrics.md).
type Counts struct {
	// PodSandboxes by state: "ready", "notready".
	PodSandboxes map[string]int
	// Containers by state: "created", "running", "exited", "unknown".
	Containers map[string]int
	// EventSubscribersCutOff counts GetContainerEvents streams cut off for
	// falling behind.
	EventSubscribersCutOff int64
	// EventsReplayed counts events handed to new GetContainerEvents
	// streams from what restore recorded.
	EventsReplayed int64
}

// Counts counts the CRI objects by state, and the event streams' losses
// and replays. It takes each object's lock briefly, as a List does.
func (s *Service) Counts() Counts {
	c := Counts{PodSandboxes: map[string]int{}, Containers: map[string]int{}}
	for _, sb := range s.sandboxes.List() {
		c.PodSandboxes[sandboxStateName(sb.Status().State())]++
	}
	for _, ctr := range s.containers.List() {
		c.Containers[containerStateName(ctr.Status().State())]++
	}
	c.EventSubscribersCutOff = s.broadcast.CutOff()
	c.EventsReplayed = s.broadcast.Replayed()
	return c
}

// sandboxStateName is SANDBOX_READY → "ready".
func sandboxStateName(st runtimeapi.PodSandboxState) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "SANDBOX_"))
}

// containerStateName is CONTAINER_RUNNING → "running".
func containerStateName(st runtimeapi.ContainerState) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "CONTAINER_"))
}
