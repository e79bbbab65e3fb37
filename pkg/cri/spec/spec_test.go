package spec

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func testSandboxConfig() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-1"},
		Hostname: "web-0",
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    "/kubepods/burstable/poduid-1",
			Sysctls:         map[string]string{"net.ipv4.ping_group_range": "0 2147483647"},
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Seccomp: &runtimeapi.SecurityProfile{}},
		},
		Annotations: map[string]string{"kubernetes.io/config.source": "api"},
	}
}

func testContainerConfig() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
		Image:    &runtimeapi.ImageSpec{Image: "docker.io/library/busybox:1.36"},
		Args:     []string{"sleep", "3600"},
		Envs:     []*runtimeapi.KeyValue{{Key: "MODE", Value: []byte("prod")}},
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/dev/termination-log", HostPath: "/var/lib/kubelet/pods/uid-1/containers/app/abc"},
			{ContainerPath: "/etc/hosts", HostPath: "/var/lib/kubelet/pods/uid-1/etc-hosts"},
		},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 102, CpuPeriod: 100000, CpuQuota: 20000,
				MemoryLimitInBytes: 128 << 20, OomScoreAdj: -997},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				RunAsUser:        i64(1000),
				Capabilities:     &runtimeapi.Capability{DropCapabilities: []string{"NET_RAW"}},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				NamespaceOptions: &runtimeapi.NamespaceOption{},
				MaskedPaths:      DefaultMaskedPaths,
				ReadonlyPaths:    DefaultReadonlyPaths,
			},
		},
	}
}

func testInput(t *testing.T) ContainerInput {
	return ContainerInput{
		Sandbox: SandboxInfo{ID: "sb1", Config: testSandboxConfig(), Pid: 4242, NetNSPath: "/run/netns/cni-1",
			HostsPath: "/run/sb1/hosts", ResolvConfPath: "/run/sb1/resolv.conf", HostnamePath: "/run/sb1/hostname", ShmPath: "/run/sb1/shm"},
		Image: ImageConfig{Name: "docker.io/library/busybox:1.36", Entrypoint: []string{"/bin/entry"}, Cmd: []string{"sh"},
			Env: []string{"PATH=/bin:/usr/bin", "MODE=dev"}, WorkingDir: "/srv", User: "app"},
		Rootfs: testRootfs(t),
	}
}

func TestContainerSpec(t *testing.T) {
	res, err := ContainerSpec("c1", testContainerConfig(), testInput(t), WithOOMScoreAdjFloor(-500))
	checkErr(t, err, nil)
	s := res.Spec
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	p := s.Process
	checks := []struct {
		what string
		ok   bool
	}{
		{"args", slices.Equal(p.Args, []string{"/bin/entry", "sleep", "3600"})},
		{"env", slices.Equal(p.Env, []string{"PATH=/bin:/usr/bin", "HOSTNAME=web-0", "MODE=prod"})},
		{"cwd", p.Cwd == "/srv"},
		{"user", p.User.UID == 1000 && p.User.GID == 1000 && slices.Equal(p.User.AdditionalGids, []uint32{1000, 10, 29})},
		{"caps", !slices.Contains(p.Capabilities.Bounding, "CAP_NET_RAW") && slices.Contains(p.Capabilities.Bounding, "CAP_CHOWN")},
		{"seccomp", s.Linux.Seccomp != nil && s.Linux.Seccomp.DefaultAction == specs.ActErrno},
		{"oom clamped", *p.OOMScoreAdj == -500},
		{"cgroups path", s.Linux.CgroupsPath == "/kubepods/burstable/poduid-1/c1"},
		{"memory", *s.Linux.Resources.Memory.Limit == 128<<20},
		{"deny all devices first", !s.Linux.Resources.Devices[0].Allow},
		{"no sysctls on containers", s.Linux.Sysctl == nil},
		{"hosts from kubelet", mountByDst(s, "/etc/hosts").Source == "/var/lib/kubelet/pods/uid-1/etc-hosts"},
		{"resolv.conf", mountByDst(s, "/etc/resolv.conf").Source == "/run/sb1/resolv.conf"},
		{"shm", mountByDst(s, "/dev/shm").Source == "/run/sb1/shm"},
		{"termination log", mountByDst(s, "/dev/termination-log") != nil},
		{"masked", slices.Equal(s.Linux.MaskedPaths, DefaultMaskedPaths)},
		{"netns", nsMap(s)["network"] == "/run/netns/cni-1" && nsMap(s)["pid"] == "/proc/4242/ns/pid"},
		{"annotations", s.Annotations[AnnotationContainerType] == "container" && s.Annotations[AnnotationSandboxID] == "sb1" &&
			s.Annotations["kubernetes.io/config.source"] == "api"},
		{"user for status", res.CRIUser().GetLinux().GetUid() == 1000 && len(res.CRIUser().GetLinux().GetSupplementalGroups()) == 3},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s is wrong in %s", c.what, mustJSON(t, s))
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestContainerSpecErrors(t *testing.T) {
	volCfg := DefaultConfig()
	volCfg.ImageVolumes = ImageVolumesAnonymous
	tests := []struct {
		name      string
		mod       func(*runtimeapi.ContainerConfig, *ContainerInput)
		opts      []Option
		wantErr   error
		wantField string
	}{
		{"privileged in unprivileged pod", func(c *runtimeapi.ContainerConfig, _ *ContainerInput) {
			c.Linux.SecurityContext.Privileged = true
		}, nil, errInvalid, "privileged"},
		{"bad mount", func(c *runtimeapi.ContainerConfig, _ *ContainerInput) {
			c.Mounts[0].HostPath = "rel"
		}, nil, errInvalid, "container.mounts[0].host_path"},
		{"bad cap", func(c *runtimeapi.ContainerConfig, _ *ContainerInput) {
			c.Linux.SecurityContext.Capabilities.AddCapabilities = []string{"X"}
		}, nil, errInvalid, "add_capabilities[0]"},
		{"missing localhost profile", func(c *runtimeapi.ContainerConfig, _ *ContainerInput) {
			c.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/nope.json"}
		}, nil, errInvalid, "localhost_ref"},
		{"negative quota", func(c *runtimeapi.ContainerConfig, _ *ContainerInput) {
			c.Linux.Resources.CpuQuota = -5
		}, nil, errInvalid, "cpu_quota"},
		{"sandbox not running", func(_ *runtimeapi.ContainerConfig, in *ContainerInput) {
			in.Sandbox.Pid = 0
		}, nil, errdefs.ErrFailedPrecondition, "sandbox"},
		{"empty id", nil, nil, errInvalid, "id"},
		{"bad config", nil, []Option{WithConfig(Config{})}, errInvalid, "spec config"},
		{"bad floor", nil, []Option{WithOOMScoreAdjFloor(-2000)}, errInvalid, "floor"},
		{"volumes without dir", func(_ *runtimeapi.ContainerConfig, in *ContainerInput) {
			in.Image.Volumes = []string{"/data"}
		}, []Option{WithConfig(volCfg)}, errInvalid, "volumes dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, in := testContainerConfig(), testInput(t)
			id := "c1"
			if tc.mod != nil {
				tc.mod(cfg, &in)
			} else if tc.opts == nil {
				id = ""
			}
			_, err := ContainerSpec(id, cfg, in, tc.opts...)
			checkErr(t, err, tc.wantErr)
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("error %q does not name %q", err, tc.wantField)
			}
		})
	}
}

