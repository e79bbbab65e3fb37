package cri

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/nri"
)

// WithNRI relays the lifecycle to NRI plugins as cfg says (nothing when
// cfg.Enable is false).
func WithNRI(cfg nri.Config) Option { return func(s *Service) { s.nriCfg = cfg } }

// initNRI builds the NRI adapter; New calls it after the options.
func (s *Service) initNRI() error {
	a, err := nri.New(s.nriCfg, RuntimeName, RuntimeVersion, nriDomain{s})
	if err != nil {
		return err
	}
	s.nri = a
	return nil
}

// startNRI starts listening for plugins once restore is done, so the first
// plugin is synchronized with every restored object. What was already
// stopped before the restart is not reported stopped again.
func (s *Service) startNRI(ctx context.Context) error {
	if !s.nri.Enabled() {
		return nil
	}
	for _, sb := range s.sandboxes.List() {
		if sb.Status().State() != runtimeapi.PodSandboxState_SANDBOX_READY {
			s.nri.MarkStopped(sb.Meta.ID, "")
		}
	}
	for _, c := range s.containers.List() {
		if c.Status().State() == runtimeapi.ContainerState_CONTAINER_EXITED {
			s.nri.MarkStopped("", c.Meta.ID)
		}
	}
	if err := s.nri.Start(); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("NRI enabled", "path", s.nriCfg.SocketPath)
	return nil
}

// nriRunPodSandbox tells plugins of a sandbox that is running but not yet
// visible. It blocks plugin synchronization until the returned func is
// called (after the sandbox is in the index, or the create failed); a
// failure later in the create tells plugins the sandbox is gone.
func (s *Service) nriRunPodSandbox(ctx context.Context, undo *rollback, meta sandboxMeta, pid int) (unblock func(), err error) {
	unblock = s.nri.BlockSync()
	pod := nriPod(meta, pid)
	undo.add("tell NRI plugins the sandbox is gone", func(ctx context.Context) error {
		return s.nri.RemovePodSandbox(ctx, pod)
	})
	if err := s.nri.RunPodSandbox(ctx, pod); err != nil {
		unblock()
		return func() {}, errdefs.WithClass(err, errdefs.ErrFailedPrecondition)
	}
	return unblock, nil
}

// nriCreateContainer lets plugins adjust a container's spec before its
// task is created. Plugin synchronization stays blocked until the returned
// func is called (after the container is in the index, or the create
// failed); a failure later in the create tells plugins to forget it.
func (s *Service) nriCreateContainer(ctx context.Context, undo *rollback, sb *sandbox, meta *containerMeta, sp *specs.Spec) (unblock func(), err error) {
	if !s.nri.Enabled() {
		return func() {}, nil
	}
	unblock = s.nri.BlockSync()
	pod := s.nriPodOf(sb)
	ctr := nriContainer(*meta, containerStatus{}, sp)
	undo.add("tell NRI plugins the container is gone", func(ctx context.Context) error { s.nri.UndoCreateContainer(ctx, pod, ctr); return nil })
	if err := s.nri.CreateContainer(ctx, pod, ctr); err != nil {
		unblock()
		return func() {}, errdefs.WithClass(err, errdefs.ErrFailedPrecondition)
	}
	return unblock, nil
}

// nriEvent sends one container event (PostCreate, Start, PostStart, Stop,
// Remove, PostUpdate); only Start's error matters to the caller.
func (s *Service) nriEvent(ctx context.Context, c *container, send func(context.Context, *nri.PodSandbox, *nri.Container) error) error {
	if !s.nri.Enabled() {
		return nil
	}
	return send(ctx, s.nriPodByID(c.Meta.SandboxID), nriContainer(c.Meta, c.Status(), s.containerSpec(c.Meta.ID)))
}

// nriNotify sends an event whose failure changes nothing: it is logged.
func (s *Service) nriNotify(ctx context.Context, c *container, event string, send func(context.Context, *nri.PodSandbox, *nri.Container) error) {
	if err := s.nriEvent(ctx, c, send); err != nil {
		klog.FromContext(ctx).Error(err, "NRI plugins failed an event", "event", event, "containerID", c.Meta.ID)
	}
}

// nriStopContainer tells plugins a container stopped (once).
func (s *Service) nriStopContainer(ctx context.Context, c *container) {
	s.nriNotify(ctx, c, "StopContainer", s.nri.StopContainer)
}

// nriStopPodSandbox tells plugins a sandbox stopped (once); its containers
// are stopped by then, and the sandbox is still visible.
func (s *Service) nriStopPodSandbox(ctx context.Context, sb *sandbox) {
	if !s.nri.Enabled() {
		return
	}
	if err := s.nri.StopPodSandbox(ctx, s.nriPodOf(sb)); err != nil {
		klog.FromContext(ctx).Error(err, "NRI plugins failed an event", "event", "StopPodSandbox")
	}
}

