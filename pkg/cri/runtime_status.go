package cri

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/host"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
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
// features below: probed once per handler, never assumed).
func (s *Service) handlerFeatures(name string) *runtimeapi.RuntimeHandlerFeatures {
	f := s.features(name)
	return &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: f.RecursiveReadOnly, UserNamespaces: f.UserNamespaces}
}

// networkReady is nil when pods can get a network.
func (s *Service) networkReady() error { return s.network.Ready() }

// UpdateRuntimeConfig takes the node's pod CIDR from the kubelet; pods
// created later get addresses from it when the CNI config asks for
// "ipRanges".
func (s *Service) UpdateRuntimeConfig(ctx context.Context, r *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := r.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	if err := s.network.SetPodCIDR(cidr); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Updated pod CIDR", "podCIDR", cidr)
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// What each runtime handler really supports on this host is probed once
// per handler binary (host.ProbeFeatures) and never assumed: Status
// advertises it, and RunPodSandbox and CreateContainer refuse what the
// handler lacks with InvalidArgument.

// features returns what handler supports, probing its binary the first
// time. An unknown handler supports nothing.
func (s *Service) features(handler string) host.Features {
	if handler == "" {
		handler = s.cfg.DefaultRuntimeHandler
	}
	h, ok := s.cfg.Runtimes[handler]
	if !ok {
		return host.Features{}
	}
	key := h.BinaryPath + "\x00" + s.rootDir
	probe, _ := s.featureProbes.LoadOrStore(key, sync.OnceValue(func() host.Features {
		f := host.ProbeFeatures(h.BinaryPath, s.rootDir)
		klog.Background().Info("Probed runtime handler features", "runtimeHandler", handler,
			"recursiveReadOnlyMounts", f.RecursiveReadOnly, "userNamespaces", f.UserNamespaces, "missing", f.Why)
		return f
	}))
	f := probe.(func() host.Features)()
	if f.UserNamespaces {
		for _, d := range []string{s.rootDir, s.stateDir} {
			if err := host.Traversable(d); err != nil {
				f.UserNamespaces = false
				f.Why = append(slices.Clone(f.Why), err.Error())
			}
		}
	}
	return f
}

// checkSandboxFeatures refuses a pod whose user namespace the handler
// cannot give.
func (s *Service) checkSandboxFeatures(handler string, cfg *runtimeapi.PodSandboxConfig) error {
	if _, _, ok := spec.PodUserNS(cfg); ok && !s.features(handler).UserNamespaces {
		return fmt.Errorf("config.linux.security_context.namespace_options.userns_options: runtime handler %q does not support user namespaces on this host: %w",
			handler, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkContainerFeatures refuses recursive read-only mounts the handler
// cannot make.
func (s *Service) checkContainerFeatures(handler string, cfg *runtimeapi.ContainerConfig) error {
	for i, m := range cfg.GetMounts() {
		if m.GetRecursiveReadOnly() && !s.features(handler).RecursiveReadOnly {
			return fmt.Errorf("config.mounts[%d].recursive_read_only: runtime handler %q does not support recursive read-only mounts on this host: %w",
				i, handler, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