func TestContainerSpecPrivilegedAndVolumes(t *testing.T) {
	cfg, in := testContainerConfig(), testInput(t)
	in.Sandbox.Config.Linux.SecurityContext.Privileged = true
	cfg.Linux.SecurityContext.Privileged = true
	cfg.Linux.SecurityContext.ReadonlyRootfs = true
	in.Image.Volumes = []string{"/data", "/dev/termination-log"}
	in.VolumesDir = "/var/lib/cri-runtime/containers/c1/volumes"
	vc := DefaultConfig()
	vc.ImageVolumes = ImageVolumesAnonymous
	res, err := ContainerSpec("c1", cfg, in, WithConfig(vc))
	checkErr(t, err, nil)
	s := res.Spec
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || len(s.Process.Capabilities.Bounding) != len(allCapabilities) {
		t.Errorf("privileged spec keeps restrictions: %s", mustJSON(t, s.Linux))
	}
	if !s.Root.Readonly || !slices.Contains(mountByDst(s, "/etc/resolv.conf").Options, "ro") {
		t.Error("read-only rootfs must make the sandbox files read-only")
	}
	if len(res.Volumes) != 1 || res.Volumes[0].ContainerPath != "/data" || mountByDst(s, "/data").Source != res.Volumes[0].HostPath {
		t.Errorf("volumes = %+v", res.Volumes)
	}
}

func TestSandboxSpec(t *testing.T) {
	cfg := testSandboxConfig()
	rootfs := t.TempDir()
	s, err := SandboxSpec("sb1", cfg, SandboxInput{NetNSPath: "/run/netns/cni-1", Args: []string{"/pause"}, Rootfs: rootfs},
		WithOOMScoreAdjFloor(-900))
	checkErr(t, err, nil)
	ns := nsMap(s)
	checks := []struct {
		what string
		ok   bool
	}{
		{"args", slices.Equal(s.Process.Args, []string{"/pause"})},
		{"readonly rootfs", s.Root.Readonly && s.Root.Path == rootfs},
		{"no new privs", s.Process.NoNewPrivileges},
		{"no caps", len(s.Process.Capabilities.Bounding) == 0},
		{"hostname", s.Hostname == "web-0"},
		{"namespaces", ns["network"] == "/run/netns/cni-1" && ns["ipc"] == "new" && ns["uts"] == "new" && ns["pid"] == "new" && ns["mount"] == "new"},
		{"sysctls", s.Linux.Sysctl["net.ipv4.ping_group_range"] == "0 2147483647"},
		{"oom clamped", *s.Process.OOMScoreAdj == -900},
		{"cgroups path", s.Linux.CgroupsPath == "/kubepods/burstable/poduid-1/sb1"},
		{"seccomp", s.Linux.Seccomp != nil},
		{"annotations", s.Annotations[AnnotationContainerType] == "sandbox" && s.Annotations[AnnotationSandboxUID] == "uid-1"},
		{"cpu shares", *s.Linux.Resources.CPU.Shares == 2},
		{"user root", s.Process.User.UID == 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s is wrong in %s", c.what, mustJSON(t, s))
		}
	}

	host := testSandboxConfig()
	host.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}
	host.Linux.Sysctls = nil
	s, err = SandboxSpec("sb2", host, SandboxInput{Args: []string{"/pause"}})
	checkErr(t, err, nil)
	if ns := nsMap(s); ns["network"] != "" || ns["uts"] != "" || s.Hostname != "" {
		t.Errorf("host network sandbox: namespaces %v hostname %q", ns, s.Hostname)
	}

	host.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
	_, err = SandboxSpec("sb3", host, SandboxInput{Args: []string{"/pause"}})
	checkErr(t, err, errInvalid)
	_, err = SandboxSpec("sb4", cfg, SandboxInput{})
	checkErr(t, err, errInvalid)
}
