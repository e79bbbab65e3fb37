package spec

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// nsMap renders namespaces as type → path ("new" for a new one).
func nsMap(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	m := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		p := n.Path
		if p == "" {
			p = "new"
		}
		m[n.Type] = p
	}
	return m
}

func podSandbox(ns *runtimeapi.NamespaceOption) SandboxInfo {
	return SandboxInfo{ID: "sb", Pid: 42, NetNSPath: "/run/netns/cni-1", Config: &runtimeapi.PodSandboxConfig{
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns}},
	}}
}

func TestWithContainerNamespaces(t *testing.T) {
	const (
		pod  = runtimeapi.NamespaceMode_POD
		ctr  = runtimeapi.NamespaceMode_CONTAINER
		node = runtimeapi.NamespaceMode_NODE
		tgt  = runtimeapi.NamespaceMode_TARGET
	)
	userns := &runtimeapi.UserNamespace{Mode: pod,
		Uids: []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}},
		Gids: []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}}}
	tests := []struct {
		name      string
		podNS     *runtimeapi.NamespaceOption
		opt       *runtimeapi.NamespaceOption
		sbPid     int
		netns     string
		targetPID int
		want      map[specs.LinuxNamespaceType]string
		wantErr   error
	}{
		{"pod defaults", nil, nil, 42, "/run/netns/cni-1", 0, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/run/netns/cni-1", "uts": "/proc/42/ns/uts", "ipc": "/proc/42/ns/ipc", "pid": "/proc/42/ns/pid"}, nil},
		{"net from pause", nil, nil, 42, "", 0, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/proc/42/ns/net", "uts": "/proc/42/ns/uts", "ipc": "/proc/42/ns/ipc", "pid": "/proc/42/ns/pid"}, nil},
		{"container pid", nil, &runtimeapi.NamespaceOption{Pid: ctr}, 42, "/n", 0, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/n", "uts": "/proc/42/ns/uts", "ipc": "/proc/42/ns/ipc", "pid": "new"}, nil},
		{"host everything", &runtimeapi.NamespaceOption{Network: node, Ipc: node, Pid: node}, &runtimeapi.NamespaceOption{Network: node, Ipc: node, Pid: node},
			0, "", 0, map[specs.LinuxNamespaceType]string{"mount": "new"}, nil},
		{"pod pid but sandbox on host pid", &runtimeapi.NamespaceOption{Pid: node}, nil, 42, "/n", 0, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/n", "uts": "/proc/42/ns/uts", "ipc": "/proc/42/ns/ipc"}, nil},
		{"target", nil, &runtimeapi.NamespaceOption{Pid: tgt, TargetId: "other"}, 42, "/n", 77, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/n", "uts": "/proc/42/ns/uts", "ipc": "/proc/42/ns/ipc", "pid": "/proc/77/ns/pid"}, nil},
		{"target without id", nil, &runtimeapi.NamespaceOption{Pid: tgt}, 42, "/n", 77, nil, errInvalid},
		{"target not running", nil, &runtimeapi.NamespaceOption{Pid: tgt, TargetId: "other"}, 42, "/n", 0, nil, errdefs.ErrFailedPrecondition},
		{"unknown pid mode", nil, &runtimeapi.NamespaceOption{Pid: 9}, 42, "/n", 0, nil, errInvalid},
		{"pause not running", nil, nil, 0, "/n", 0, nil, errdefs.ErrFailedPrecondition},
		{"relative netns", nil, nil, 42, "netns", 0, nil, errInvalid},
		{"userns pod", nil, &runtimeapi.NamespaceOption{UsernsOptions: userns}, 42, "/n", 0, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/n", "uts": "/proc/42/ns/uts", "ipc": "/proc/42/ns/ipc", "pid": "/proc/42/ns/pid", "user": "/proc/42/ns/user"}, nil},
		{"userns node", nil, &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: node}}, 42, "/n", 0, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/n", "uts": "/proc/42/ns/uts", "ipc": "/proc/42/ns/ipc", "pid": "/proc/42/ns/pid"}, nil},
		{"userns pod without mappings", nil, &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{}}, 42, "/n", 0, nil, errInvalid},
		{"userns container mode", nil, &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: ctr}}, 42, "/n", 0, nil, errInvalid},
		{"no pause: pinned", &runtimeapi.NamespaceOption{Pid: ctr}, &runtimeapi.NamespaceOption{Pid: ctr}, 0, "/n", 0, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/n", "uts": "/run/ns/p/uts", "ipc": "/run/ns/p/ipc", "pid": "new"}, nil},
		{"no pause: host pid", &runtimeapi.NamespaceOption{Pid: node}, &runtimeapi.NamespaceOption{Pid: node}, 0, "/n", 0, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/n", "uts": "/run/ns/p/uts", "ipc": "/run/ns/p/ipc"}, nil},
		{"no pause: host net", &runtimeapi.NamespaceOption{Pid: ctr, Network: node}, &runtimeapi.NamespaceOption{Pid: ctr, Network: node}, 0, "", 0, map[specs.LinuxNamespaceType]string{
			"mount": "new", "ipc": "/run/ns/p/ipc", "pid": "new"}, nil},
		{"no pause: target", &runtimeapi.NamespaceOption{Pid: ctr}, &runtimeapi.NamespaceOption{Pid: tgt, TargetId: "other"}, 0, "/n", 77, map[specs.LinuxNamespaceType]string{
			"mount": "new", "network": "/n", "uts": "/run/ns/p/uts", "ipc": "/run/ns/p/ipc", "pid": "/proc/77/ns/pid"}, nil},
		{"no pause: pod pid asked", &runtimeapi.NamespaceOption{Pid: ctr}, nil, 0, "/n", 0, nil, errdefs.ErrFailedPrecondition},
		{"no pause: pod userns asked", &runtimeapi.NamespaceOption{Pid: ctr}, &runtimeapi.NamespaceOption{Pid: ctr, UsernsOptions: userns}, 0, "/n", 0, nil, errdefs.ErrFailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := podSandbox(tc.podNS)
			sb.Pid, sb.NetNSPath = tc.sbPid, tc.netns
			if strings.HasPrefix(tc.name, "no pause") { // IPC and UTS are pinned files
				sb.IPCNSPath, sb.UTSNSPath = "/run/ns/p/ipc", "/run/ns/p/uts"
			}
			s, err := apply(t, WithContainerNamespaces(tc.opt, sb, tc.targetPID))
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			got := nsMap(s)
			if len(got) != len(tc.want) {
				t.Errorf("namespaces = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			if tc.opt.GetUsernsOptions() != nil && tc.opt.GetUsernsOptions().GetMode() == runtimeapi.NamespaceMode_POD && len(s.Linux.UIDMappings) != 1 {
				t.Errorf("uid mappings = %+v", s.Linux.UIDMappings)
			}
		})
	}
}

func TestWithContainerNamespacesRelativePin(t *testing.T) {
	sb := podSandbox(&runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER})
	sb.Pid, sb.IPCNSPath, sb.UTSNSPath = 0, "ns/ipc", "/run/ns/p/uts"
	_, err := apply(t, WithContainerNamespaces(&runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}, sb, 0))
	checkErr(t, err, errInvalid)
}

func TestNeedsPause(t *testing.T) {
	userns := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}
	for _, tc := range []struct {
		name string
		ns   *runtimeapi.NamespaceOption
		want bool
	}{
		{"CRI default: pod pid", nil, true},
		{"pod pid", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}, true},
		{"container pid (the kubelet's default)", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}, false},
		{"host pid", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}, false},
		{"host everything", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE, Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE}, false},
		{"user namespace", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER, UsernsOptions: userns}, true},
		{"host user namespace", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER, UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}, false},
	} {
		cfg := &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: tc.ns}}}
		if got := NeedsPause(cfg); got != tc.want {
			t.Errorf("%s: NeedsPause = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestWithSandboxNamespaces(t *testing.T) {
	node := runtimeapi.NamespaceMode_NODE
	tests := []struct {
		name         string
		opt          *runtimeapi.NamespaceOption
		netns        string
		want         []specs.LinuxNamespaceType
		wantHostname string
		wantErr      error
	}{
		{"pod", nil, "/run/netns/x", []specs.LinuxNamespaceType{"mount", "network", "uts", "ipc", "pid"}, "h", nil},
		{"host net", &runtimeapi.NamespaceOption{Network: node}, "", []specs.LinuxNamespaceType{"mount", "ipc", "pid"}, "", nil},
		{"host all", &runtimeapi.NamespaceOption{Network: node, Ipc: node, Pid: node}, "", []specs.LinuxNamespaceType{"mount"}, "", nil},
		{"target pid", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET}, "", nil, "", errInvalid},
		{"userns", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{
			Uids: []*runtimeapi.IDMapping{{HostId: 1 << 16, Length: 1 << 16}}, Gids: []*runtimeapi.IDMapping{{HostId: 1 << 16, Length: 1 << 16}}}},
			"", []specs.LinuxNamespaceType{"mount", "network", "uts", "ipc", "pid", "user"}, "h", nil},
		{"mapping overflow", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{
			Uids: []*runtimeapi.IDMapping{{HostId: 1<<31 + 1, Length: 1 << 31}}, Gids: []*runtimeapi.IDMapping{{HostId: 1 << 31, Length: 1 << 31}}}},
			"", nil, "", errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithSandboxNamespaces(tc.opt, tc.netns, "h"))
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			var got []specs.LinuxNamespaceType
			for _, n := range s.Linux.Namespaces {
				got = append(got, n.Type)
				if n.Type == "network" && n.Path != tc.netns || n.Type != "network" && n.Path != "" {
					t.Errorf("%s path = %q", n.Type, n.Path)
				}
			}
			if !slices.Equal(got, tc.want) || s.Hostname != tc.wantHostname {
				t.Errorf("namespaces %v hostname %q, want %v %q", got, s.Hostname, tc.want, tc.wantHostname)
			}
		})
	}
}