// nriRemovePodSandbox tells plugins a sandbox is gone.
func (s *Service) nriRemovePodSandbox(ctx context.Context, sb *sandbox) {
	if !s.nri.Enabled() {
		return
	}
	if err := s.nri.RemovePodSandbox(ctx, s.nriPodOf(sb)); err != nil {
		klog.FromContext(ctx).Error(err, "NRI plugins failed an event", "event", "RemovePodSandbox")
	}
}

// nriUpdateContainer lets plugins adjust a resource update before it is
// applied.
func (s *Service) nriUpdateContainer(ctx context.Context, c *container, res *specs.LinuxResources) error {
	if !s.nri.Enabled() || res == nil {
		return nil
	}
	err := s.nri.UpdateContainer(ctx, s.nriPodByID(c.Meta.SandboxID), nriContainer(c.Meta, c.Status(), s.containerSpec(c.Meta.ID)), res)
	if err != nil {
		return errdefs.WithClass(err, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// containerSpec reads a container's OCI spec from its task's bundle; nil
// when there is no task or the file cannot be read.
func (s *Service) containerSpec(id string) *specs.Spec {
	t, err := s.tasks.Get(taskNamespace, id)
	if err != nil {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(t.Bundle(), "config.json"))
	if err != nil {
		return nil
	}
	sp := &specs.Spec{}
	if json.Unmarshal(data, sp) != nil {
		return nil
	}
	return sp
}

func (s *Service) nriPodOf(sb *sandbox) *nri.PodSandbox { return nriPod(sb.Meta, sb.Status().Pid) }

// nriPodByID is the sandbox as plugins see it; a sandbox already gone is
// reported by id only.
func (s *Service) nriPodByID(id string) *nri.PodSandbox {
	sb, err := s.sandboxes.Get(id)
	if err != nil || sb.Meta.ID != id {
		return &nri.PodSandbox{ID: id}
	}
	return s.nriPodOf(sb)
}

// nriPod converts a sandbox to the adapter's type.
func nriPod(m sandboxMeta, pid int) *nri.PodSandbox {
	cfg := m.config
	md := cfg.GetMetadata()
	return &nri.PodSandbox{
		ID: m.ID, Name: md.GetName(), UID: md.GetUid(), Namespace: md.GetNamespace(),
		Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(), RuntimeHandler: m.RuntimeHandler,
		CgroupParent: cfg.GetLinux().GetCgroupParent(), NetNSPath: m.NetNSPath, IPCNSPath: m.IPCNSPath, UTSNSPath: m.UTSNSPath,
		Pid: uint32(max(pid, 0)), IPs: m.IPs,
	}
}

// nriContainer converts a container to the adapter's type; its name is the
// one the kubelet gave (config.metadata.name).
func nriContainer(m containerMeta, st containerStatus, sp *specs.Spec) *nri.Container {
	cfg := m.config
	c := &nri.Container{
		ID: m.ID, PodSandboxID: m.SandboxID, Name: cfg.GetMetadata().GetName(),
		Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(), Spec: sp,
		Pid: uint32(max(st.Pid, 0)), CreatedAt: m.CreatedAt, ExitCode: st.ExitCode, Reason: st.Reason, Message: st.Message,
	}
	if st.StartedAt != 0 {
		c.StartedAt = time.Unix(0, st.StartedAt)
	}
	if st.FinishedAt != 0 {
		c.FinishedAt = time.Unix(0, st.FinishedAt)
	}
	switch st.State() {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		c.State = nri.StateCreated
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		c.State = nri.StateRunning
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		c.State = nri.StateStopped
	}
	return c
}

// nriDomain is what the NRI adapter calls back into: the lists a
// connecting plugin is synchronized with, and updates and evictions
// plugins ask for.
type nriDomain struct{ s *Service }

func (d nriDomain) ListPodSandboxes(context.Context) []*nri.PodSandbox {
	var out []*nri.PodSandbox
	for _, sb := range d.s.sandboxes.List() {
		out = append(out, d.s.nriPodOf(sb))
	}
	return out
}

func (d nriDomain) ListContainers(context.Context) []*nri.Container {
	var out []*nri.Container
	for _, c := range d.s.containers.List() {
		out = append(out, nriContainer(c.Meta, c.Status(), d.s.containerSpec(c.Meta.ID)))
	}
	return out
}

// UpdateContainer applies a plugin's resource update to a live container.
func (d nriDomain) UpdateContainer(ctx context.Context, id string, res *specs.LinuxResources) error {
	c, err := d.s.getContainer(id)
	if err != nil {
		return err
	}
	t, err := d.s.liveTask(c)
	if err != nil {
		return err
	}
	return t.Update(ctx, res)
}

// EvictContainer stops a container a plugin evicts, at once (SIGKILL).
func (d nriDomain) EvictContainer(ctx context.Context, id, reason string) error {
	c, err := d.s.getContainer(id)
	if err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Evicting container for an NRI plugin", "containerID", c.Meta.ID, "reason", reason)
	if err := d.s.stopContainer(ctx, c, 0); err != nil {
		return err
	}
	d.s.nriStopContainer(ctx, c)
	return nil
}
