package spec

import (
	"fmt"
	"math"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// nsPath is the /proc path of a namespace of pid.
func nsPath(pid int, ns string) string { return fmt.Sprintf("/proc/%d/ns/%s", pid, ns) }

// setNamespace replaces the namespace of type t (path "" = new).
func setNamespace(s *specs.Spec, t specs.LinuxNamespaceType, p string) {
	ensureLinux(s)
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: p})
}

// removeNamespace shares the host's namespace of type t.
func removeNamespace(s *specs.Spec, t specs.LinuxNamespaceType) {
	ensureLinux(s)
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}

// WithContainerNamespaces puts a container into its pod's namespaces:
// network (the pinned netns, else the pause's; none with host network),
// IPC and UTS (the pinned ones, else the pause's, or the host's), PID per
// the container's NamespaceOption (POD → the pause's, CONTAINER → new,
// NODE → host, TARGET → the target's, targetPID), a new mount namespace,
// and the pod's user namespace when userns_options says POD. A pod without
// a pause (NeedsPause false) has every namespace but PID and user pinned.
func WithContainerNamespaces(opt *runtimeapi.NamespaceOption, sb SandboxInfo, targetPID int) SpecOpt {
	return func(s *specs.Spec) error {
		const field = "container.linux.security_context.namespace_options"
		podNS := sb.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
		hostNet := podNS.GetNetwork() == runtimeapi.NamespaceMode_NODE
		hostIPC := podNS.GetIpc() == runtimeapi.NamespaceMode_NODE
		// pause is the pause's namespace of a type, which needs a pause.
		pause := func(ns string) (string, error) {
			if sb.Pid <= 0 {
				return "", fmt.Errorf("sandbox %s has no running pause process to share its %s namespace: %w", sb.ID, ns, errdefs.ErrFailedPrecondition)
			}
			return nsPath(sb.Pid, ns), nil
		}
		// join sets a namespace to its pinned file, else the pause's.
		join := func(t specs.LinuxNamespaceType, pinned, ns string) error {
			if pinned != "" {
				if err := checkPath("sandbox "+ns+" namespace path", pinned); err != nil {
					return err
				}
				setNamespace(s, t, pinned)
				return nil
			}
			p, err := pause(ns)
			if err != nil {
				return err
			}
			setNamespace(s, t, p)
			return nil
		}
		setNamespace(s, specs.MountNamespace, "")
		if hostNet {
			removeNamespace(s, specs.NetworkNamespace)
			removeNamespace(s, specs.UTSNamespace)
		} else {
			if err := join(specs.NetworkNamespace, sb.NetNSPath, "net"); err != nil {
				return err
			}
			if err := join(specs.UTSNamespace, sb.UTSNSPath, "uts"); err != nil {
				return err
			}
		}
		if hostIPC {
			removeNamespace(s, specs.IPCNamespace)
		} else if err := join(specs.IPCNamespace, sb.IPCNSPath, "ipc"); err != nil {
			return err
		}
		if err := containerPIDNamespace(s, field, opt, podNS, sb, targetPID); err != nil {
			return err
		}
		if u := opt.GetUsernsOptions(); u != nil && u.GetMode() == runtimeapi.NamespaceMode_POD {
			if _, err := pause("user"); err != nil {
				return err
			}
		}
		return withUserNamespace(s, field, opt.GetUsernsOptions(), sb.Pid)
	}
}

// NeedsPause reports whether a pod needs a pause process: when its
// containers share a PID namespace (the pause is its init) or a user
// namespace (made with the mappings by runc for the pause). Every other
// namespace of a pod can be pinned as a file instead.
func NeedsPause(cfg *runtimeapi.PodSandboxConfig) bool {
	opt := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if opt.GetPid() == runtimeapi.NamespaceMode_POD {
		return true
	}
	u := opt.GetUsernsOptions()
	return u != nil && u.GetMode() == runtimeapi.NamespaceMode_POD
}

func containerPIDNamespace(s *specs.Spec, field string, opt, podNS *runtimeapi.NamespaceOption, sb SandboxInfo, targetPID int) error {
	switch opt.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		switch {
		case podNS.GetPid() == runtimeapi.NamespaceMode_NODE:
			removeNamespace(s, specs.PIDNamespace)
		case sb.Pid <= 0:
			return fmt.Errorf("%s.pid POD: sandbox %s has no pause process, whose PID namespace is the pod's (the sandbox's pid mode is %s; want POD): %w",
				field, sb.ID, podNS.GetPid(), errdefs.ErrFailedPrecondition)
		default:
			setNamespace(s, specs.PIDNamespace, nsPath(sb.Pid, "pid"))
		}
	case runtimeapi.NamespaceMode_CONTAINER:
		setNamespace(s, specs.PIDNamespace, "")
	case runtimeapi.NamespaceMode_NODE:
		removeNamespace(s, specs.PIDNamespace)
	case runtimeapi.NamespaceMode_TARGET:
		if opt.GetTargetId() == "" {
			return fmt.Errorf("%s.target_id is empty with pid mode TARGET: %w", field, errdefs.ErrInvalidArgument)
		}
		if targetPID <= 0 {
			return fmt.Errorf("%s.target_id %q has no running process: %w", field, opt.GetTargetId(), errdefs.ErrFailedPrecondition)
		}
		setNamespace(s, specs.PIDNamespace, nsPath(targetPID, "pid"))
	default:
		return fmt.Errorf("%s.pid %d is unknown: %w", field, opt.GetPid(), errdefs.ErrInvalidArgument)
	}
	return nil
}

