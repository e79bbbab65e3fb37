package e2e

// Host users and container files (docs/security.md): what a container's
// root writes (its rootfs, its pod's /dev/shm and /etc/hosts) and what an
// image ships (an image volume) must be out of reach of every host user
// but root, even with --state and --root at 0755 and every path in
// /proc/self/mountinfo. A host user running a set-uid binary a container
// planted would be root on the host.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const nobody = 65534

// openDaemonDirs makes --state and --root 0755 for the test, as systemd's
// RuntimeDirectory= and a default umask would: the daemon's own dirs must
// keep host users out regardless.
func openDaemonDirs(t *testing.T) {
	t.Helper()
	for _, d := range []string{env.state, env.root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, d := range []string{env.state, env.root} {
			_ = os.Chmod(d, 0o711)
		}
	})
}

// asNobody runs argv as uid/gid 65534 with no supplementary groups.
func asNobody(argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// requireLockedOut checks that a host user can neither run nor read the
// file at path (which root sees, and which must be there: the test would
// prove nothing otherwise). wantSetuid: the container made it set-uid.
func requireLockedOut(t *testing.T, what, path string, exe, wantSetuid bool) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: root cannot see %s: %v", what, path, err)
		return
	}
	if wantSetuid && st.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("%s: %s is %v, the container's chmod 4755 did not take", what, path, st.Mode())
	}
	if exe {
		out, err := asNobody(path, "true")
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: a host user ran %s: err %v, output %.80q; want EACCES", what, path, err, out)
		}
	}
	if out, err := asNobody("cat", path); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("%s: a host user read %s: err %v, output %.80q; want Permission denied", what, path, err, out)
	}
}

// requireDirMode checks a per-object dir: root-owned, 0700, or 0710 to gid.
func requireDirMode(t *testing.T, dir string, gid uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		t.Errorf("%s: %v", dir, err)
		return
	}
	want := uint32(0o700)
	if gid != 0 {
		want = 0o710
	}
	if st.Mode&0o7777 != want || st.Uid != 0 || st.Gid != gid {
		t.Errorf("%s: mode %#o, owner %d:%d; want %#o, 0:%d", dir, st.Mode&0o7777, st.Uid, st.Gid, want, gid)
	}
}

// plantedPod runs a pod (in its own user namespace when userns is set)
// with a container that has an image volume, and plants set-uid copies of
// busybox in the container's / and /dev/shm.
func plantedPod(t *testing.T, name string, userns *runtimeapi.NamespaceOption) (*pod, string) {
	t.Helper()
	p := runPod(t, name, func(c *runtimeapi.PodSandboxConfig) {
		if userns != nil {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: userns}
		}
	})
	cfg := sh("sleep 100000")
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt/vol", Readonly: true, Image: &runtimeapi.ImageSpec{Image: volumeImage}}}
	if userns != nil {
		cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: userns}}
	}
	id := p.container(t, name, cfg, true)
	plant := "cat /bin/busybox > /planted && chmod 4755 /planted && " +
		"cat /bin/busybox > /dev/shm/planted && chmod 4755 /dev/shm/planted && id -u"
	if out, code := execSync(t, id, "sh", "-c", plant); code != 0 || strings.TrimSpace(out) != "0" {
		t.Fatalf("planting as the container's root: exit %d, %q", code, out)
	}
	return p, id
}

// checkLockedOut finds the container's and pod's mounts in mountinfo and
// the writable layer by the known layout, and checks no host user gets in.
func checkLockedOut(t *testing.T, p *pod, id string, gid uint32) {
	t.Helper()
	var rootfs, view, shm string
	for _, m := range mountsUnder(env.state, id, p.id) {
		switch {
		case strings.Contains(m, "/imagemounts/"+id+"/"):
			view = m
		case strings.Contains(m+"/", "/rootfs/"+id+"/"):
			rootfs = m
		case strings.Contains(m, "/sandboxes/"+p.id+"/"):
			shm = m
		}
	}
	if rootfs == "" || view == "" || shm == "" {
		t.Fatalf("mounts of container %s and pod %s in mountinfo: rootfs %q, image volume %q, shm %q", id, p.id, rootfs, view, shm)
	}
	requireLockedOut(t, "rootfs", filepath.Join(rootfs, "planted"), true, true)
	requireLockedOut(t, "writable layer", filepath.Join(env.root, "containers", id, "upper", "planted"), true, true)
	requireLockedOut(t, "pod /dev/shm", filepath.Join(shm, "planted"), true, true)
	requireLockedOut(t, "pod hosts", filepath.Join(env.state, "sandboxes", p.id, "hosts"), false, false)
	requireLockedOut(t, "image volume", filepath.Join(view, "bin", "busybox"), true, false)
	requireDirMode(t, filepath.Join(env.state, "rootfs", id), gid)
	requireDirMode(t, filepath.Join(env.state, "imagemounts", id), gid)
	requireDirMode(t, filepath.Join(env.state, "sandboxes", p.id), gid)
}

