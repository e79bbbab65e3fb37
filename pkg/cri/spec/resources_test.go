package spec

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestWithResources(t *testing.T) {
	noSwapCfg := DefaultConfig()
	noSwapCfg.SwapEqualsMemoryLimit = false
	pidsCfg := DefaultConfig()
	pidsCfg.PidsLimit = 1024
	tests := []struct {
		name    string
		r       *runtimeapi.LinuxContainerResources
		cfg     Config
		check   func(t *testing.T, r *specs.LinuxResources)
		wantErr error
	}{
		{"nil", nil, DefaultConfig(), func(t *testing.T, r *specs.LinuxResources) {
			if r.CPU != nil || r.Memory != nil || r.Pids != nil {
				t.Errorf("resources = %+v", r)
			}
		}, nil},
		{"cpu", &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, CpusetCpus: "0-1,3", CpusetMems: "0"},
			DefaultConfig(), func(t *testing.T, r *specs.LinuxResources) {
				c := r.CPU
				if *c.Shares != 512 || *c.Quota != 50000 || *c.Period != 100000 || c.Cpus != "0-1,3" || c.Mems != "0" {
					t.Errorf("cpu = %+v", c)
				}
			}, nil},
		{"memory swap = limit", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}, DefaultConfig(), func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Limit != 1<<20 || *r.Memory.Swap != 1<<20 {
				t.Errorf("memory = %+v", r.Memory)
			}
		}, nil},
		{"memory without swap policy", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}, noSwapCfg, func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Limit != 1<<20 || r.Memory.Swap != nil {
				t.Errorf("memory = %+v", r.Memory)
			}
		}, nil},
		{"explicit swap", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20, MemorySwapLimitInBytes: 2 << 20}, DefaultConfig(), func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Swap != 2<<20 {
				t.Errorf("memory = %+v", r.Memory)
			}
		}, nil},
		{"hugepages and unified", &runtimeapi.LinuxContainerResources{
			HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}},
			Unified:        map[string]string{"memory.high": "1000000"}}, DefaultConfig(), func(t *testing.T, r *specs.LinuxResources) {
			if len(r.HugepageLimits) != 1 || r.HugepageLimits[0].Pagesize != "2MB" || r.Unified["memory.high"] != "1000000" {
				t.Errorf("resources = %+v", r)
			}
		}, nil},
		{"pids from config", &runtimeapi.LinuxContainerResources{}, pidsCfg, func(t *testing.T, r *specs.LinuxResources) {
			if r.Pids == nil || *r.Pids.Limit != 1024 {
				t.Errorf("pids = %+v", r.Pids)
			}
		}, nil},
		{"negative shares", &runtimeapi.LinuxContainerResources{CpuShares: -1}, DefaultConfig(), nil, errInvalid},
		{"negative quota", &runtimeapi.LinuxContainerResources{CpuQuota: -2}, DefaultConfig(), nil, errInvalid},
		{"negative period", &runtimeapi.LinuxContainerResources{CpuPeriod: -1}, DefaultConfig(), nil, errInvalid},
		{"negative memory", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}, DefaultConfig(), nil, errInvalid},
		{"swap below limit", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 2 << 20, MemorySwapLimitInBytes: 1 << 20}, DefaultConfig(), nil, errInvalid},
		{"bad cpuset", &runtimeapi.LinuxContainerResources{CpusetCpus: "0-"}, DefaultConfig(), nil, errInvalid},
		{"bad page size", &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2M"}}}, DefaultConfig(), nil, errInvalid},
		{"unified path trick", &runtimeapi.LinuxContainerResources{Unified: map[string]string{"../memory.max": "1"}}, DefaultConfig(), nil, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithResources(tc.r, tc.cfg))
			if checkErr(t, err, tc.wantErr) {
				tc.check(t, s.Linux.Resources)
			}
		})
	}
}

func TestWithOOMScoreAdj(t *testing.T) {
	tests := []struct {
		name    string
		v       int64
		floor   int
		want    int
		wantErr error
	}{
		{"no floor", -998, -1000, -998, nil},
		{"clamped to the daemon's", -998, 0, 0, nil},
		{"above floor", 1000, -500, 1000, nil},
		{"equal", -500, -500, -500, nil},
		{"too low", -1001, -1000, 0, errInvalid},
		{"too high", 1001, -1000, 0, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithOOMScoreAdj(tc.v, tc.floor))
			if checkErr(t, err, tc.wantErr) && *s.Process.OOMScoreAdj != tc.want {
				t.Errorf("oom_score_adj = %d, want %d", *s.Process.OOMScoreAdj, tc.want)
			}
		})
	}
}

