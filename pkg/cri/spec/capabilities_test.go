package spec

import (
	"fmt"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestWithCapabilities(t *testing.T) {
	defaults := []string{"CHOWN", "CAP_KILL", "net_raw"}
	tests := []struct {
		name        string
		c           *runtimeapi.Capability
		want        []string // bounding == effective == permitted
		wantAmbient []string
		wantErr     error
	}{
		{"defaults", nil, []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"}, nil, nil},
		{"add any case and prefix", &runtimeapi.Capability{AddCapabilities: []string{"sys_admin", "CAP_NET_ADMIN", "Sys_Time"}},
			[]string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_SYS_TIME"}, nil, nil},
		{"drop", &runtimeapi.Capability{DropCapabilities: []string{"kill", "CAP_NET_RAW"}}, []string{"CAP_CHOWN"}, nil, nil},
		{"drop wins over add", &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}, DropCapabilities: []string{"SYS_ADMIN"}},
			[]string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"}, nil, nil},
		{"drop ALL then add", &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_BIND_SERVICE"}},
			[]string{"CAP_NET_BIND_SERVICE"}, nil, nil},
		{"drop all lower case", &runtimeapi.Capability{DropCapabilities: []string{"all"}}, []string{}, nil, nil},
		{"add ALL minus one", &runtimeapi.Capability{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"SYS_ADMIN"}},
			slices.DeleteFunc(AllCapabilities(), func(c string) bool { return c == "CAP_SYS_ADMIN" }), nil, nil},
		{"add ALL and drop ALL", &runtimeapi.Capability{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"ALL"}}, []string{}, nil, nil},
		{"ambient", &runtimeapi.Capability{AddCapabilities: []string{"NET_BIND_SERVICE"}, AddAmbientCapabilities: []string{"net_bind_service"}},
			[]string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}, []string{"CAP_NET_BIND_SERVICE"}, nil},
		{"ambient not bounded", &runtimeapi.Capability{AddAmbientCapabilities: []string{"SYS_ADMIN"}}, nil, nil, errInvalid},
		{"unknown add", &runtimeapi.Capability{AddCapabilities: []string{"FLY"}}, nil, nil, errInvalid},
		{"unknown drop", &runtimeapi.Capability{DropCapabilities: []string{"CAP_"}}, nil, nil, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithCapabilities(defaults, tc.c))
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			c := s.Process.Capabilities
			for name, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s = %q, want %q", name, got, tc.want)
				}
			}
			if !slices.Equal(c.Ambient, tc.wantAmbient) || !slices.Equal(c.Inheritable, tc.wantAmbient) {
				t.Errorf("ambient %q inheritable %q, want %q", c.Ambient, c.Inheritable, tc.wantAmbient)
			}
		})
	}
}

func TestWithPrivileged(t *testing.T) {
	s := &specs.Spec{}
	err := ApplyOpts(s, WithDefaultMounts("", ""), WithMaskedPaths(nil, false), WithPrivileged(true, "/dev"))
	checkErr(t, err, nil)
	if !slices.Equal(s.Process.Capabilities.Bounding, AllCapabilities()) {
		t.Errorf("bounding = %q", s.Process.Capabilities.Bounding)
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for _, dst := range []string{"/sys", "/sys/fs/cgroup"} {
		if m := mountByDst(s, dst); slices.Contains(m.Options, "ro") {
			t.Errorf("%s still read-only", dst)
		}
	}
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/null" }) {
		t.Errorf("host /dev/null missing from %d devices", len(s.Linux.Devices))
	}
	if slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/console" }) {
		t.Error("/dev/console must be left to runc")
	}
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Access != "rwm" {
		t.Errorf("device cgroup = %+v", r)
	}

	s = &specs.Spec{}
	checkErr(t, WithPrivileged(false, "/dev")(s), nil)
	if len(s.Linux.Devices) != 0 {
		t.Errorf("privileged_without_host_devices gave %d devices", len(s.Linux.Devices))
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr error
	}{
		{"default", func(*Config) {}, nil},
		{"systemd", func(c *Config) { c.CgroupDriver = SystemdDriver; c.DefaultCgroupParent = "kubepods.slice" }, nil},
		{"bad cap", func(c *Config) { c.DefaultCapabilities = []string{"NOPE"} }, errInvalid},
		{"bad unset seccomp", func(c *Config) { c.UnsetSeccompProfile = "maybe" }, errInvalid},
		{"relative profile", func(c *Config) { c.DefaultSeccompProfilePath = "p.json" }, errInvalid},
		{"bad volumes", func(c *Config) { c.ImageVolumes = "copy" }, errInvalid},
		{"bad driver", func(c *Config) { c.CgroupDriver = "lxc" }, errInvalid},
		{"bad systemd parent", func(c *Config) { c.CgroupDriver = SystemdDriver; c.DefaultCgroupParent = "/kubepods" }, errInvalid},
		{"relative cgroupfs parent", func(c *Config) { c.DefaultCgroupParent = "kubepods" }, errInvalid},
		{"negative pids", func(c *Config) { c.PidsLimit = -1 }, errInvalid},
		{"sandbox oom", func(c *Config) { c.SandboxOOMScoreAdj = -1001 }, errInvalid},
		{"shm size", func(c *Config) { c.ShmSize = "64m,exec" }, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			checkErr(t, c.Validate(), tc.wantErr)
		})
	}
}

