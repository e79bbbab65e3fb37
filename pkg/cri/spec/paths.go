package spec

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultMaskedPaths are hidden from unprivileged containers (containerd's
// list).
var DefaultMaskedPaths = []string{
	"/proc/acpi",
	"/proc/asound",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
}

// DefaultReadonlyPaths are read-only in unprivileged containers.
var DefaultReadonlyPaths = []string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}

// WithMaskedPaths sets linux.maskedPaths and linux.readonlyPaths: none for
// a privileged container; the security context's lists when non-nil (the
// kubelet's procMount: Default sends the defaults, Unmasked sends empty
// lists) unless disableProcMount; else the defaults. Note that an empty
// list and an absent one look the same after gRPC decoding, so over the
// wire Unmasked arrives as "absent" and gets the defaults, as in containerd.
func WithMaskedPaths(sc *runtimeapi.LinuxContainerSecurityContext, disableProcMount bool) SpecOpt {
	return func(s *specs.Spec) error {
		ensureLinux(s)
		if sc.GetPrivileged() {
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
			return nil
		}
		masked, ro := DefaultMaskedPaths, DefaultReadonlyPaths
		if !disableProcMount {
			if sc.GetMaskedPaths() != nil {
				masked = sc.GetMaskedPaths()
			}
			if sc.GetReadonlyPaths() != nil {
				ro = sc.GetReadonlyPaths()
			}
		}
		for i, p := range masked {
			if err := checkPath(fmt.Sprintf("container.linux.security_context.masked_paths[%d]", i), p); err != nil {
				return err
			}
		}
		for i, p := range ro {
			if err := checkPath(fmt.Sprintf("container.linux.security_context.readonly_paths[%d]", i), p); err != nil {
				return err
			}
		}
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = slices.Clone(masked), slices.Clone(ro)
		return nil
	}
}
