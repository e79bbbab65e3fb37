package cri

// Modern pod features (issue "Modern pod features"): what each runtime
// handler really supports on this host, probed once per handler binary and
// never assumed, and the host-side work user namespaces need (an idmapped
// rootfs). Status advertises the probe's result; RunPodSandbox and
// CreateContainer refuse what the handler lacks with InvalidArgument.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// ownCapabilities is what the daemon can pass on to containers: its
// bounding ∩ effective set. nil (no bound) if unreadable.
func ownCapabilities() []string {
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		var caps []string
		if caps, err = spec.HeldCapabilities(string(data)); err == nil {
			if len(caps) < len(spec.AllCapabilities()) {
				klog.Background().Info("The daemon lacks some capabilities; containers are limited to the rest", "held", len(caps))
			}
			return caps
		}
	}
	klog.Background().Error(err, "Could not read the daemon's own capabilities; containers are not bounded by them")
	return nil
}

// handlerFeatures is what one runtime handler supports on this host.
type handlerFeatures struct {
	// RecursiveReadOnly: the runtime knows the "rro" mount option and the
	// kernel has mount_setattr (5.12).
	RecursiveReadOnly bool
	// UserNamespaces: the runtime creates user namespaces and idmapped
	// mounts, the kernel idmaps overlayfs layers (5.19), and an idmapped
	// overlay really mounts under the daemon's root dir.
	UserNamespaces bool
	// Why says what is missing, for the start-up log.
	Why []string
}

// ociFeatures is the part of `<runtime> features` (runtime-spec
// features.md) the probe reads.
type ociFeatures struct {
	MountOptions []string `json:"mountOptions"`
	Linux        *struct {
		Namespaces      []string `json:"namespaces"`
		MountExtensions *struct {
			IDMap *struct {
				Enabled *bool `json:"enabled"`
			} `json:"idmap"`
		} `json:"mountExtensions"`
	} `json:"linux"`
}

