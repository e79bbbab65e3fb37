package spec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCRIMount(t *testing.T) {
	const (
		private = runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		slave   = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		shared  = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
	)
	tests := []struct {
		name     string
		m        *runtimeapi.Mount
		wantDst  string
		wantOpts []string
		wantErr  error
	}{
		{"rw private", &runtimeapi.Mount{ContainerPath: "/data/", HostPath: "/srv/d"}, "/data", []string{"rbind", "rprivate", "rw"}, nil},
		{"ro", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv", Readonly: true}, "/d", []string{"rbind", "rprivate", "ro"}, nil},
		{"rslave", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv", Propagation: slave}, "/d", []string{"rbind", "rslave", "rw"}, nil},
		{"rshared", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv", Propagation: shared}, "/d", []string{"rbind", "rshared", "rw"}, nil},
		{"rro", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv", Readonly: true, RecursiveReadOnly: true}, "/d", []string{"rbind", "rprivate", "ro", "rro"}, nil},
		{"selinux ignored", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv", SelinuxRelabel: true}, "/d", []string{"rbind", "rprivate", "rw"}, nil},
		{"rro without ro", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv", RecursiveReadOnly: true}, "", nil, errInvalid},
		{"rro with rslave", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv", Readonly: true, RecursiveReadOnly: true, Propagation: slave}, "", nil, errInvalid},
		{"relative container path", &runtimeapi.Mount{ContainerPath: "d", HostPath: "/srv"}, "", nil, errInvalid},
		{"dotdot container path", &runtimeapi.Mount{ContainerPath: "/a/../etc", HostPath: "/srv"}, "", nil, errInvalid},
		{"relative host path", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "srv"}, "", nil, errInvalid},
		{"dotdot host path", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv/../etc"}, "", nil, errInvalid},
		{"empty host path", &runtimeapi.Mount{ContainerPath: "/d"}, "", nil, errInvalid},
		{"proc self", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/proc/self/root"}, "", nil, errInvalid},
		{"unknown propagation", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv", Propagation: 9}, "", nil, errInvalid},
		{"uid mappings without gid", &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/srv",
			UidMappings: []*runtimeapi.IDMapping{{HostId: 1000, Length: 1}}}, "", nil, errInvalid},
	}
	_ = private
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := criMount(0, tc.m)
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			if m.Destination != tc.wantDst || m.Type != "bind" || !slices.Equal(m.Options, tc.wantOpts) {
				t.Errorf("mount = %+v, want %s %q", m, tc.wantDst, tc.wantOpts)
			}
		})
	}
}

func mountByDst(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestWithMountsOverridesAndOrder(t *testing.T) {
	s := &specs.Spec{}
	sb := SandboxInfo{HostsPath: "/sb/hosts", ResolvConfPath: "/sb/resolv.conf", HostnamePath: "/sb/hostname", ShmPath: "/sb/shm"}
	err := ApplyOpts(s, WithDefaultMounts(sb.ShmPath, "64m"), WithSandboxFileMounts(sb, true), WithMounts([]*runtimeapi.Mount{
		{ContainerPath: "/a/b/c", HostPath: "/h/c"},
		{ContainerPath: "/etc/hosts", HostPath: "/kubelet/hosts"},
		{ContainerPath: "/a", HostPath: "/h/a", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	}))
	checkErr(t, err, nil)
	if m := mountByDst(s, "/etc/hosts"); m == nil || m.Source != "/kubelet/hosts" {
		t.Errorf("/etc/hosts = %+v, want the CRI mount", m)
	}
	if m := mountByDst(s, "/etc/resolv.conf"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("/etc/resolv.conf = %+v, want a read-only bind", m)
	}
	if m := mountByDst(s, "/dev/shm"); m == nil || m.Source != "/sb/shm" || m.Type != "bind" {
		t.Errorf("/dev/shm = %+v", m)
	}
	var order []string
	for _, m := range s.Mounts {
		if m.Destination == "/a" || m.Destination == "/a/b/c" {
			order = append(order, m.Destination)
		}
	}
	if !slices.Equal(order, []string{"/a", "/a/b/c"}) {
		t.Errorf("order = %q, want parent first", order)
	}
	if s.Linux.RootfsPropagation != "rslave" {
		t.Errorf("rootfs propagation = %q", s.Linux.RootfsPropagation)
	}

	s = &specs.Spec{}
	checkErr(t, ApplyOpts(s, WithDefaultMounts("", "64m"), WithMounts([]*runtimeapi.Mount{{ContainerPath: "/dev", HostPath: "/dev"}})), nil)
	for _, m := range s.Mounts {
		if len(m.Destination) > 5 && m.Destination[:5] == "/dev/" {
			t.Errorf("default %s kept under a CRI /dev", m.Destination)
		}
	}
}

func TestDefaultMounts(t *testing.T) {
	s, err := apply(t, WithDefaultMounts("", "64m"))
	checkErr(t, err, nil)
	for _, dst := range []string{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm"} {
		if mountByDst(s, dst) == nil {
			t.Errorf("missing %s", dst)
		}
	}
	if m := mountByDst(s, "/sys"); !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys not read-only: %q", m.Options)
	}
	if m := mountByDst(s, "/dev/shm"); m.Type != "tmpfs" || !slices.Contains(m.Options, "size=64m") {
		t.Errorf("/dev/shm = %+v", m)
	}
	_, err = apply(t, WithDefaultMounts("relative", ""))
	checkErr(t, err, errInvalid)
}

func TestImageVolumes(t *testing.T) {
	mounts := []*runtimeapi.Mount{{ContainerPath: "/taken/"}}
	vols, err := imageVolumes(ImageVolumesAnonymous, []string{"/data", "taken", "/data/", "/logs"}, "/vol", mounts)
	checkErr(t, err, nil)
	if len(vols) != 2 || vols[0].ContainerPath != "/data" || vols[1].ContainerPath != "/logs" || vols[0].HostPath == vols[1].HostPath {
		t.Errorf("volumes = %+v", vols)
	}
	if vols, _ := imageVolumes(ImageVolumesIgnore, []string{"/data"}, "/vol", nil); vols != nil {
		t.Errorf("ignore policy gave %+v", vols)
	}
	_, err = imageVolumes(ImageVolumesAnonymous, []string{"/data"}, "", nil)
	checkErr(t, err, errInvalid)
	_, err = imageVolumes(ImageVolumesAnonymous, []string{"/"}, "/vol", nil)
	checkErr(t, err, errInvalid)
}
