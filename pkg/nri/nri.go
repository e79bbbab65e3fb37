// Package nri connects the runtime to NRI (Node Resource Interface)
// plugins through NRI's own runtime side, pkg/adaptation, as containerd and
// CRI-O do. It converts the facade's pods and containers to NRI's types,
// relays lifecycle events in the order the NRI contract sets, applies the
// adjustments plugins ask for to a container's OCI spec, and hands the
// updates and evictions plugins request back to the facade through Domain.
//
// It speaks OCI and NRI, never CRI: the facade fills PodSandbox and
// Container from its own records.
package nri

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	api "github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/klog/v2"
)

// Domain is what the adapter needs of the runtime that embeds it.
type Domain interface {
	// ListPodSandboxes and ListContainers are what a plugin that connects
	// is synchronized with.
	ListPodSandboxes(ctx context.Context) []*PodSandbox
	ListContainers(ctx context.Context) []*Container
	// UpdateContainer applies new resources to a container a plugin asked
	// to update, without telling plugins about it again.
	UpdateContainer(ctx context.Context, id string, res *specs.LinuxResources) error
	// EvictContainer stops a container a plugin asked to evict.
	EvictContainer(ctx context.Context, id, reason string) error
}

// Adapter relays the runtime's lifecycle to NRI plugins. A nil Adapter, or
// one built from a config with Enable false, does nothing.
type Adapter struct {
	nri    *adaptation.Adaptation
	domain Domain

	// mu orders the stop and remove events of an object and guards
	// stopped: StopPodSandbox and StopContainer reach plugins once, before
	// the remove.
	mu      sync.Mutex
	stopped map[string]bool
}

// New builds the adapter; it listens once Start is called. name and
// version are what plugins see of the runtime.
func New(cfg Config, name, version string, d Domain) (*Adapter, error) {
	if !cfg.Enable {
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Adapter{domain: d, stopped: map[string]bool{}}
	// The adaptation keeps its timeouts in package variables: set once,
	// here, before any plugin connects.
	adaptation.SetPluginRegistrationTimeout(time.Duration(cfg.PluginRegistrationTimeout))
	adaptation.SetPluginRequestTimeout(time.Duration(cfg.PluginRequestTimeout))
	r, err := adaptation.New(name, version, a.synchronize, a.updateFromPlugin,
		adaptation.WithSocketPath(cfg.SocketPath),
		adaptation.WithPluginPath(cfg.PluginPath),
		adaptation.WithPluginConfigPath(cfg.PluginConfigPath))
	if err != nil {
		return nil, fmt.Errorf("create NRI adaptation: %w", err)
	}
	a.nri = r
	return a, nil
}

// Enabled reports whether plugins are told anything.
func (a *Adapter) Enabled() bool { return a != nil && a.nri != nil }

// Start starts the pre-installed plugins and listens for external ones.
func (a *Adapter) Start() error {
	if !a.Enabled() {
		return nil
	}
	if err := a.nri.Start(); err != nil {
		return fmt.Errorf("start NRI: %w", err)
	}
	return nil
}

// Stop closes the plugins' connections and the socket.
func (a *Adapter) Stop() {
	if a.Enabled() {
		a.nri.Stop()
	}
}

// BlockSync keeps a connecting plugin from being synchronized until the
// returned func is called. A create holds it from before its NRI event
// until its object is listed by Domain (or the create failed), so a plugin
// that connects meanwhile learns of the object one way or the other.
func (a *Adapter) BlockSync() (unblock func()) {
	if !a.Enabled() {
		return func() {}
	}
	b := a.nri.BlockPluginSync()
	return b.Unblock
}

// RunPodSandbox tells plugins a pod sandbox is being created; an error
// fails the create.
func (a *Adapter) RunPodSandbox(ctx context.Context, pod *PodSandbox) error {
	if !a.Enabled() {
		return nil
	}
	if err := a.nri.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: toAPIPod(pod)}); err != nil {
		return fmt.Errorf("NRI RunPodSandbox: %w", err)
	}
	return nil
}

// StopPodSandbox tells plugins a pod sandbox stopped, once.
func (a *Adapter) StopPodSandbox(ctx context.Context, pod *PodSandbox) error {
	if !a.Enabled() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped[podKey(pod.ID)] {
		return nil
	}
	a.stopped[podKey(pod.ID)] = true
	if err := a.nri.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: toAPIPod(pod)}); err != nil {
		return fmt.Errorf("NRI StopPodSandbox: %w", err)
	}
	return nil
}

// RemovePodSandbox tells plugins a pod sandbox is gone.
func (a *Adapter) RemovePodSandbox(ctx context.Context, pod *PodSandbox) error {
	if !a.Enabled() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.stopped, podKey(pod.ID))
	if err := a.nri.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: toAPIPod(pod)}); err != nil {
		return fmt.Errorf("NRI RemovePodSandbox: %w", err)
	}
	return nil
}