func TestHostUsersCannotReachContainerFiles(t *testing.T) {
	requireEnv(t)
	pullImage(t, e2eBusybox)
	pullImage(t, volumeImage)
	openDaemonDirs(t)

	t.Run("plain pod", func(t *testing.T) {
		p, id := plantedPod(t, "hostfs-plain", nil)
		checkLockedOut(t, p, id, 0)
	})
	t.Run("user-namespaced pod", func(t *testing.T) {
		// The test's tmp dir must let others traverse it (the daemon
		// checks it before it advertises user namespaces); --state and
		// --root are 0755 already.
		allowUserNamespaces(t)
		requireFeature(t, "user_namespaces", (*runtimeapi.RuntimeHandlerFeatures).GetUserNamespaces)
		const hostID, size = 300000, 65536
		mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: hostID, Length: size}}
		userns := &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}}
		p, id := plantedPod(t, "hostfs-userns", userns)
		checkLockedOut(t, p, id, hostID)
		// The pod's root gets through its own dirs: it runs, reads its
		// image volume, and its /dev/shm is shared with a second container.
		if out, code := execSync(t, id, "sh", "-c", "/mnt/vol/bin/busybox true && ls /dev/shm/planted"); code != 0 {
			t.Errorf("the container's own files from inside: exit %d, %q", code, out)
		}
	})
}

// TestHostDirsFixedAtStart: a daemon starting over dirs an older one left
// open (0755 parents and per-object dirs, the rootfs mounted on the
// container's dir itself, where its "/" is what host users see) puts them
// in the private layout before it serves, and the running container goes
// on unharmed.
func TestHostDirsFixedAtStart(t *testing.T) {
	requireEnv(t)
	pullImage(t, e2eBusybox)
	pullImage(t, volumeImage)
	openDaemonDirs(t)
	p, id := plantedPod(t, "hostfs-upgrade", nil)
	ctrDir := filepath.Join(env.state, "rootfs", id)
	// Nothing here may stop the test before the daemon is back: what goes
	// wrong is kept and failed on after the restart.
	var setupErr error
	restartDaemonWhileDown(t, syscall.SIGTERM, func() {
		if setupErr = oldLayout(ctrDir); setupErr != nil {
			return
		}
		for _, d := range []string{
			filepath.Join(env.state, "rootfs"), filepath.Join(env.state, "imagemounts"), filepath.Join(env.state, "sandboxes"),
			filepath.Join(env.state, "imagemounts", id), filepath.Join(env.state, "sandboxes", p.id),
			filepath.Join(env.root, "containers"), filepath.Join(env.root, "containers", id), filepath.Join(env.root, "layers"),
		} {
			if setupErr = os.Chmod(d, 0o755); setupErr != nil {
				return
			}
		}
		// As the old layout has it: the host user sees the container's "/".
		if out, err := asNobody("cat", filepath.Join(ctrDir, "planted")); err != nil {
			setupErr = fmt.Errorf("the simulated old layout does not expose the rootfs: %v %.80q", err, out)
		}
	})
	if setupErr != nil {
		t.Fatalf("making the old layout: %v", setupErr)
	}
	if isMount(t, ctrDir) || !isMount(t, filepath.Join(ctrDir, "rootfs")) {
		t.Errorf("after start-up: %s mounted %v, %s/rootfs mounted %v; want the rootfs moved into the private dir",
			ctrDir, isMount(t, ctrDir), ctrDir, isMount(t, filepath.Join(ctrDir, "rootfs")))
	}
	checkLockedOut(t, p, id, 0)
	for _, d := range []string{filepath.Join(env.root, "containers"), filepath.Join(env.root, "containers", id), filepath.Join(env.root, "layers")} {
		requireDirMode(t, d, 0)
	}
	for _, d := range []string{filepath.Join(env.state, "rootfs"), filepath.Join(env.state, "imagemounts"), filepath.Join(env.state, "sandboxes")} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o711 {
			t.Errorf("%s: %v %v, want 0711", d, st.Mode(), err)
		}
	}
	if out, code := execSync(t, id, "sh", "-c", "test -u /planted && echo ok"); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("the container after the move: exit %d, %q", code, out)
	}
	if _, err := env.rt.RemovePodSandbox(t.Context(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatal(err)
	}
	if l := leaks(p.id, id); len(l) > 0 {
		t.Errorf("leaks: %v", l)
	}
	if _, err := os.Lstat(ctrDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is still there after removal: %v", ctrDir, err)
	}
}

// oldLayout moves the rootfs mounted at dir/rootfs onto dir itself, as an
// older daemon mounted it, with dir 0755.
func oldLayout(dir string) error {
	park := dir + ".park"
	if err := os.Mkdir(park, 0o700); err != nil {
		return err
	}
	defer os.Remove(park)
	steps := []func() error{
		func() error { return unix.Mount(filepath.Join(dir, "rootfs"), park, "", unix.MS_BIND|unix.MS_REC, "") },
		func() error { return unix.Unmount(filepath.Join(dir, "rootfs"), unix.MNT_DETACH) },
		func() error { return os.Remove(filepath.Join(dir, "rootfs")) },
		func() error { return os.Chmod(dir, 0o755) },
		func() error { return unix.Mount(park, dir, "", unix.MS_BIND|unix.MS_REC, "") },
		func() error { return unix.Unmount(park, unix.MNT_DETACH) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
	}
	return nil
}

func isMount(t *testing.T, path string) bool {
	t.Helper()
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &stx); err != nil {
		return false
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		t.Fatal("statx reports no mount roots on this kernel")
	}
	return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}
