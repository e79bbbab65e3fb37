package nri

import (
	"errors"
	"reflect"
	"testing"

	api "github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func baseSpec() *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{Args: []string{"sleep", "1"}, Env: []string{"PATH=/bin", "A=1", "B=2"}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/etc/hosts", Type: "bind", Source: "/h"},
		},
		Annotations: map[string]string{"keep": "1", "drop": "2"},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(100))}, CPU: &specs.LinuxCPU{Shares: ptr(uint64(2))}},
			Sysctl:    map[string]string{"net.a": "1"},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/n"},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func TestApplyAdjustment(t *testing.T) {
	tests := []struct {
		name    string
		adj     func(a *api.ContainerAdjustment)
		check   func(t *testing.T, s *specs.Spec)
		wantErr error
	}{
		{
			name: "env set, replaced and removed",
			adj: func(a *api.ContainerAdjustment) {
				a.AddEnv("C", "3")
				a.AddEnv("A", "9")
				a.RemoveEnv("B")
			},
			check: func(t *testing.T, s *specs.Spec) {
				want := []string{"PATH=/bin", "A=9", "C=3"}
				if !reflect.DeepEqual(s.Process.Env, want) {
					t.Errorf("env = %v, want %v", s.Process.Env, want)
				}
			},
		},
		{
			name: "annotations",
			adj: func(a *api.ContainerAdjustment) {
				a.AddAnnotation("new", "x")
				a.RemoveAnnotation("drop")
			},
			check: func(t *testing.T, s *specs.Spec) {
				want := map[string]string{"keep": "1", "new": "x"}
				if !reflect.DeepEqual(s.Annotations, want) {
					t.Errorf("annotations = %v, want %v", s.Annotations, want)
				}
			},
		},
		{
			name: "mounts added sorted, replaced and removed",
			adj: func(a *api.ContainerAdjustment) {
				a.AddMount(&api.Mount{Destination: "/data/sub", Type: "bind", Source: "/s", Options: []string{"rbind"}})
				a.AddMount(&api.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs"})
				a.RemoveMount("/etc/hosts")
			},
			check: func(t *testing.T, s *specs.Spec) {
				var got []string
				for _, m := range s.Mounts {
					got = append(got, m.Destination)
				}
				want := []string{"/proc", "/data", "/data/sub"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("mounts = %v, want %v", got, want)
				}
			},
		},
		{
			name: "hooks appended",
			adj: func(a *api.ContainerAdjustment) {
				a.AddHooks(&api.Hooks{Prestart: []*api.Hook{{Path: "/bin/hook", Args: []string{"hook"}}}, Poststop: []*api.Hook{{Path: "/bin/stop"}}})
			},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Hooks == nil || len(s.Hooks.Prestart) != 1 || s.Hooks.Prestart[0].Path != "/bin/hook" || len(s.Hooks.Poststop) != 1 {
					t.Errorf("hooks = %+v", s.Hooks)
				}
			},
		},
		{
			name: "resources merged: only what the plugin sets changes",
			adj: func(a *api.ContainerAdjustment) {
				a.SetLinuxCPUQuota(50000)
				a.SetLinuxCPUPeriod(100000)
				a.SetLinuxCPUSetCPUs("0-1")
				a.AddLinuxHugepageLimit("2MB", 1<<21)
				a.AddLinuxUnified("memory.high", "1000")
			},
			check: func(t *testing.T, s *specs.Spec) {
				r := s.Linux.Resources
				if *r.Memory.Limit != 100 || *r.CPU.Shares != 2 {
					t.Errorf("untouched limits changed: %+v %+v", r.Memory, r.CPU)
				}
				if *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || r.CPU.Cpus != "0-1" {
					t.Errorf("cpu = %+v", r.CPU)
				}
				if len(r.HugepageLimits) != 1 || r.Unified["memory.high"] != "1000" {
					t.Errorf("hugepages %v unified %v", r.HugepageLimits, r.Unified)
				}
			},
		},
		{
			name: "device node and its cgroup rule",
			adj: func(a *api.ContainerAdjustment) {
				a.AddDevice(&api.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: api.FileMode(0o666)})
			},
			check: func(t *testing.T, s *specs.Spec) {
				if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/fuse" {
					t.Fatalf("devices = %+v", s.Linux.Devices)
				}
				d := s.Linux.Resources.Devices
				if len(d) != 1 || !d[0].Allow || *d[0].Major != 10 || *d[0].Minor != 229 || d[0].Access != "rwm" {
					t.Errorf("device cgroup = %+v", d)
				}
			},
		},
		{
			name: "args, rlimits, oom score, cgroups path, sysctl, namespaces",
			adj: func(a *api.ContainerAdjustment) {
				a.SetArgs([]string{"echo", "hi"})
				a.AddRlimit("RLIMIT_NOFILE", 10, 5)
				a.SetLinuxOomScoreAdj(ptr(500))
				a.SetLinuxCgroupsPath("/nri/x")
				a.SetLinuxSysctl("net.b", "2")
				a.RemoveNamespace(&api.LinuxNamespace{Type: "network"})
			},
			check: func(t *testing.T, s *specs.Spec) {
				if !reflect.DeepEqual(s.Process.Args, []string{"echo", "hi"}) {
					t.Errorf("args = %v", s.Process.Args)
				}
				if len(s.Process.Rlimits) != 1 || s.Process.Rlimits[0].Hard != 10 || s.Process.Rlimits[0].Soft != 5 {
					t.Errorf("rlimits = %v", s.Process.Rlimits)
				}
				if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 500 || s.Linux.CgroupsPath != "/nri/x" {
					t.Errorf("oom %v cgroups %q", s.Process.OOMScoreAdj, s.Linux.CgroupsPath)
				}
				if s.Linux.Sysctl["net.b"] != "2" || s.Linux.Sysctl["net.a"] != "1" {
					t.Errorf("sysctl = %v", s.Linux.Sysctl)
				}
				if len(s.Linux.Namespaces) != 1 || s.Linux.Namespaces[0].Type != specs.PIDNamespace {
					t.Errorf("namespaces = %v", s.Linux.Namespaces)
				}
			},
		},
		{
			name:    "CDI devices are refused",
			adj:     func(a *api.ContainerAdjustment) { a.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=0"}) },
			wantErr: errdefs.ErrNotImplemented,
		},
		{
			name:    "block I/O classes are refused",
			adj:     func(a *api.ContainerAdjustment) { a.SetLinuxBlockIOClass("slow") },
			wantErr: errdefs.ErrNotImplemented,
		},
		{
			name:  "nothing to do",
			adj:   func(*api.ContainerAdjustment) {},
			check: func(t *testing.T, s *specs.Spec) { assertEqual(t, s, baseSpec()) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			a := &api.ContainerAdjustment{}
			tc.adj(a)
			err := ApplyAdjustment(s, a)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func assertEqual(t *testing.T, got, want *specs.Spec) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spec changed:\n got %+v\nwant %+v", got, want)
	}
}

func TestUpdateResources(t *testing.T) {
	u := &api.ContainerUpdate{ContainerId: "c"}
	u.SetLinuxMemoryLimit(1 << 20)
	u.SetLinuxCPUShares(512)
	res := UpdateResources(u)
	if res.Memory == nil || *res.Memory.Limit != 1<<20 || res.CPU == nil || *res.CPU.Shares != 512 {
		t.Fatalf("resources = %+v", res)
	}
	if res.CPU.Quota != nil || res.Pids != nil {
		t.Errorf("unset values were set: %+v", res)
	}
}
