package e2e

// Modern pod features (issue "Modern pod features") through the CRI
// socket: the features Status advertises, user namespaces with idmapped
// rootfs, recursive read-only mounts, and SupplementalGroupsPolicy.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const predefinedGroupImage = "gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest"

// handlerFeatures returns the features Status advertises per handler.
func handlerFeatures(t *testing.T) (map[string]*runtimeapi.RuntimeHandlerFeatures, *runtimeapi.RuntimeFeatures) {
	t.Helper()
	requireEnv(t)
	resp, err := env.rt.Status(context.Background(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	out := map[string]*runtimeapi.RuntimeHandlerFeatures{}
	for _, h := range resp.GetRuntimeHandlers() {
		out[h.GetName()] = h.GetFeatures()
	}
	return out, resp.GetFeatures()
}

// requireFeature skips unless the default handler advertises it: the
// daemon probes the host, and a host without it must not be failed.
func requireFeature(t *testing.T, name string, has func(*runtimeapi.RuntimeHandlerFeatures) bool) {
	t.Helper()
	hs, _ := handlerFeatures(t)
	if !has(hs[""]) {
		t.Skipf("the default runtime handler does not advertise %s on this host", name)
	}
}

// allowUserNamespaces makes the run's temp dir searchable by others: runc
// resolves the rootfs from inside the pod's user namespace, where the
// daemon's root and state dirs (under it) must be traversable (0711, as
// containerd requires); os.MkdirTemp made it 0700. The daemon checks this
// live before it advertises user namespaces.
func allowUserNamespaces(t *testing.T) {
	t.Helper()
	requireEnv(t)
	if err := os.Chmod(env.tmp, 0o711); err != nil {
		t.Fatal(err)
	}
}

func TestStatusAdvertisesModernFeatures(t *testing.T) {
	allowUserNamespaces(t)
	hs, global := handlerFeatures(t)
	if !global.GetSupplementalGroupsPolicy() {
		t.Error("features.supplemental_groups_policy = false")
	}
	def, ok := hs[""]
	if !ok {
		t.Fatalf("no default handler in %v", hs)
	}
	// runc 1.5.3 on this VM's kernel (6.18) has both; the probe must find them.
	if runc, ok := hs["runc"]; ok {
		if !runc.GetRecursiveReadOnlyMounts() || !runc.GetUserNamespaces() {
			t.Errorf("runc features = %v, want recursive read-only mounts and user namespaces", runc)
		}
		if def.GetRecursiveReadOnlyMounts() != runc.GetRecursiveReadOnlyMounts() || def.GetUserNamespaces() != runc.GetUserNamespaces() {
			t.Errorf("default handler %v differs from runc %v", def, runc)
		}
	}
	// crun 1.8.1 has no `features` command: nothing may be assumed.
	if crun, ok := hs["crun"]; ok {
		out, err := exec.Command("crun", "features").Output()
		if err != nil && (crun.GetRecursiveReadOnlyMounts() || crun.GetUserNamespaces()) {
			t.Errorf("crun cannot report its features (%v %s) but is advertised with %v", err, out, crun)
		}
	}
}

func TestUserNamespacePod(t *testing.T) {
	allowUserNamespaces(t)
	requireFeature(t, "user_namespaces", (*runtimeapi.RuntimeHandlerFeatures).GetUserNamespaces)
	pullImage(t, e2eBusybox)
	const hostID, size = 100000, 65536
	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: hostID, Length: size}}
	userns := &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}}

	// A volume the pod's root owns, as the kubelet would prepare it.
	vol := filepath.Join(env.tmp, "userns-vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(vol, hostID, hostID); err != nil {
		t.Fatal(err)
	}
	p := runPod(t, "userns", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: userns}
	})
	cfg := sh("sleep 1000")
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: vol}}
	cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: userns}}
	id := p.container(t, "userns", cfg, true)

	for _, c := range []struct{ cmd, want string }{
		{"cat /proc/self/uid_map", "0 100000 65536"},
		{"cat /proc/self/gid_map", "0 100000 65536"},
		{"id -u", "0"},
		// The image's root-owned files show up as root through the
		// idmapped layers, and the volume as root's.
		{"stat -c %u:%g /bin/busybox /data", "0:0\n0:0"},
		// Root can write the rootfs (the upper dir) and the volume.
		{"echo hi > /rootfile && stat -c %u /rootfile && echo hi > /data/file && echo ok", "0\nok"},
	} {
		out, code := execSync(t, id, "sh", "-c", c.cmd)
		if code != 0 || strings.Join(strings.Fields(out), " ") != strings.Join(strings.Fields(c.want), " ") {
			t.Errorf("%s: exit %d, output %q, want %q", c.cmd, code, out, c.want)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(vol, "file"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != hostID || st.Gid != hostID {
		t.Errorf("the container's file is owned by %d:%d on the host, want %d:%d", st.Uid, st.Gid, hostID, hostID)
	}
	// /sys is the host's, read-only (a fresh sysfs cannot be mounted for
	// a netns the pod's userns does not own).
	if out, code := execSync(t, id, "sh", "-c", "touch /sys/x"); code == 0 {
		t.Errorf("/sys is writable: %s", out)
	}
}

func TestUserNamespaceRefusals(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	two := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 1000}, {ContainerId: 1000, HostId: 300000, Length: 1000}}
	noRoot := []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 100000, Length: 65536}}
	for name, u := range map[string]*runtimeapi.UserNamespace{
		"two ranges":     {Mode: runtimeapi.NamespaceMode_POD, Uids: two, Gids: two},
		"root unmapped":  {Mode: runtimeapi.NamespaceMode_POD, Uids: noRoot, Gids: noRoot},
		"mode CONTAINER": {Mode: runtimeapi.NamespaceMode_CONTAINER},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "userns-bad", Namespace: "e2e", Uid: "userns-bad-" + strings.ReplaceAll(name, " ", "-")},
				Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: u}}},
			}
			resp, err := env.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			if err == nil {
				_, _ = env.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: resp.GetPodSandboxId()})
				_, _ = env.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: resp.GetPodSandboxId()})
				t.Fatal("RunPodSandbox succeeded")
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("RunPodSandbox: %v, want InvalidArgument", err)
			}
		})
	}
}

