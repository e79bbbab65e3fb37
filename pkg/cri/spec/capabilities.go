package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// allCapabilities lists every capability Linux defines (0 … 40), in
// number order. runc ignores those the running kernel lacks.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// AllCapabilities returns every capability name, "CAP_"-prefixed.
func AllCapabilities() []string { return slices.Clone(allCapabilities) }

// normalizeCap turns "net_admin", "NET_ADMIN" or "cap_net_admin" into
// "CAP_NET_ADMIN"; an unknown name is InvalidArgument.
func normalizeCap(name string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	if !slices.Contains(allCapabilities, c) {
		return "", fmt.Errorf("unknown capability %q: %w", name, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

func isAll(name string) bool { return strings.EqualFold(strings.TrimSpace(name), "ALL") }

// WithCapabilityList sets bounding, effective and permitted to caps (in
// allCapabilities order) and clears inheritable and ambient, as containerd
// does since the inheritable-capabilities fix (CVE-2022-24769).
func WithCapabilityList(caps []string) SpecOpt { return capabilityList(allCapabilities, caps) }

// capabilityList is WithCapabilityList within held: a capability outside
// it is FailedPrecondition, since runc could not grant it ("unable to
// apply caps: operation not permitted").
func capabilityList(held, caps []string) SpecOpt {
	return func(s *specs.Spec) error {
		set := make([]string, 0, len(caps))
		for i, c := range caps {
			n, err := normalizeCap(c)
			if err != nil {
				return fmt.Errorf("capability list[%d]: %w", i, err)
			}
			if !slices.Contains(held, n) {
				return fmt.Errorf("capability %s is not held by the runtime, so no container can have it: %w", n, errdefs.ErrFailedPrecondition)
			}
			set = append(set, n)
		}
		set = sortCaps(set)
		ensureProcess(s)
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:  set,
			Effective: slices.Clone(set),
			Permitted: slices.Clone(set),
		}
		return nil
	}
}

// sortCaps dedups caps and orders them by capability number.
func sortCaps(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range allCapabilities {
		if slices.Contains(caps, c) {
			out = append(out, c)
		}
	}
	return out
}

// WithCapabilities applies the CRI add/drop lists to defaults, the
// containerd way: "ALL" in add starts from every capability, "ALL" in drop
// starts from none, then named adds apply, then named drops (a drop wins).
// add_ambient_capabilities are also raised in the inheritable and ambient
// sets; each must survive in the bounding set.
func WithCapabilities(defaults []string, c *runtimeapi.Capability) SpecOpt {
	return capabilities(allCapabilities, defaults, c)
}

// capabilities is WithCapabilities where "ALL" means held, what the
// runtime itself can grant.
func capabilities(held, defaults []string, c *runtimeapi.Capability) SpecOpt {
	return func(s *specs.Spec) error {
		const field = "container.linux.security_context.capabilities"
		set := slices.Clone(defaults)
		if slices.ContainsFunc(c.GetAddCapabilities(), isAll) {
			set = slices.Clone(held)
		}
		if slices.ContainsFunc(c.GetDropCapabilities(), isAll) {
			set = nil
		}
		normalized := make([]string, 0, len(set))
		for _, name := range set {
			n, err := normalizeCap(name)
			if err != nil {
				return fmt.Errorf("default capabilities: %w", err)
			}
			normalized = append(normalized, n)
		}
		set = normalized
		for i, name := range c.GetAddCapabilities() {
			if isAll(name) {
				continue
			}
			n, err := normalizeCap(name)
			if err != nil {
				return fmt.Errorf("%s.add_capabilities[%d]: %w", field, i, err)
			}
			set = append(set, n)
		}
		for i, name := range c.GetDropCapabilities() {
			if isAll(name) {
				continue
			}
			n, err := normalizeCap(name)
			if err != nil {
				return fmt.Errorf("%s.drop_capabilities[%d]: %w", field, i, err)
			}
			set = slices.DeleteFunc(set, func(x string) bool { return x == n })
		}
		if err := capabilityList(held, set)(s); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		return withAmbient(s, field, c.GetAddAmbientCapabilities())
	}
}

func withAmbient(s *specs.Spec, field string, ambient []string) error {
	var amb []string
	for i, name := range ambient {
		n, err := normalizeCap(name)
		if err != nil {
			return fmt.Errorf("%s.add_ambient_capabilities[%d]: %w", field, i, err)
		}
		if !slices.Contains(s.Process.Capabilities.Bounding, n) {
			return fmt.Errorf("%s.add_ambient_capabilities[%d] %s is not in the bounding set: %w", field, i, n, errdefs.ErrInvalidArgument)
		}
		amb = append(amb, n)
	}
	if len(amb) == 0 {
		return nil
	}
	amb = sortCaps(amb)
	s.Process.Capabilities.Inheritable = amb
	s.Process.Capabilities.Ambient = slices.Clone(amb)
	return nil
}

// WithPrivileged makes a privileged container: every capability, every
// host device (when hostDevs) with all devices allowed, no masked or
// read-only paths, and writable /sys and /sys/fs/cgroup. Seccomp is
// dropped by seccompFor.
func WithPrivileged(hostDevs bool, devRoot string) SpecOpt {
	return privileged(allCapabilities, hostDevs, devRoot)
}

// privileged is WithPrivileged where "every capability" means held.
func privileged(held []string, hostDevs bool, devRoot string) SpecOpt {
	return func(s *specs.Spec) error {
		if err := capabilityList(held, held)(s); err != nil {
			return err
		}
		ensureResources(s)
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		for i, m := range s.Mounts {
			if m.Type == "sysfs" || m.Type == "cgroup" || m.Type == "cgroup2" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
		if !hostDevs {
			return nil
		}
		devs, err := hostDevices(devRoot)
		if err != nil {
			return err
		}
		for _, d := range devs {
			if !slices.ContainsFunc(s.Linux.Devices, func(x specs.LinuxDevice) bool { return x.Path == d.Path }) {
				s.Linux.Devices = append(s.Linux.Devices, d)
			}
		}
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}
}

// HeldCapabilities parses /proc/<pid>/status and returns the capabilities
// the process can pass on to a container: those in both its bounding
// (CapBnd) and effective (CapEff) sets, in number order. Bits this
// package has no name for are ignored. A status without either line is
// InvalidArgument.
func HeldCapabilities(procStatus string) ([]string, error) {
	var bnd, eff uint64
	var haveBnd, haveEff bool
	for _, line := range strings.Split(procStatus, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "CapBnd" && key != "CapEff") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", key, strings.TrimSpace(val), errdefs.ErrInvalidArgument)
		}
		if key == "CapBnd" {
			bnd, haveBnd = n, true
		} else {
			eff, haveEff = n, true
		}
	}
	if !haveBnd || !haveEff {
		return nil, fmt.Errorf("process status has no CapBnd or CapEff line: %w", errdefs.ErrInvalidArgument)
	}
	held := bnd & eff
	out := []string{}
	for i, c := range allCapabilities {
		if held&(1<<uint(i)) != 0 {
			out = append(out, c)
		}
	}
	return out, nil
}
