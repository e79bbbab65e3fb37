package nri

import (
	"time"

	api "github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PodSandbox is what the adapter needs to know of a pod sandbox. The
// facade fills it from its own records.
type PodSandbox struct {
	ID             string
	Name           string
	UID            string
	Namespace      string
	Labels         map[string]string
	Annotations    map[string]string
	RuntimeHandler string
	CgroupParent   string
	NetNSPath      string
	// IPCNSPath and UTSNSPath are the pinned namespaces of a pod without
	// a pause process (Pid 0); "" otherwise.
	IPCNSPath, UTSNSPath string
	Pid                  uint32
	IPs                  []string
}

// ContainerState is a container's state as plugins see it.
type ContainerState int

// Container states.
const (
	StateUnknown ContainerState = iota
	StateCreated
	StateRunning
	StateStopped
)

// Container is what the adapter needs to know of a container. Spec is its
// OCI spec; it may be nil when it cannot be read.
type Container struct {
	ID           string
	PodSandboxID string
	Name         string
	State        ContainerState
	Labels       map[string]string
	Annotations  map[string]string
	Spec         *specs.Spec
	Pid          uint32
	CreatedAt    time.Time
	StartedAt    time.Time
	FinishedAt   time.Time
	ExitCode     int32
	Reason       string
	Message      string
}

// toAPIPod converts a pod sandbox to NRI's type.
func toAPIPod(p *PodSandbox) *api.PodSandbox {
	if p == nil {
		return &api.PodSandbox{}
	}
	pod := &api.PodSandbox{
		Id:             p.ID,
		Name:           p.Name,
		Uid:            p.UID,
		Namespace:      p.Namespace,
		Labels:         api.DupStringMap(p.Labels),
		Annotations:    api.DupStringMap(p.Annotations),
		RuntimeHandler: p.RuntimeHandler,
		Pid:            p.Pid,
		Ips:            api.DupStringSlice(p.IPs),
		Linux:          &api.LinuxPodSandbox{CgroupParent: p.CgroupParent},
	}
	for _, ns := range []struct{ t, p string }{{"network", p.NetNSPath}, {"ipc", p.IPCNSPath}, {"uts", p.UTSNSPath}} {
		if ns.p != "" {
			pod.Linux.Namespaces = append(pod.Linux.Namespaces, &api.LinuxNamespace{Type: ns.t, Path: ns.p})
		}
	}
	return pod
}

var apiStates = map[ContainerState]api.ContainerState{
	StateUnknown: api.ContainerState_CONTAINER_UNKNOWN,
	StateCreated: api.ContainerState_CONTAINER_CREATED,
	StateRunning: api.ContainerState_CONTAINER_RUNNING,
	StateStopped: api.ContainerState_CONTAINER_STOPPED,
}

// toAPIContainer converts a container, with what its OCI spec says, to
// NRI's type.
func toAPIContainer(c *Container) *api.Container {
	if c == nil {
		return &api.Container{}
	}
	ctr := &api.Container{
		Id:            c.ID,
		PodSandboxId:  c.PodSandboxID,
		Name:          c.Name,
		State:         apiStates[c.State],
		Labels:        api.DupStringMap(c.Labels),
		Annotations:   api.DupStringMap(c.Annotations),
		Pid:           c.Pid,
		CreatedAt:     unixNanos(c.CreatedAt),
		StartedAt:     unixNanos(c.StartedAt),
		FinishedAt:    unixNanos(c.FinishedAt),
		ExitCode:      c.ExitCode,
		StatusReason:  c.Reason,
		StatusMessage: c.Message,
	}
	s := c.Spec
	if s == nil {
		return ctr
	}
	// The spec's annotations include the container's own; the CRI ones win.
	if ctr.Annotations == nil && len(s.Annotations) > 0 {
		ctr.Annotations = api.DupStringMap(s.Annotations)
	}
	ctr.Mounts = api.FromOCIMounts(s.Mounts)
	ctr.Hooks = api.FromOCIHooks(s.Hooks)
	if p := s.Process; p != nil {
		ctr.Args = api.DupStringSlice(p.Args)
		ctr.Env = api.DupStringSlice(p.Env)
		ctr.User = &api.User{Uid: p.User.UID, Gid: p.User.GID, AdditionalGids: append([]uint32(nil), p.User.AdditionalGids...)}
		for _, r := range p.Rlimits {
			ctr.Rlimits = append(ctr.Rlimits, &api.POSIXRlimit{Type: r.Type, Hard: r.Hard, Soft: r.Soft})
		}
	}
	if l := s.Linux; l != nil {
		ctr.Linux = &api.LinuxContainer{
			Namespaces:  api.FromOCILinuxNamespaces(l.Namespaces),
			Devices:     api.FromOCILinuxDevices(l.Devices),
			Resources:   api.FromOCILinuxResources(l.Resources, s.Annotations),
			CgroupsPath: l.CgroupsPath,
			Sysctl:      api.DupStringMap(l.Sysctl),
		}
		if s.Process != nil && s.Process.OOMScoreAdj != nil {
			ctr.Linux.OomScoreAdj = api.Int(*s.Process.OOMScoreAdj)
		}
	}
	return ctr
}

func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
