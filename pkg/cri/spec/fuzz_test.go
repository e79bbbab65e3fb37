package spec

import (
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// FuzzContainerSpec feeds random container configs (as protobuf bytes,
// so the fuzzer explores real message shapes) with a random image user
// and asserts that ContainerSpec never panics and that every error it
// returns has an errdefs class. The seeds run in plain `go test`.
func FuzzContainerSpec(f *testing.F) {
	seeds := []*runtimeapi.ContainerConfig{
		{},
		testContainerConfig(),
		{Command: []string{"/bin/sh"}, Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			Privileged: true, SeccompProfilePath: "localhost/../../etc/passwd", RunAsUsername: "app",
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "x",
				UsernsOptions: &runtimeapi.UserNamespace{Uids: []*runtimeapi.IDMapping{{Length: 1}}}},
		}}},
		{Args: []string{"x"}, Devices: []*runtimeapi.Device{{ContainerPath: "/dev/n", HostPath: "/dev/null", Permissions: "rw"}},
			Mounts: []*runtimeapi.Mount{{ContainerPath: "/a", HostPath: "/b", Readonly: true, RecursiveReadOnly: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}},
			Linux: &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
				OomScoreAdj: -999, CpusetCpus: "0-3", HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "1GB"}},
				Unified: map[string]string{"pids.max": "10"}}}},
	}
	for i, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []string{"", "app", "1000:1000", "ghost:x"}[i%4], i%2 == 0)
	}
	rootfs := testRootfs(f)
	f.Fuzz(func(t *testing.T, data []byte, imageUser string, privilegedPod bool) {
		cfg := &runtimeapi.ContainerConfig{}
		if err := proto.Unmarshal(data, cfg); err != nil {
			t.Skip()
		}
		sbCfg := testSandboxConfig()
		sbCfg.Linux.SecurityContext.Privileged = privilegedPod
		in := ContainerInput{
			Sandbox: SandboxInfo{ID: "sb", Config: sbCfg, Pid: 1, NetNSPath: "/run/netns/x", ShmPath: "/dev/shm"},
			Image:   ImageConfig{User: imageUser, Cmd: []string{"/bin/true"}, Volumes: []string{"/data"}},
			Rootfs:  rootfs, TargetPID: 1, VolumesDir: "/var/lib/x/volumes",
		}
		vc := DefaultConfig()
		vc.ImageVolumes = ImageVolumesAnonymous
		res, err := ContainerSpec("c1", cfg, in, WithConfig(vc), WithOOMScoreAdjFloor(-500))
		if err != nil {
			if errdefs.ClassName(err) == "" {
				t.Fatalf("error without a class: %v", err)
			}
			return
		}
		if res.Spec.Process == nil || len(res.Spec.Process.Args) == 0 || *res.Spec.Process.OOMScoreAdj < -500 {
			t.Fatalf("incomplete spec: %+v", res.Spec.Process)
		}
	})
}
