package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// defaultMounts is containerd's default mount set (without /run): the
// kernel filesystems every container gets. /dev/shm is added separately.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// WithDefaultMounts replaces the mounts with the defaults plus /dev/shm:
// a bind of shmPath (the pod's shared shm) when set, else a private tmpfs
// of shmSize.
func WithDefaultMounts(shmPath, shmSize string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Mounts = defaultMounts()
		if shmPath != "" {
			if err := checkHostPath("sandbox shm path", shmPath); err != nil {
				return err
			}
			s.Mounts = append(s.Mounts, bindMount("/dev/shm", shmPath, false))
			return nil
		}
		opts := []string{"nosuid", "noexec", "nodev", "mode=1777"}
		if shmSize != "" {
			opts = append(opts, "size="+shmSize)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: opts})
		return nil
	}
}

// WithUsernsSysfs replaces the fresh sysfs at /sys with a read-only
// recursive bind of the host's /sys when the pod runs in its own user
// namespace (containerd does the same): the kernel refuses a sysfs mount
// from a user namespace that does not own the network namespace, and the
// pod's netns is pinned by the daemon, in the host's user namespace.
func WithUsernsSysfs(podCfg *runtimeapi.PodSandboxConfig) SpecOpt {
	return func(s *specs.Spec) error {
		if _, _, ok := PodUserNS(podCfg); !ok {
			return nil
		}
		for i, m := range s.Mounts {
			if m.Destination == "/sys" && m.Type == "sysfs" {
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys",
					Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			}
		}
		return nil
	}
}

func bindMount(dst, src string, ro bool) specs.Mount {
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", mode}}
}

// WithSandboxFileMounts binds the sandbox's /etc/hosts, /etc/resolv.conf
// and /etc/hostname (read-only with a read-only rootfs). A CRI mount of the
// same path replaces them (the kubelet usually mounts /etc/hosts itself).
func WithSandboxFileMounts(sb SandboxInfo, readonly bool) SpecOpt {
	return func(s *specs.Spec) error {
		files := []struct{ dst, src string }{
			{"/etc/hosts", sb.HostsPath},
			{"/etc/resolv.conf", sb.ResolvConfPath},
			{"/etc/hostname", sb.HostnamePath},
		}
		for _, f := range files {
			if f.src == "" {
				continue
			}
			if err := checkHostPath("sandbox file "+f.dst, f.src); err != nil {
				return err
			}
			s.Mounts = append(s.Mounts, bindMount(f.dst, path.Clean(f.src), readonly))
		}
		return nil
	}
}