func TestPodUserNamespaceMappings(t *testing.T) {
	one := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	tests := []struct {
		name       string
		uids, gids []*runtimeapi.IDMapping
		wantErr    error
	}{
		{"one range from 0", one, one, nil},
		{"two ranges", append(slices.Clone(one), &runtimeapi.IDMapping{ContainerId: 65536, HostId: 300000, Length: 10}), one, errInvalid},
		{"root not mapped", []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 1000, Length: 100000}}, one, errInvalid},
		{"no gids", one, nil, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: tc.uids, Gids: tc.gids}},
			}}}
			s, err := SandboxSpec("sb", cfg, SandboxInput{Args: []string{"/pause"}, Rootfs: t.TempDir(), NetNSPath: "/run/netns/x"})
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID != 100000 {
				t.Errorf("uid mappings = %+v", s.Linux.UIDMappings)
			}
			sys := mountByDst(s, "/sys")
			if sys.Type != "bind" || sys.Source != "/sys" || !slices.Contains(sys.Options, "ro") || !slices.Contains(sys.Options, "rbind") {
				t.Errorf("/sys in a user namespace = %+v, want a read-only rbind of the host's", sys)
			}
		})
	}
}

func TestNoUsernsKeepsSysfs(t *testing.T) {
	s, err := SandboxSpec("sb", &runtimeapi.PodSandboxConfig{}, SandboxInput{Args: []string{"/pause"}, Rootfs: t.TempDir()})
	checkErr(t, err, nil)
	if m := mountByDst(s, "/sys"); m.Type != "sysfs" {
		t.Errorf("/sys = %+v, want a fresh sysfs", m)
	}
}