// rroSource is a host dir with a tmpfs submount, both writable on the host.
func rroSource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(env.tmp, "rro-src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", filepath.Join(src, "sub"), "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(filepath.Join(src, "sub"), syscall.MNT_DETACH) })
	return src
}

func TestRecursiveReadOnlyMount(t *testing.T) {
	requireFeature(t, "recursive_read_only_mounts", (*runtimeapi.RuntimeHandlerFeatures).GetRecursiveReadOnlyMounts)
	pullImage(t, e2eBusybox)
	src := rroSource(t)
	p := runPod(t, "rro")
	cfg := sh("sleep 1000")
	cfg.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/rro", HostPath: src, Readonly: true, RecursiveReadOnly: true},
		{ContainerPath: "/ro", HostPath: src, Readonly: true},
	}
	id := p.container(t, "rro", cfg, true)
	for _, c := range []struct {
		path     string
		writable bool
	}{
		{"/rro/x", false},
		{"/rro/sub/x", false}, // the point of rro: the submount too
		{"/ro/x", false},
		{"/ro/sub/x", true}, // plain ro leaves submounts writable
	} {
		out, code := execSync(t, id, "touch", c.path)
		if (code == 0) != c.writable {
			t.Errorf("touch %s: exit %d %q, want writable=%v", c.path, code, out, c.writable)
		}
		if !c.writable && !strings.Contains(out, "Read-only file system") {
			t.Errorf("touch %s: %q, want \"Read-only file system\"", c.path, out)
		}
	}
}

func TestRecursiveReadOnlyRefusals(t *testing.T) {
	requireFeature(t, "recursive_read_only_mounts", (*runtimeapi.RuntimeHandlerFeatures).GetRecursiveReadOnlyMounts)
	pullImage(t, e2eBusybox)
	src := rroSource(t)
	p := runPod(t, "rro-bad")
	for name, m := range map[string]*runtimeapi.Mount{
		"not readonly":      {ContainerPath: "/rro", HostPath: src, RecursiveReadOnly: true},
		"host to container": {ContainerPath: "/rro", HostPath: src, Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := sh("true")
			cfg.Metadata = &runtimeapi.ContainerMetadata{Name: "rro-bad"}
			cfg.Image = &runtimeapi.ImageSpec{Image: e2eBusybox}
			cfg.Mounts = []*runtimeapi.Mount{m}
			_, err := env.rt.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.cfg})
			if c := status.Code(err); c != codes.InvalidArgument && c != codes.FailedPrecondition {
				t.Errorf("CreateContainer: %v, want InvalidArgument (or FailedPrecondition for the propagation source)", err)
			}
		})
	}
}

func TestSupplementalGroupsPolicy(t *testing.T) {
	pullImage(t, predefinedGroupImage)
	p := runPod(t, "groups")
	for _, c := range []struct {
		policy runtimeapi.SupplementalGroupsPolicy
		want   string
	}{
		// default-user (1000) is a member of group-defined-in-image
		// (50000) in the image's /etc/group; Strict must not add it.
		{runtimeapi.SupplementalGroupsPolicy_Strict, "1000 1234"},
		{runtimeapi.SupplementalGroupsPolicy_Merge, "1000 1234 50000"},
	} {
		t.Run(c.policy.String(), func(t *testing.T) {
			cfg := sh("sleep 1000")
			cfg.Image = &runtimeapi.ImageSpec{Image: predefinedGroupImage}
			cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				SupplementalGroups: []int64{1234}, SupplementalGroupsPolicy: c.policy,
			}}
			id := p.container(t, "groups-"+strings.ToLower(c.policy.String()), cfg, true)
			out, code := execSync(t, id, "id", "-G")
			if got := strings.Join(sortedFields(out), " "); code != 0 || got != c.want {
				t.Errorf("id -G: exit %d %q, want %q", code, out, c.want)
			}
			u := containerStatus(t, id).GetUser().GetLinux()
			var groups []string
			for _, g := range u.GetSupplementalGroups() {
				groups = append(groups, strconv.FormatInt(g, 10))
			}
			if u.GetUid() != 1000 || u.GetGid() != 1000 || strings.Join(sortedFields(strings.Join(groups, " ")), " ") != c.want {
				t.Errorf("ContainerStatus.user = %v, want uid 1000 gid 1000 groups %s", u, c.want)
			}
		})
	}
}

// sortedFields splits s on white space and sorts the ids numerically.
func sortedFields(s string) []string {
	f := strings.Fields(s)
	slices.SortFunc(f, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return f
}