// CreateContainer lets plugins adjust a container before its task is
// created: the adjustments are applied to ctr.Spec. Updates and evictions
// of other containers that plugins ask for are carried out; an error fails
// the create.
func (a *Adapter) CreateContainer(ctx context.Context, pod *PodSandbox, ctr *Container) error {
	if !a.Enabled() {
		return nil
	}
	resp, err := a.nri.CreateContainer(ctx, &api.CreateContainerRequest{Pod: toAPIPod(pod), Container: toAPIContainer(ctr)})
	if err != nil {
		return fmt.Errorf("NRI CreateContainer: %w", err)
	}
	if ctr.Spec == nil {
		ctr.Spec = &specs.Spec{}
	}
	if err := ApplyAdjustment(ctr.Spec, resp.GetAdjust()); err != nil {
		return err
	}
	if err := a.applyUpdates(ctx, resp.GetUpdate()); err != nil {
		return err
	}
	a.evict(ctx, resp.GetEvict())
	return nil
}

// UndoCreateContainer tells plugins that a container they saw created
// will not run after all: stop, then remove.
func (a *Adapter) UndoCreateContainer(ctx context.Context, pod *PodSandbox, ctr *Container) {
	if !a.Enabled() {
		return
	}
	if err := a.RemoveContainer(ctx, pod, ctr); err != nil {
		klog.FromContext(ctx).Error(err, "Failed to tell NRI plugins of a failed create", "containerID", ctr.ID)
	}
}

// PostCreateContainer tells plugins the container was created.
func (a *Adapter) PostCreateContainer(ctx context.Context, pod *PodSandbox, ctr *Container) error {
	if !a.Enabled() {
		return nil
	}
	return wrap("PostCreateContainer", a.nri.PostCreateContainer(ctx, &api.PostCreateContainerRequest{Pod: toAPIPod(pod), Container: toAPIContainer(ctr)}))
}

// StartContainer tells plugins the container is about to start; an error
// fails the start.
func (a *Adapter) StartContainer(ctx context.Context, pod *PodSandbox, ctr *Container) error {
	if !a.Enabled() {
		return nil
	}
	return wrap("StartContainer", a.nri.StartContainer(ctx, &api.StartContainerRequest{Pod: toAPIPod(pod), Container: toAPIContainer(ctr)}))
}

// PostStartContainer tells plugins the container started.
func (a *Adapter) PostStartContainer(ctx context.Context, pod *PodSandbox, ctr *Container) error {
	if !a.Enabled() {
		return nil
	}
	return wrap("PostStartContainer", a.nri.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: toAPIPod(pod), Container: toAPIContainer(ctr)}))
}

// UpdateContainer lets plugins adjust a resource update of a container
// before it is applied: res is changed in place. Updates of other
// containers and evictions are carried out.
func (a *Adapter) UpdateContainer(ctx context.Context, pod *PodSandbox, ctr *Container, res *specs.LinuxResources) error {
	if !a.Enabled() {
		return nil
	}
	resp, err := a.nri.UpdateContainer(ctx, &api.UpdateContainerRequest{
		Pod: toAPIPod(pod), Container: toAPIContainer(ctr), LinuxResources: api.FromOCILinuxResources(res, nil),
	})
	if err != nil {
		return fmt.Errorf("NRI UpdateContainer: %w", err)
	}
	var others []*api.ContainerUpdate
	for _, u := range resp.GetUpdate() {
		if u == nil {
			// The adaptation appends the requested container's update
			// even when no plugin made one (always, with no plugins).
			continue
		}
		if u.GetContainerId() == ctr.ID {
			MergeResources(res, u.GetLinux().GetResources())
			continue
		}
		others = append(others, u)
	}
	if err := a.applyUpdates(ctx, others); err != nil {
		return err
	}
	a.evict(ctx, resp.GetEvict())
	return nil
}

// PostUpdateContainer tells plugins the container's resources changed.
func (a *Adapter) PostUpdateContainer(ctx context.Context, pod *PodSandbox, ctr *Container) error {
	if !a.Enabled() {
		return nil
	}
	return wrap("PostUpdateContainer", a.nri.PostUpdateContainer(ctx, &api.PostUpdateContainerRequest{Pod: toAPIPod(pod), Container: toAPIContainer(ctr)}))
}

// StopContainer tells plugins the container stopped (by request or on its
// own), once. Updates plugins ask for in return are carried out.
func (a *Adapter) StopContainer(ctx context.Context, pod *PodSandbox, ctr *Container) error {
	if !a.Enabled() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stopContainer(ctx, pod, ctr)
}

