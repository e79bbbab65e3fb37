package nri

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	api "github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// ApplyAdjustment applies what plugins asked for at CreateContainer to the
// container's OCI spec. Keys marked for removal ("-key") remove; others set
// or replace. What we cannot honor (CDI devices, block I/O classes) fails
// the create rather than being dropped silently.
func ApplyAdjustment(s *specs.Spec, a *api.ContainerAdjustment) error {
	if a == nil {
		return nil
	}
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	if len(a.GetCDIDevices()) > 0 {
		return fmt.Errorf("NRI adjustment: CDI devices are not supported: %w", errdefs.ErrNotImplemented)
	}
	s.Annotations = adjustMap(s.Annotations, a.GetAnnotations())
	s.Mounts = adjustMounts(s.Mounts, a.GetMounts())
	s.Process.Env = adjustEnv(s.Process.Env, a.GetEnv())
	if h := a.GetHooks(); h != nil {
		if s.Hooks == nil {
			s.Hooks = &specs.Hooks{}
		}
		appendHooks(&s.Hooks.Prestart, h.Prestart)
		appendHooks(&s.Hooks.CreateRuntime, h.CreateRuntime)
		appendHooks(&s.Hooks.CreateContainer, h.CreateContainer)
		appendHooks(&s.Hooks.StartContainer, h.StartContainer)
		appendHooks(&s.Hooks.Poststart, h.Poststart)
		appendHooks(&s.Hooks.Poststop, h.Poststop)
	}
	for _, r := range a.GetRlimits() {
		rl := specs.POSIXRlimit{Type: r.Type, Hard: r.Hard, Soft: r.Soft}
		if i := slices.IndexFunc(s.Process.Rlimits, func(o specs.POSIXRlimit) bool { return o.Type == r.Type }); i >= 0 {
			s.Process.Rlimits[i] = rl
		} else {
			s.Process.Rlimits = append(s.Process.Rlimits, rl)
		}
	}
	if args := a.GetArgs(); len(args) > 0 {
		if args[0] == "" { // UpdateArgs marks a replacement with a leading ""
			args = args[1:]
		}
		s.Process.Args = slices.Clone(args)
	}
	return adjustLinux(s, a.GetLinux())
}

// adjustLinux applies the Linux part of an adjustment.
func adjustLinux(s *specs.Spec, l *api.LinuxContainerAdjustment) error {
	if l == nil {
		return nil
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	for _, d := range l.GetDevices() {
		adjustDevice(s, d)
	}
	if err := adjustResources(s, l.GetResources()); err != nil {
		return err
	}
	if l.GetCgroupsPath() != "" {
		s.Linux.CgroupsPath = l.GetCgroupsPath()
	}
	if v := l.GetOomScoreAdj(); v != nil {
		n := int(v.GetValue())
		s.Process.OOMScoreAdj = &n
	}
	if p := l.GetIoPriority(); p != nil {
		s.Process.IOPriority = p.ToOCI()
	}
	if p := l.GetSeccompPolicy(); p != nil {
		s.Linux.Seccomp = seccompToOCI(p)
	}
	for _, n := range l.GetNamespaces() {
		typ, remove := n.IsMarkedForRemoval()
		i := slices.IndexFunc(s.Linux.Namespaces, func(o specs.LinuxNamespace) bool { return string(o.Type) == typ })
		switch {
		case remove && i >= 0:
			s.Linux.Namespaces = slices.Delete(s.Linux.Namespaces, i, i+1)
		case remove:
		case i >= 0:
			s.Linux.Namespaces[i] = specs.LinuxNamespace{Type: specs.LinuxNamespaceType(n.Type), Path: n.Path}
		default:
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(n.Type), Path: n.Path})
		}
	}
	s.Linux.Sysctl = adjustMap(s.Linux.Sysctl, l.GetSysctl())
	if nd := l.GetNetDevices(); len(nd) > 0 {
		if s.Linux.NetDevices == nil {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{}
		}
		for name, d := range nd {
			if key, remove := api.IsMarkedForRemoval(name); remove {
				delete(s.Linux.NetDevices, key)
				continue
			}
			s.Linux.NetDevices[name] = d.ToOCI()
		}
	}
	if sch := l.GetScheduler(); sch != nil {
		s.Process.Scheduler = sch.ToOCI()
	}
	if mp := l.GetMemoryPolicy(); mp != nil {
		s.Linux.MemoryPolicy = mp.ToOCI()
	}
	if rdt := l.GetRdt(); rdt != nil {
		if s.Linux.IntelRdt == nil {
			s.Linux.IntelRdt = &specs.LinuxIntelRdt{}
		}
		if v := rdt.GetClosId(); v != nil {
			s.Linux.IntelRdt.ClosID = v.GetValue()
		}
	}
	return nil
}

