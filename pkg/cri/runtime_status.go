package cri

import (
	"context"
	"sort"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
)

// Version reports the runtime's name and versions.
func (s *Service) Version(ctx context.Context, r *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           kubeAPIVersion,
		RuntimeName:       RuntimeName,
		RuntimeVersion:    RuntimeVersion,
		RuntimeApiVersion: runtimeAPIVersion,
	}, nil
}

// Status reports the runtime's and the network's readiness and the runtime
// handlers with their features.
func (s *Service) Status(ctx context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	runtimeReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	networkReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.networkReady(); err != nil {
		networkReady.Status = false
		networkReady.Reason = "NetworkPluginNotReady"
		networkReady.Message = err.Error()
	}
	names := make([]string, 0, len(s.cfg.Runtimes))
	for name := range s.cfg.Runtimes {
		names = append(names, name)
	}
	sort.Strings(names)
	handlers := []*runtimeapi.RuntimeHandler{{Name: "", Features: s.handlerFeatures(s.cfg.DefaultRuntimeHandler)}}
	for _, name := range names {
		handlers = append(handlers, &runtimeapi.RuntimeHandler{Name: name, Features: s.handlerFeatures(name)})
	}
	return &runtimeapi.StatusResponse{
		Status:          &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeReady, networkReady}},
		RuntimeHandlers: handlers,
		Features:        &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}, nil
}

// RuntimeConfig reports the cgroup driver, so that the kubelet (and critest)
// lay out cgroups the way this runtime does.
func (s *Service) RuntimeConfig(ctx context.Context, r *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if s.cfg.Containers.CgroupDriver == spec.SystemdDriver {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}

// handlerFeatures lists what a handler really supports on this host (see
// features.go: probed once per handler, never assumed).
func (s *Service) handlerFeatures(name string) *runtimeapi.RuntimeHandlerFeatures {
	f := s.features(name)
	return &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: f.RecursiveReadOnly, UserNamespaces: f.UserNamespaces}
}

// networkReady is nil when pods can get a network.
func (s *Service) networkReady() error { return s.network.Ready() }
