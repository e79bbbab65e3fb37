package cri

// Modern pod features (issue "Modern pod features"): what each runtime
// handler really supports on this host, probed once per handler binary
// (host.ProbeFeatures) and never assumed. Status advertises the probe's
// result; RunPodSandbox and CreateContainer refuse what the handler lacks
// with InvalidArgument.

import (
	"fmt"
	"os"
	"slices"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/host"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

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

// podUserNS is the user namespace of a running pod's pause: its file and
// the pod's mappings; nil when the pod uses the host's.
type podUserNS struct {
	file     *os.File
	uid, gid specs.LinuxIDMapping
}

// openPodUserNS opens the user namespace of sb's pause process when the
// pod has its own; (nil, nil) when it uses the host's.
func openPodUserNS(sb *sandbox) (*podUserNS, error) {
	uid, gid, ok := spec.PodUserNS(sb.Meta.config)
	if !ok {
		return nil, nil
	}
	pid := sb.Status().Pid
	if pid <= 0 {
		return nil, fmt.Errorf("pod sandbox %s has no running pause process: %w", sb.Meta.ID, errdefs.ErrFailedPrecondition)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace of pod sandbox %s: %w", sb.Meta.ID, errdefs.ErrFailedPrecondition)
	}
	return &podUserNS{file: f, uid: uid, gid: gid}, nil
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