// withUserNamespace applies userns_options: nil or NODE → the host's;
// POD → the mappings, plus the pause's user namespace when pausePID > 0
// (a container), or a new one (the sandbox, pausePID 0).
func withUserNamespace(s *specs.Spec, field string, u *runtimeapi.UserNamespace, pausePID int) error {
	if u == nil || u.GetMode() == runtimeapi.NamespaceMode_NODE {
		removeNamespace(s, specs.UserNamespace)
		return nil
	}
	if u.GetMode() != runtimeapi.NamespaceMode_POD {
		return fmt.Errorf("%s.userns_options.mode %s is not supported (want POD or NODE): %w", field, u.GetMode(), errdefs.ErrInvalidArgument)
	}
	uids, err := podIDMapping(field+".userns_options.uids", u.GetUids())
	if err != nil {
		return err
	}
	gids, err := podIDMapping(field+".userns_options.gids", u.GetGids())
	if err != nil {
		return err
	}
	p := ""
	if pausePID > 0 {
		p = nsPath(pausePID, "user")
	}
	setNamespace(s, specs.UserNamespace, p)
	s.Linux.UIDMappings, s.Linux.GIDMappings = uids, gids
	return nil
}

// podIDMapping checks a pod's user namespace mapping: exactly one range,
// starting at container id 0 (as containerd requires: the idmapped
// rootfs and volumes are made for one range, and root must be mapped).
func podIDMapping(field string, in []*runtimeapi.IDMapping) ([]specs.LinuxIDMapping, error) {
	out, err := idMappings(field, in)
	if err != nil {
		return nil, err
	}
	if len(out) != 1 || out[0].ContainerID != 0 {
		return nil, fmt.Errorf("%s must be exactly one range starting at container id 0, got %d ranges: %w", field, len(out), errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// PodUserNS returns the pod's user namespace mapping (container id 0 →
// host uid/gid, length) when the pod runs in its own user namespace; ok is
// false for the host's. It does not validate (SandboxSpec does).
func PodUserNS(cfg *runtimeapi.PodSandboxConfig) (uid, gid specs.LinuxIDMapping, ok bool) {
	u := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if u.GetMode() != runtimeapi.NamespaceMode_POD || len(u.GetUids()) == 0 || len(u.GetGids()) == 0 {
		return uid, gid, false
	}
	m := func(x *runtimeapi.IDMapping) specs.LinuxIDMapping {
		return specs.LinuxIDMapping{ContainerID: x.GetContainerId(), HostID: x.GetHostId(), Size: x.GetLength()}
	}
	return m(u.GetUids()[0]), m(u.GetGids()[0]), true
}

// idMappings converts and checks CRI id mappings: at least one, each
// non-empty and not wrapping past 2^32.
func idMappings(field string, in []*runtimeapi.IDMapping) ([]specs.LinuxIDMapping, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%s is empty: %w", field, errdefs.ErrInvalidArgument)
	}
	out := make([]specs.LinuxIDMapping, 0, len(in))
	for i, m := range in {
		l := uint64(m.GetLength())
		if l == 0 || uint64(m.GetHostId())+l-1 > math.MaxUint32 || uint64(m.GetContainerId())+l-1 > math.MaxUint32 {
			return nil, fmt.Errorf("%s[%d] (host %d, container %d, length %d) is empty or out of range: %w",
				field, i, m.GetHostId(), m.GetContainerId(), m.GetLength(), errdefs.ErrInvalidArgument)
		}
		out = append(out, specs.LinuxIDMapping{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out, nil
}

// WithSandboxNamespaces gives the pause its own namespaces: network (the
// pinned netnsPath, else new; none with host network), UTS with the pod's
// hostname (none with host network), IPC and PID (none when NODE), a new
// mount namespace, and a new user namespace with the pod's mappings.
func WithSandboxNamespaces(opt *runtimeapi.NamespaceOption, netnsPath, hostname string) SpecOpt {
	return func(s *specs.Spec) error {
		const field = "sandbox.linux.security_context.namespace_options"
		setNamespace(s, specs.MountNamespace, "")
		if opt.GetNetwork() == runtimeapi.NamespaceMode_NODE {
			removeNamespace(s, specs.NetworkNamespace)
			removeNamespace(s, specs.UTSNamespace)
		} else {
			if netnsPath != "" {
				if err := checkPath("sandbox netns path", netnsPath); err != nil {
					return err
				}
			}
			setNamespace(s, specs.NetworkNamespace, netnsPath)
			setNamespace(s, specs.UTSNamespace, "")
			if err := checkHostname(hostname); err != nil {
				return err
			}
			s.Hostname = hostname
		}
		for _, ns := range []struct {
			mode runtimeapi.NamespaceMode
			t    specs.LinuxNamespaceType
			name string
		}{{opt.GetIpc(), specs.IPCNamespace, "ipc"}, {opt.GetPid(), specs.PIDNamespace, "pid"}} {
			switch ns.mode {
			case runtimeapi.NamespaceMode_NODE:
				removeNamespace(s, ns.t)
			case runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER:
				setNamespace(s, ns.t, "")
			default:
				return fmt.Errorf("%s.%s %s is not valid for a sandbox: %w", field, ns.name, ns.mode, errdefs.ErrInvalidArgument)
			}
		}
		return withUserNamespace(s, field, opt.GetUsernsOptions(), 0)
	}
}

// checkHostname accepts what sethostname(2) accepts: at most 64 bytes,
// no NUL.
func checkHostname(h string) error {
	if len(h) > 64 || slices.Contains([]byte(h), 0) {
		return fmt.Errorf("sandbox.hostname %q is longer than 64 bytes or has a NUL: %w", h, errdefs.ErrInvalidArgument)
	}
	return nil
}