// stopContainer sends StopContainer unless it was sent; a.mu is held.
func (a *Adapter) stopContainer(ctx context.Context, pod *PodSandbox, ctr *Container) error {
	if a.stopped[ctrKey(ctr.ID)] {
		return nil
	}
	a.stopped[ctrKey(ctr.ID)] = true
	resp, err := a.nri.StopContainer(ctx, &api.StopContainerRequest{Pod: toAPIPod(pod), Container: toAPIContainer(ctr)})
	if err != nil {
		return fmt.Errorf("NRI StopContainer: %w", err)
	}
	// Domain.UpdateContainer does not take a.mu, so this cannot deadlock.
	if err := a.applyUpdates(ctx, resp.GetUpdate()); err != nil {
		klog.FromContext(ctx).Error(err, "Failed to apply NRI updates requested at a container's stop", "containerID", ctr.ID)
	}
	return nil
}

// RemoveContainer tells plugins the container is gone, after its stop.
func (a *Adapter) RemoveContainer(ctx context.Context, pod *PodSandbox, ctr *Container) error {
	if !a.Enabled() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.stopContainer(ctx, pod, ctr); err != nil {
		klog.FromContext(ctx).Error(err, "NRI StopContainer before remove failed", "containerID", ctr.ID)
	}
	delete(a.stopped, ctrKey(ctr.ID))
	return wrap("RemoveContainer", a.nri.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: toAPIPod(pod), Container: toAPIContainer(ctr)}))
}

// MarkStopped marks an object (restored at start-up) as already stopped,
// so plugins are not told of its stop again.
func (a *Adapter) MarkStopped(podSandboxID, containerID string) {
	if !a.Enabled() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if podSandboxID != "" {
		a.stopped[podKey(podSandboxID)] = true
	}
	if containerID != "" {
		a.stopped[ctrKey(containerID)] = true
	}
}

// synchronize hands a connecting plugin every pod and container. The
// adaptation holds its sync lock meanwhile, so creates (BlockSync) wait.
func (a *Adapter) synchronize(ctx context.Context, cb adaptation.SyncCB) error {
	var pods []*api.PodSandbox
	for _, p := range a.domain.ListPodSandboxes(ctx) {
		pods = append(pods, toAPIPod(p))
	}
	var ctrs []*api.Container
	for _, c := range a.domain.ListContainers(ctx) {
		ctrs = append(ctrs, toAPIContainer(c))
	}
	updates, err := cb(ctx, pods, ctrs)
	if err != nil {
		return fmt.Errorf("synchronize NRI plugin: %w", err)
	}
	return a.applyUpdates(ctx, updates)
}

// updateFromPlugin carries out updates a plugin sends on its own; it
// returns the ones that failed.
func (a *Adapter) updateFromPlugin(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	var failed []*api.ContainerUpdate
	for _, u := range updates {
		if u == nil {
			continue
		}
		if err := a.domain.UpdateContainer(ctx, u.GetContainerId(), UpdateResources(u)); err != nil {
			klog.FromContext(ctx).V(2).Info("NRI plugin's container update failed", "containerID", u.GetContainerId(), "err", err)
			if !u.GetIgnoreFailure() {
				failed = append(failed, u)
			}
		}
	}
	return failed, nil
}

// applyUpdates carries out updates that came with an event's response.
func (a *Adapter) applyUpdates(ctx context.Context, updates []*api.ContainerUpdate) error {
	failed, _ := a.updateFromPlugin(ctx, updates)
	if len(failed) > 0 {
		return fmt.Errorf("NRI: update of container %s failed", failed[0].GetContainerId())
	}
	return nil
}

// evict stops the containers plugins asked to evict; failures are logged.
func (a *Adapter) evict(ctx context.Context, evictions []*api.ContainerEviction) {
	for _, e := range evictions {
		if err := a.domain.EvictContainer(ctx, e.GetContainerId(), e.GetReason()); err != nil {
			klog.FromContext(ctx).Error(err, "Failed to evict a container for an NRI plugin", "containerID", e.GetContainerId(), "reason", e.GetReason())
		}
	}
}

// UpdateResources is the OCI form of the resources an update sets.
func UpdateResources(u *api.ContainerUpdate) *specs.LinuxResources {
	res := &specs.LinuxResources{}
	if r := u.GetLinux().GetResources(); r != nil {
		MergeResources(res, r)
	}
	return res
}

func wrap(event string, err error) error {
	if err != nil {
		return fmt.Errorf("NRI %s: %w", event, err)
	}
	return nil
}

func podKey(id string) string { return "pod/" + id }
func ctrKey(id string) string { return "ctr/" + id }