// adjustDevice adds (or, marked, removes) a device node and the cgroup rule
// that lets the container use it.
func adjustDevice(s *specs.Spec, d *api.LinuxDevice) {
	path, remove := d.IsMarkedForRemoval()
	s.Linux.Devices = slices.DeleteFunc(s.Linux.Devices, func(o specs.LinuxDevice) bool { return o.Path == path })
	if remove {
		return
	}
	s.Linux.Devices = append(s.Linux.Devices, d.ToOCI())
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	major, minor := d.Major, d.Minor
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
		Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: "rwm",
	})
}

// adjustResources merges the resources plugins set into the spec's: only
// the values a plugin set change.
func adjustResources(s *specs.Spec, r *api.LinuxResources) error {
	if r == nil {
		return nil
	}
	if r.GetBlockioClass() != nil && r.GetBlockioClass().GetValue() != "" {
		return fmt.Errorf("NRI adjustment: block I/O classes are not supported: %w", errdefs.ErrNotImplemented)
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	MergeResources(s.Linux.Resources, r)
	if c := r.GetRdtClass(); c != nil && c.GetValue() != "" {
		if s.Linux.IntelRdt == nil {
			s.Linux.IntelRdt = &specs.LinuxIntelRdt{}
		}
		s.Linux.IntelRdt.ClosID = c.GetValue()
	}
	return nil
}

// MergeResources sets in o every value r sets; the rest of o stays.
func MergeResources(o *specs.LinuxResources, r *api.LinuxResources) {
	if m := r.GetMemory(); m != nil {
		if o.Memory == nil {
			o.Memory = &specs.LinuxMemory{}
		}
		setIf(&o.Memory.Limit, m.GetLimit().Get())
		setIf(&o.Memory.Reservation, m.GetReservation().Get())
		setIf(&o.Memory.Swap, m.GetSwap().Get())
		setIf(&o.Memory.Kernel, m.GetKernel().Get())
		setIf(&o.Memory.KernelTCP, m.GetKernelTcp().Get())
		setIf(&o.Memory.Swappiness, m.GetSwappiness().Get())
		setIf(&o.Memory.DisableOOMKiller, m.GetDisableOomKiller().Get())
		setIf(&o.Memory.UseHierarchy, m.GetUseHierarchy().Get())
	}
	if c := r.GetCpu(); c != nil {
		if o.CPU == nil {
			o.CPU = &specs.LinuxCPU{}
		}
		setIf(&o.CPU.Shares, c.GetShares().Get())
		setIf(&o.CPU.Quota, c.GetQuota().Get())
		setIf(&o.CPU.Period, c.GetPeriod().Get())
		setIf(&o.CPU.RealtimeRuntime, c.GetRealtimeRuntime().Get())
		setIf(&o.CPU.RealtimePeriod, c.GetRealtimePeriod().Get())
		if c.GetCpus() != "" {
			o.CPU.Cpus = c.GetCpus()
		}
		if c.GetMems() != "" {
			o.CPU.Mems = c.GetMems()
		}
	}
	for _, h := range r.GetHugepageLimits() {
		l := specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()}
		if i := slices.IndexFunc(o.HugepageLimits, func(x specs.LinuxHugepageLimit) bool { return x.Pagesize == l.Pagesize }); i >= 0 {
			o.HugepageLimits[i] = l
		} else {
			o.HugepageLimits = append(o.HugepageLimits, l)
		}
	}
	if len(r.GetUnified()) > 0 {
		if o.Unified == nil {
			o.Unified = map[string]string{}
		}
		maps.Copy(o.Unified, r.GetUnified())
	}
	for _, d := range r.GetDevices() {
		o.Devices = append(o.Devices, specs.LinuxDeviceCgroup{
			Allow: d.GetAllow(), Type: d.GetType(), Major: d.GetMajor().Get(), Minor: d.GetMinor().Get(), Access: d.GetAccess(),
		})
	}
	if p := r.GetPids(); p != nil && p.GetLimit() > 0 {
		limit := p.GetLimit()
		o.Pids = &specs.LinuxPids{Limit: &limit}
	}
}