// kernelVersion parses the major and minor of a uname release
// ("6.18.44-fc-v657" → 6, 18).
func kernelVersion(release string) (major, minor int, ok bool) {
	maj, rest, found := strings.Cut(release, ".")
	if !found {
		return 0, 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		rest = rest[:end]
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(rest)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return a, b, true
}

func kernelAtLeast(release string, major, minor int) bool {
	a, b, ok := kernelVersion(release)
	return ok && (a > major || a == major && b >= minor)
}

// parseFeatures decides the static part of a handler's features from the
// output of `<runtime> features` and the kernel release. idmapWorks is the
// outcome of the live idmapped-overlay probe (nil: it worked).
func parseFeatures(out []byte, release string, idmapWorks error) handlerFeatures {
	var f ociFeatures
	if err := json.Unmarshal(out, &f); err != nil {
		return handlerFeatures{Why: []string{"runtime features output is not JSON: " + err.Error()}}
	}
	var h handlerFeatures
	switch {
	case !slices.Contains(f.MountOptions, "rro"):
		h.Why = append(h.Why, "the runtime does not list the rro mount option")
	case !kernelAtLeast(release, 5, 12):
		h.Why = append(h.Why, "recursive read-only mounts need kernel 5.12")
	default:
		h.RecursiveReadOnly = true
	}
	idmap := f.Linux != nil && f.Linux.MountExtensions != nil && f.Linux.MountExtensions.IDMap != nil &&
		f.Linux.MountExtensions.IDMap.Enabled != nil && *f.Linux.MountExtensions.IDMap.Enabled
	switch {
	case f.Linux == nil || !slices.Contains(f.Linux.Namespaces, "user"):
		h.Why = append(h.Why, "the runtime does not list the user namespace")
	case !idmap:
		h.Why = append(h.Why, "the runtime does not support idmapped mounts")
	case !kernelAtLeast(release, 5, 19):
		h.Why = append(h.Why, "idmapped overlayfs layers need kernel 5.19")
	case idmapWorks != nil:
		h.Why = append(h.Why, "an idmapped overlay does not mount here: "+idmapWorks.Error())
	default:
		h.UserNamespaces = true
	}
	return h
}

// features returns what handler supports, probing its binary the first
// time. An unknown handler supports nothing.
func (s *Service) features(handler string) handlerFeatures {
	if handler == "" {
		handler = s.cfg.DefaultRuntimeHandler
	}
	h, ok := s.cfg.Runtimes[handler]
	if !ok {
		return handlerFeatures{}
	}
	key := h.BinaryPath + "\x00" + s.rootDir
	probe, _ := s.featureProbes.LoadOrStore(key, sync.OnceValue(func() handlerFeatures {
		f := probeFeatures(h.BinaryPath, s.rootDir)
		klog.Background().Info("Probed runtime handler features", "runtimeHandler", handler,
			"recursiveReadOnlyMounts", f.RecursiveReadOnly, "userNamespaces", f.UserNamespaces, "missing", f.Why)
		return f
	}))
	f := probe.(func() handlerFeatures)()
	if f.UserNamespaces {
		for _, d := range []string{s.rootDir, s.stateDir} {
			if err := traversable(d); err != nil {
				f.UserNamespaces = false
				f.Why = append(slices.Clone(f.Why), err.Error())
			}
		}
	}
	return f
}

// traversable checks that every dir from / down to dir lets others search
// it (o+x): runc resolves the rootfs from inside the pod's user namespace,
// where the daemon's root is just "others" (containerd requires the same
// 0711). Checked live, so fixing a mode takes effect without a restart.
func traversable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("user namespaces need %s: %w", d, err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("user namespaces need %s to be searchable by others (mode %#o, want at least 0711)", d, st.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// probeFeatures runs `<binary> features`, reads the kernel release and,
// when the static facts allow user namespaces, mounts a tiny idmapped
// overlay under rootDir to prove it works.
func probeFeatures(binary, rootDir string) handlerFeatures {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "features").Output()
	if err != nil {
		return handlerFeatures{Why: []string{fmt.Sprintf("%s features: %v", binary, err)}}
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return handlerFeatures{Why: []string{"uname: " + err.Error()}}
	}
	release := unix.ByteSliceToString(uts.Release[:])
	f := parseFeatures(out, release, nil)
	if f.UserNamespaces {
		f = parseFeatures(out, release, probeIDMappedOverlay(rootDir))
	}
	return f
}

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
	mounts, done, err := idmapOverlay([]image.Mount{{Type: "overlay", Source: "overlay", Options: []string{
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

// idmapOverlay rewrites overlay mounts for a user namespace, the way
// containerd does: every lowerdir is replaced by an idmapped bind of it
// under tmpDir (overlayfs itself cannot be idmapped, but since 5.19 it
// takes idmapped layers), and the upper dir's root is chowned to the host
// ids of container root. Files the container creates land in the upper
// dir with their host ids; the layers stay untouched and shared. Call
// done once the overlay is mounted (it keeps its own references to the
// layers): it detaches the binds and removes tmpDir. On error nothing is
// left behind.
func idmapOverlay(mounts []image.Mount, ns *os.File, uid, gid specs.LinuxIDMapping, tmpDir string) (_ []image.Mount, done func() error, retErr error) {
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

// podUserNS is the user namespace of a running pod's pause: its file and
// the pod's mappings; nil when the pod uses the host's.
type podUserNS struct {
	file     *os.File
	uid, gid specs.LinuxIDMapping
}

// openPodUserNS opens the user namespace of sb's pause process when the
// pod has its own; (nil, nil) when it uses the host's.
func openPodUserNS(sb *sandbox) (*podUserNS, error) {
	uid, gid, ok := spec.PodUserNS(sb.Meta.config)
	if !ok {
		return nil, nil
	}
	pid := sb.Status().Pid
	if pid <= 0 {
		return nil, fmt.Errorf("pod sandbox %s has no running pause process: %w", sb.Meta.ID, errdefs.ErrFailedPrecondition)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace of pod sandbox %s: %w", sb.Meta.ID, errdefs.ErrFailedPrecondition)
	}
	return &podUserNS{file: f, uid: uid, gid: gid}, nil
}

// checkSandboxFeatures refuses a pod whose user namespace the handler
// cannot give.
func (s *Service) checkSandboxFeatures(handler string, cfg *runtimeapi.PodSandboxConfig) error {
	if _, _, ok := spec.PodUserNS(cfg); ok && !s.features(handler).UserNamespaces {
		return fmt.Errorf("config.linux.security_context.namespace_options.userns_options: runtime handler %q does not support user namespaces on this host: %w",
			handler, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkContainerFeatures refuses recursive read-only mounts the handler
// cannot make.
func (s *Service) checkContainerFeatures(handler string, cfg *runtimeapi.ContainerConfig) error {
	for i, m := range cfg.GetMounts() {
		if m.GetRecursiveReadOnly() && !s.features(handler).RecursiveReadOnly {
			return fmt.Errorf("config.mounts[%d].recursive_read_only: runtime handler %q does not support recursive read-only mounts on this host: %w",
				i, handler, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