// checkPath refuses what is not an absolute path free of ".." and NUL.
func checkPath(field, p string) error {
	if p == "" || !path.IsAbs(p) || hasDotDot(p) || strings.ContainsRune(p, 0) {
		return fmt.Errorf("%s %q must be an absolute path without \"..\": %w", field, p, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkHostPath is checkPath plus a refusal of the host's /proc/self and
// /proc/thread-self, which would name runc's own process at mount time.
func checkHostPath(field, p string) error {
	if err := checkPath(field, p); err != nil {
		return err
	}
	c := path.Clean(p)
	for _, bad := range []string{"/proc/self", "/proc/thread-self"} {
		if c == bad || strings.HasPrefix(c, bad+"/") {
			return fmt.Errorf("%s %q points into %s: %w", field, p, bad, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// propagationOption maps CRI propagation to the bind option.
func propagationOption(p runtimeapi.MountPropagation) (string, bool) {
	switch p {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		return "rprivate", true
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		return "rslave", true
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		return "rshared", true
	}
	return "", false
}

// criMount converts container.mounts[i]. selinux_relabel is ignored (no
// SELinux here); mount_options are not passed through.
func criMount(i int, m *runtimeapi.Mount) (specs.Mount, error) {
	field := fmt.Sprintf("container.mounts[%d]", i)
	if err := checkPath(field+".container_path", m.GetContainerPath()); err != nil {
		return specs.Mount{}, err
	}
	if err := checkHostPath(field+".host_path", m.GetHostPath()); err != nil {
		return specs.Mount{}, err
	}
	prop, ok := propagationOption(m.GetPropagation())
	if !ok {
		return specs.Mount{}, fmt.Errorf("%s.propagation %d is unknown: %w", field, m.GetPropagation(), errdefs.ErrInvalidArgument)
	}
	opts := []string{"rbind", prop}
	switch {
	case m.GetRecursiveReadOnly():
		if !m.GetReadonly() || m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return specs.Mount{}, fmt.Errorf("%s.recursive_read_only needs readonly and private propagation: %w", field, errdefs.ErrInvalidArgument)
		}
		opts = append(opts, "ro", "rro")
	case m.GetReadonly():
		opts = append(opts, "ro")
	default:
		opts = append(opts, "rw")
	}
	out := specs.Mount{
		Destination: path.Clean(m.GetContainerPath()),
		Type:        "bind",
		Source:      path.Clean(m.GetHostPath()),
		Options:     opts,
	}
	uids, gids := m.GetUidMappings(), m.GetGidMappings()
	if len(uids) > 0 || len(gids) > 0 {
		var err error
		if out.UIDMappings, err = idMappings(field+".uidMappings", uids); err != nil {
			return specs.Mount{}, err
		}
		if out.GIDMappings, err = idMappings(field+".gidMappings", gids); err != nil {
			return specs.Mount{}, err
		}
	}
	return out, nil
}

// mountDepth orders mounts so a parent is mounted before its children.
func mountDepth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// WithMounts adds the CRI mounts, sorted parents first. A CRI mount
// replaces an earlier mount of the same destination, and a CRI /dev
// replaces every default mount under /dev (containerd's rule). Rootfs
// propagation becomes rshared/rslave when a mount needs it.
func WithMounts(mounts []*runtimeapi.Mount) SpecOpt {
	return func(s *specs.Spec) error {
		converted := make([]specs.Mount, 0, len(mounts))
		dsts := map[string]bool{}
		for i, m := range mounts {
			cm, err := criMount(i, m)
			if err != nil {
				return err
			}
			converted = append(converted, cm)
			dsts[cm.Destination] = true
		}
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool {
			dst := path.Clean(m.Destination)
			return dsts[dst] || (dsts["/dev"] && strings.HasPrefix(dst, "/dev/"))
		})
		sort.SliceStable(converted, func(a, b int) bool {
			return mountDepth(converted[a].Destination) < mountDepth(converted[b].Destination)
		})
		s.Mounts = append(s.Mounts, converted...)
		for _, m := range converted {
			switch {
			case slices.Contains(m.Options, "rshared"):
				ensureLinux(s)
				s.Linux.RootfsPropagation = "rshared"
			case slices.Contains(m.Options, "rslave"):
				ensureLinux(s)
				if s.Linux.RootfsPropagation != "rshared" {
					s.Linux.RootfsPropagation = "rslave"
				}
			}
		}
		return nil
	}
}

// imageVolumes decides the anonymous volumes of an image under policy: one
// per declared volume that no CRI mount already covers, each a directory
// under dir named by a hash of its container path.
func imageVolumes(policy ImageVolumePolicy, volumes []string, dir string, mounts []*runtimeapi.Mount) ([]Volume, error) {
	if policy != ImageVolumesAnonymous || len(volumes) == 0 {
		return nil, nil
	}
	taken := map[string]bool{}
	for _, m := range mounts {
		taken[path.Clean(m.GetContainerPath())] = true
	}
	var out []Volume
	for i, v := range volumes {
		cp := path.Join("/", v)
		if strings.ContainsRune(v, 0) || cp == "/" {
			return nil, fmt.Errorf("image volume[%d] %q is not a usable path: %w", i, v, errdefs.ErrInvalidArgument)
		}
		if taken[cp] {
			continue
		}
		taken[cp] = true
		if err := checkPath("volumes dir", dir); err != nil {
			return nil, fmt.Errorf("image declares volumes but %w", err)
		}
		sum := sha256.Sum256([]byte(cp))
		out = append(out, Volume{ContainerPath: cp, HostPath: path.Join(dir, hex.EncodeToString(sum[:8]))})
	}
	return out, nil
}

// volumeMounts turns anonymous volumes into CRI mounts (read-write,
// private) so they follow the CRI mount rules and ordering.
func volumeMounts(vols []Volume) []*runtimeapi.Mount {
	out := make([]*runtimeapi.Mount, 0, len(vols))
	for _, v := range vols {
		out = append(out, &runtimeapi.Mount{ContainerPath: v.ContainerPath, HostPath: v.HostPath})
	}
	return out
}
