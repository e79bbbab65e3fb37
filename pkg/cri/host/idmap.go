package host

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// probeIDMappedOverlay mounts an overlay with an idmapped lower layer in a
// temporary dir under rootDir, checks that a root-owned file shows up as
// owned by the mapped host uid, and removes everything again.
func probeIDMappedOverlay(rootDir string) (retErr error) {
	if err := os.MkdirAll(rootDir, 0o711); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(rootDir, "idmap-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lower", "f"), nil, 0o644); err != nil {
		return err
	}
	const hostID = 165536
	m := specs.LinuxIDMapping{ContainerID: 0, HostID: hostID, Size: 65536}
	ns, err := newUserNS(m, m)
	if err != nil {
		return err
	}
	defer ns.Close()
	mounts, done, err := IDMapOverlay([]image.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(dir, "lower"), "upperdir=" + filepath.Join(dir, "upper"), "workdir=" + filepath.Join(dir, "work"),
	}}}, ns, m, m, filepath.Join(dir, "idmap"))
	if err != nil {
		return err
	}
	merged := filepath.Join(dir, "merged")
	err = mounts[0].Mount(merged)
	if cerr := done(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil && retErr == nil {
			retErr = err
		}
	}()
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(merged, "f"), &st); err != nil {
		return err
	}
	if st.Uid != hostID {
		return fmt.Errorf("a root-owned file shows up as uid %d, not %d", st.Uid, hostID)
	}
	return nil
}

// newUserNS returns a user namespace with the given mappings, as an open
// /proc/<pid>/ns/user of a helper that never runs: it is created stopped
// (ptrace, at its execve) and killed before it returns.
func newUserNS(uid, gid specs.LinuxIDMapping) (*os.File, error) {
	goruntime.LockOSThread() // the tracer is this thread
	defer goruntime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: int(uid.ContainerID), HostID: int(uid.HostID), Size: int(uid.Size)}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: int(gid.ContainerID), HostID: int(gid.HostID), Size: int(gid.Size)}},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start user namespace helper: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("open user namespace: %w", err)
	}
	return f, nil
}

// idmapBind clones the mount tree at src, idmaps it with the user
// namespace ns, and attaches it at dst (an existing dir).
func idmapBind(src, dst string, ns *os.File) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("idmap %s: %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach idmapped %s: %w", src, err)
	}
	return nil
}

// IDMapOverlay rewrites overlay mounts for a user namespace, the way
// containerd does: every lowerdir is replaced by an idmapped bind of it
// under tmpDir (overlayfs itself cannot be idmapped, but since 5.19 it
// takes idmapped layers), and the upper dir's root is chowned to the host
// ids of container root. Files the container creates land in the upper
// dir with their host ids; the layers stay untouched and shared. Call
// done once the overlay is mounted (it keeps its own references to the
// layers): it detaches the binds and removes tmpDir. On error nothing is
// left behind.
func IDMapOverlay(mounts []image.Mount, ns *os.File, uid, gid specs.LinuxIDMapping, tmpDir string) (_ []image.Mount, done func() error, retErr error) {
	var binds []string
	done = func() error {
		var errs []error
		for _, b := range binds {
			if err := unix.Unmount(b, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", b, err))
			}
		}
		if len(errs) == 0 {
			errs = append(errs, os.RemoveAll(tmpDir))
		}
		return errors.Join(errs...)
	}
	defer func() {
		if retErr != nil {
			_ = done()
		}
	}()
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, nil, err
	}
	out := make([]image.Mount, 0, len(mounts))
	for _, m := range mounts {
		if m.Type != "overlay" {
			return nil, nil, fmt.Errorf("cannot idmap a %s rootfs mount: %w", m.Type, errdefs.ErrFailedPrecondition)
		}
		opts := slices.Clone(m.Options)
		for i, o := range opts {
			switch k, v, _ := strings.Cut(o, "="); k {
			case "lowerdir":
				lowers := strings.Split(v, ":")
				for j, l := range lowers {
					b := filepath.Join(tmpDir, strconv.Itoa(len(binds)))
					if err := os.Mkdir(b, 0o700); err != nil {
						return nil, nil, err
					}
					if err := idmapBind(l, b, ns); err != nil {
						return nil, nil, err
					}
					binds = append(binds, b)
					lowers[j] = b
				}
				opts[i] = "lowerdir=" + strings.Join(lowers, ":")
			case "upperdir":
				if err := os.Lchown(v, int(uid.HostID), int(gid.HostID)); err != nil {
					return nil, nil, fmt.Errorf("chown upper dir: %w", err)
				}
			}
		}
		out = append(out, image.Mount{Type: m.Type, Source: m.Source, Options: opts})
	}
	return out, done, nil
}