func setIf[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}

// adjustMap sets and removes ("-key") entries of m.
func adjustMap(m, adj map[string]string) map[string]string {
	for k, v := range adj {
		if key, remove := api.IsMarkedForRemoval(k); remove {
			delete(m, key)
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m
}

// adjustEnv sets and removes ("-KEY") variables, keeping the order of
// those it does not touch.
func adjustEnv(env []string, adj []*api.KeyValue) []string {
	for _, kv := range adj {
		key, remove := kv.IsMarkedForRemoval()
		i := slices.IndexFunc(env, func(e string) bool { k, _, _ := strings.Cut(e, "="); return k == key })
		switch {
		case remove && i >= 0:
			env = slices.Delete(env, i, i+1)
		case remove:
		case i >= 0:
			env[i] = kv.ToOCI()
		default:
			env = append(env, kv.ToOCI())
		}
	}
	return env
}

// adjustMounts replaces mounts at the same destination, appends new ones,
// removes marked ones, and keeps parents before children.
func adjustMounts(mounts []specs.Mount, adj []*api.Mount) []specs.Mount {
	if len(adj) == 0 {
		return mounts
	}
	for _, m := range adj {
		dst, remove := m.IsMarkedForRemoval()
		mounts = slices.DeleteFunc(mounts, func(o specs.Mount) bool { return o.Destination == dst })
		if !remove {
			mounts = append(mounts, m.ToOCI(nil))
		}
	}
	slices.SortStableFunc(mounts, func(a, b specs.Mount) int { return depth(a.Destination) - depth(b.Destination) })
	return mounts
}

func depth(p string) int { return strings.Count(strings.TrimSuffix(p, "/"), "/") }

func appendHooks(dst *[]specs.Hook, hooks []*api.Hook) {
	for _, h := range hooks {
		*dst = append(*dst, h.ToOCI())
	}
}

// seccompToOCI converts a seccomp policy plugins set.
func seccompToOCI(p *api.LinuxSeccomp) *specs.LinuxSeccomp {
	o := &specs.LinuxSeccomp{
		DefaultAction:    specs.LinuxSeccompAction(p.GetDefaultAction()),
		ListenerPath:     p.GetListenerPath(),
		ListenerMetadata: p.GetListenerMetadata(),
		Syscalls:         api.ToOCILinuxSyscalls(p.GetSyscalls()),
	}
	if e := p.GetDefaultErrno(); e != nil {
		v := uint(e.GetValue())
		o.DefaultErrnoRet = &v
	}
	for _, a := range p.GetArchitectures() {
		o.Architectures = append(o.Architectures, specs.Arch(a))
	}
	for _, f := range p.GetFlags() {
		o.Flags = append(o.Flags, specs.LinuxSeccompFlag(f))
	}
	return o
}
