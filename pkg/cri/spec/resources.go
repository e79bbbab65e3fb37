package spec

import (
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

var (
	cpusetRe   = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)
	pageSizeRe = regexp.MustCompile(`^[1-9][0-9]*[KMGTP]B$`)
	unifiedRe  = regexp.MustCompile(`^[a-z0-9_]+\.[a-z0-9_.]+$`)
)

const resourcesField = "container.linux.resources"

// WithResources maps the CRI resources to linux.resources: cpu shares,
// quota, period, cpuset; memory limit (swap = limit when configured and no
// swap limit is given, so the container gets no swap); hugepages; the v2
// unified map as is; and the configured pids limit.
func WithResources(r *runtimeapi.LinuxContainerResources, cfg Config) SpecOpt {
	return func(s *specs.Spec) error {
		ensureResources(s)
		res := s.Linux.Resources
		if cfg.PidsLimit > 0 {
			limit := cfg.PidsLimit
			res.Pids = &specs.LinuxPids{Limit: &limit}
		}
		if r == nil {
			return nil
		}
		cpu, err := cpuResources(r)
		if err != nil {
			return err
		}
		res.CPU = cpu
		if res.Memory, err = memoryResources(r, cfg.SwapEqualsMemoryLimit); err != nil {
			return err
		}
		for i, h := range r.GetHugepageLimits() {
			if !pageSizeRe.MatchString(h.GetPageSize()) {
				return fmt.Errorf("%s.hugepage_limits[%d].page_size %q (want e.g. 2MB): %w", resourcesField, i, h.GetPageSize(), errdefs.ErrInvalidArgument)
			}
			res.HugepageLimits = append(res.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
		}
		if len(r.GetUnified()) > 0 {
			for k := range r.GetUnified() {
				if !unifiedRe.MatchString(k) {
					return fmt.Errorf("%s.unified key %q is not a cgroup file name: %w", resourcesField, k, errdefs.ErrInvalidArgument)
				}
			}
			res.Unified = maps.Clone(r.GetUnified())
		}
		return nil
	}
}

// WithHugetlbController drops linux.resources.hugepageLimits when the host
// has no hugetlb cgroup controller and cfg tolerates that (the default).
// Apply it after everything that may set hugepage limits (WithResources,
// NRI adjustments): the kubelet sends a limit for each page size the host
// offers, and runc fails "cannot set hugetlb limit" without the controller.
func WithHugetlbController(available bool, cfg Config) SpecOpt {
	return func(s *specs.Spec) error {
		if available || !cfg.TolerateMissingHugetlbController || s.Linux == nil || s.Linux.Resources == nil {
			return nil
		}
		s.Linux.Resources.HugepageLimits = nil
		return nil
	}
}

func cpuResources(r *runtimeapi.LinuxContainerResources) (*specs.LinuxCPU, error) {
	cpu := &specs.LinuxCPU{}
	if v := r.GetCpuShares(); v < 0 {
		return nil, fmt.Errorf("%s.cpu_shares %d is negative: %w", resourcesField, v, errdefs.ErrInvalidArgument)
	} else if v > 0 {
		shares := uint64(v)
		cpu.Shares = &shares
	}
	if v := r.GetCpuQuota(); v < -1 {
		return nil, fmt.Errorf("%s.cpu_quota %d is negative: %w", resourcesField, v, errdefs.ErrInvalidArgument)
	} else if v != 0 {
		cpu.Quota = &v
	}
	if v := r.GetCpuPeriod(); v < 0 {
		return nil, fmt.Errorf("%s.cpu_period %d is negative: %w", resourcesField, v, errdefs.ErrInvalidArgument)
	} else if v > 0 {
		period := uint64(v)
		cpu.Period = &period
	}
	if v := r.GetCpusetCpus(); v != "" && !cpusetRe.MatchString(v) {
		return nil, fmt.Errorf("%s.cpuset_cpus %q is not a cpu list: %w", resourcesField, v, errdefs.ErrInvalidArgument)
	}
	if v := r.GetCpusetMems(); v != "" && !cpusetRe.MatchString(v) {
		return nil, fmt.Errorf("%s.cpuset_mems %q is not a node list: %w", resourcesField, v, errdefs.ErrInvalidArgument)
	}
	cpu.Cpus, cpu.Mems = r.GetCpusetCpus(), r.GetCpusetMems()
	if *cpu == (specs.LinuxCPU{}) {
		return nil, nil
	}
	return cpu, nil
}

func memoryResources(r *runtimeapi.LinuxContainerResources, swapEqualsLimit bool) (*specs.LinuxMemory, error) {
	limit, swap := r.GetMemoryLimitInBytes(), r.GetMemorySwapLimitInBytes()
	if limit < 0 {
		return nil, fmt.Errorf("%s.memory_limit_in_bytes %d is negative: %w", resourcesField, limit, errdefs.ErrInvalidArgument)
	}
	if swap < -1 {
		return nil, fmt.Errorf("%s.memory_swap_limit_in_bytes %d is negative: %w", resourcesField, swap, errdefs.ErrInvalidArgument)
	}
	if limit > 0 && swap > 0 && swap < limit {
		return nil, fmt.Errorf("%s.memory_swap_limit_in_bytes %d is below the memory limit %d: %w", resourcesField, swap, limit, errdefs.ErrInvalidArgument)
	}
	if limit == 0 && swap == 0 {
		return nil, nil
	}
	mem := &specs.LinuxMemory{}
	if limit > 0 {
		mem.Limit = &limit
		if swap == 0 && swapEqualsLimit {
			s := limit
			mem.Swap = &s
		}
	}
	if swap != 0 {
		mem.Swap = &swap
	}
	return mem, nil
}

// WithOOMScoreAdj sets process.oomScoreAdj to v, raised to floor (the
// daemon's own score: an unprivileged runc cannot go below it).
func WithOOMScoreAdj(v int64, floor int) SpecOpt {
	return func(s *specs.Spec) error {
		if v < -1000 || v > 1000 {
			return fmt.Errorf("%s.oom_score_adj %d is outside [-1000, 1000]: %w", resourcesField, v, errdefs.ErrInvalidArgument)
		}
		adj := max(int(v), floor)
		ensureProcess(s)
		s.Process.OOMScoreAdj = &adj
		return nil
	}
}

// WithSandboxCPUShares gives the pause containerd's 2 cpu shares.
func WithSandboxCPUShares() SpecOpt {
	return func(s *specs.Spec) error {
		ensureResources(s)
		shares := uint64(2)
		s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
		return nil
	}
}

// WithCgroupsPath sets linux.cgroupsPath under parent (or the configured
// default) in the driver's form.
func WithCgroupsPath(cfg Config, parent, id string) SpecOpt {
	return func(s *specs.Spec) error {
		p, err := cgroupsPath(cfg.CgroupDriver, cfg.cgroupParent(parent), id)
		if err != nil {
			return fmt.Errorf("linux.cgroup_parent: %w", err)
		}
		ensureLinux(s)
		s.Linux.CgroupsPath = p
		return nil
	}
}

var sysctlKeyRe = regexp.MustCompile(`^[a-z0-9_]+([./][a-z0-9_-]+)+$`)

// ipcSysctls are the IPC-namespaced sysctls (runc's list).
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// sysctlNamespace names the namespace a sysctl belongs to, or "" when it
// is not namespaced (runc refuses those).
func sysctlNamespace(key string) string {
	switch {
	case strings.HasPrefix(key, "net."):
		return "network"
	case strings.HasPrefix(key, "fs.mqueue."):
		return "ipc"
	case key == "kernel.hostname" || key == "kernel.domainname":
		return "uts"
	}
	for _, k := range ipcSysctls {
		if key == k {
			return "ipc"
		}
	}
	return ""
}

// WithSysctls sets the pod's sysctls on the pause (containers share them
// through its namespaces, as in containerd). Keys may use "/" or "."; each
// must belong to a namespace the pod owns.
func WithSysctls(sysctls map[string]string, opt *runtimeapi.NamespaceOption) SpecOpt {
	return func(s *specs.Spec) error {
		m, err := Sysctls(sysctls, opt)
		if err != nil || len(m) == 0 {
			return err
		}
		ensureLinux(s)
		s.Linux.Sysctl = m
		return nil
	}
}

// Sysctls checks a pod's sysctls and returns them with dotted keys ("/"
// standing for a "." inside a component, as runc takes them); each must
// belong to a namespace the pod owns. A pod without a pause has them
// written into its pinned namespaces instead of the pause's spec.
func Sysctls(sysctls map[string]string, opt *runtimeapi.NamespaceOption) (map[string]string, error) {
	if len(sysctls) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, len(sysctls))
	for _, k := range keys {
		v := sysctls[k]
		field := fmt.Sprintf("sandbox.linux.sysctls[%q]", k)
		if !sysctlKeyRe.MatchString(k) || strings.ContainsAny(v, "\x00\n") {
			return nil, fmt.Errorf("%s is malformed: %w", field, errdefs.ErrInvalidArgument)
		}
		key := k
		if i := strings.IndexAny(k, "./"); k[i] == '/' {
			// The slash form swaps the roles of "/" and "." (an
			// interface name like eno2.100 keeps its dot).
			key = strings.Map(func(r rune) rune {
				switch r {
				case '/':
					return '.'
				case '.':
					return '/'
				}
				return r
			}, k)
		}
		ns := sysctlNamespace(key)
		hostNet := opt.GetNetwork() == runtimeapi.NamespaceMode_NODE
		switch {
		case ns == "":
			return nil, fmt.Errorf("%s is not namespaced: %w", field, errdefs.ErrInvalidArgument)
		case (ns == "network" || ns == "uts") && hostNet:
			return nil, fmt.Errorf("%s needs the pod's own network namespace: %w", field, errdefs.ErrInvalidArgument)
		case ns == "ipc" && opt.GetIpc() == runtimeapi.NamespaceMode_NODE:
			return nil, fmt.Errorf("%s needs the pod's own IPC namespace: %w", field, errdefs.ErrInvalidArgument)
		}
		out[key] = v
	}
	return out, nil
}