func TestHeldCapabilities(t *testing.T) {
	const status = "Name:\tcri-runtime\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t%s\nCapBnd:\t%s\nCapAmb:\t0000000000000000\n"
	withoutSysResource := slices.DeleteFunc(AllCapabilities(), func(c string) bool { return c == "CAP_SYS_RESOURCE" })
	tests := []struct {
		name    string
		status  string
		want    []string
		wantErr error
	}{
		{"all", fmt.Sprintf(status, "000001ffffffffff", "000001ffffffffff"), AllCapabilities(), nil},
		{"no CAP_SYS_RESOURCE (this VM)", fmt.Sprintf(status, "000001fffeffffff", "000001fffeffffff"), withoutSysResource, nil},
		{"unknown high bits ignored", fmt.Sprintf(status, "ffffffffffffffff", "ffffffffffffffff"), AllCapabilities(), nil},
		{"intersection of bounding and effective", fmt.Sprintf(status, "0000000000000003", "0000000000000006"), []string{"CAP_DAC_OVERRIDE"}, nil},
		{"none", fmt.Sprintf(status, "0000000000000000", "000001ffffffffff"), []string{}, nil},
		{"missing CapBnd", "CapEff:\t000001ffffffffff\n", nil, errInvalid},
		{"garbage", fmt.Sprintf(status, "zz", "000001ffffffffff"), nil, errInvalid},
		{"empty", "", nil, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := HeldCapabilities(tc.status)
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCapabilityBound(t *testing.T) {
	held := slices.DeleteFunc(AllCapabilities(), func(c string) bool { return c == "CAP_SYS_RESOURCE" })
	privSandbox := &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}}}
	tests := []struct {
		name    string
		sc      *runtimeapi.LinuxContainerSecurityContext
		want    []string
		wantErr error
	}{
		{"privileged gets what is held", &runtimeapi.LinuxContainerSecurityContext{Privileged: true}, held, nil},
		{"add ALL gets what is held", &runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}}}, held, nil},
		{"add ALL drop one", &runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"CHOWN"}}},
			slices.DeleteFunc(slices.Clone(held), func(c string) bool { return c == "CAP_CHOWN" }), nil},
		{"named held cap", &runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}}}, nil, nil},
		{"named cap not held", &runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"SYS_RESOURCE"}}}, nil, errdefs.ErrFailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := ContainerInput{Sandbox: SandboxInfo{ID: "sb", Config: privSandbox, Pid: 1}, Rootfs: t.TempDir()}
			cfg := &runtimeapi.ContainerConfig{Command: []string{"sh"}, Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: tc.sc}}
			noDevs := DefaultConfig()
			noDevs.PrivilegedWithoutHostDevices = true
			res, err := ContainerSpec("c1", cfg, in, WithCapabilityBound(held), WithConfig(noDevs))
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			c := res.Spec.Process.Capabilities
			if slices.Contains(c.Bounding, "CAP_SYS_RESOURCE") || slices.Contains(c.Effective, "CAP_SYS_RESOURCE") || slices.Contains(c.Permitted, "CAP_SYS_RESOURCE") {
				t.Errorf("CAP_SYS_RESOURCE granted: %+v", c)
			}
			if tc.want != nil && !slices.Equal(c.Bounding, tc.want) {
				t.Errorf("bounding = %q, want %q", c.Bounding, tc.want)
			}
		})
	}
}