func TestCgroupsPath(t *testing.T) {
	systemd := DefaultConfig()
	systemd.CgroupDriver = SystemdDriver
	tests := []struct {
		name    string
		cfg     Config
		parent  string
		want    string
		wantErr error
	}{
		{"cgroupfs", DefaultConfig(), "/kubepods/besteffort/pod123", "/kubepods/besteffort/pod123/c1", nil},
		{"cgroupfs default parent", DefaultConfig(), "", "/cri-runtime/c1", nil},
		{"cgroupfs relative", DefaultConfig(), "kubepods", "", errInvalid},
		{"cgroupfs dotdot", DefaultConfig(), "/kubepods/../x", "", errInvalid},
		{"systemd", systemd, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice", "kubepods-besteffort-pod1.slice:cri-runtime:c1", nil},
		{"systemd bare", systemd, "kubepods-pod1.slice", "kubepods-pod1.slice:cri-runtime:c1", nil},
		{"systemd default", systemd, "", "system.slice:cri-runtime:c1", nil},
		{"systemd not a slice", systemd, "/kubepods/pod1", "", errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithCgroupsPath(tc.cfg, tc.parent, "c1"))
			if checkErr(t, err, tc.wantErr) && s.Linux.CgroupsPath != tc.want {
				t.Errorf("cgroupsPath = %q, want %q", s.Linux.CgroupsPath, tc.want)
			}
		})
	}
}

func TestWithSysctls(t *testing.T) {
	node := runtimeapi.NamespaceMode_NODE
	tests := []struct {
		name    string
		sysctls map[string]string
		opt     *runtimeapi.NamespaceOption
		want    map[string]string
		wantErr error
	}{
		{"net and ipc", map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "20"}, nil,
			map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "20"}, nil},
		{"slash form", map[string]string{"net/ipv4/conf/eno2.100/rp_filter": "1"}, nil,
			map[string]string{"net.ipv4.conf.eno2/100.rp_filter": "1"}, nil},
		{"not namespaced", map[string]string{"vm.swappiness": "1"}, nil, nil, errInvalid},
		{"net with host network", map[string]string{"net.ipv4.ip_forward": "1"}, &runtimeapi.NamespaceOption{Network: node}, nil, errInvalid},
		{"ipc with host ipc", map[string]string{"kernel.sem": "1 2 3 4"}, &runtimeapi.NamespaceOption{Ipc: node}, nil, errInvalid},
		{"malformed key", map[string]string{"net..x": "1"}, nil, nil, errInvalid},
		{"newline value", map[string]string{"net.ipv4.ip_forward": "1\n2"}, nil, nil, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithSysctls(tc.sysctls, tc.opt))
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			if len(s.Linux.Sysctl) != len(tc.want) {
				t.Errorf("sysctl = %v, want %v", s.Linux.Sysctl, tc.want)
			}
			for k, v := range tc.want {
				if s.Linux.Sysctl[k] != v {
					t.Errorf("%s = %q, want %q", k, s.Linux.Sysctl[k], v)
				}
			}
		})
	}
}

func TestWithMaskedPaths(t *testing.T) {
	tests := []struct {
		name       string
		sc         *runtimeapi.LinuxContainerSecurityContext
		disable    bool
		wantMasked []string
		wantRO     []string
		wantErr    error
	}{
		{"defaults", nil, false, DefaultMaskedPaths, DefaultReadonlyPaths, nil},
		{"cri lists", &runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{"/proc/x"}, ReadonlyPaths: []string{"/proc/y"}}, false, []string{"/proc/x"}, []string{"/proc/y"}, nil},
		{"unmasked (non-nil empty)", &runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{}, ReadonlyPaths: []string{}}, false, []string{}, []string{}, nil},
		{"disable_proc_mount ignores cri", &runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{}}, true, DefaultMaskedPaths, DefaultReadonlyPaths, nil},
		{"privileged", &runtimeapi.LinuxContainerSecurityContext{Privileged: true, MaskedPaths: []string{"/proc/x"}}, false, nil, nil, nil},
		{"relative", &runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{"proc"}}, false, nil, nil, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithMaskedPaths(tc.sc, tc.disable))
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			if len(s.Linux.MaskedPaths) != len(tc.wantMasked) || len(s.Linux.ReadonlyPaths) != len(tc.wantRO) {
				t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
			}
		})
	}
}

func TestWithHugetlbController(t *testing.T) {
	limits := &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{
		{PageSize: "2MB", Limit: 0}, {PageSize: "1GB", Limit: 0}, // what the kubelet sends
	}}
	strict := DefaultConfig()
	strict.TolerateMissingHugetlbController = false
	tests := []struct {
		name      string
		available bool
		cfg       Config
		want      int
	}{
		{"controller present: kept", true, DefaultConfig(), 2},
		{"controller missing, tolerated (default): dropped", false, DefaultConfig(), 0},
		{"controller missing, not tolerated: kept for runc to refuse", false, strict, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{}
			if err := ApplyOpts(s, WithResources(limits, tc.cfg), WithHugetlbController(tc.available, tc.cfg)); err != nil {
				t.Fatal(err)
			}
			if got := len(s.Linux.Resources.HugepageLimits); got != tc.want {
				t.Fatalf("%d hugepage limits, want %d", got, tc.want)
			}
		})
	}
	// A spec without resources is left alone.
	if _, err := apply(t, WithHugetlbController(false, DefaultConfig())); err != nil {
		t.Fatal(err)
	}
}
