package cri

import (
	"context"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/cri/images"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/network"
	"github.com/cri-runtime/cri-runtime/pkg/nri"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// What the facade needs of the layers below it, declared here, by the
// consumer (STYLE.md §A.4): the task runtime and its tasks, the image
// service, the pod network, the store of its records and the NRI adapter.
// The daemon hands in the real ones; the package's tests hand in fakes
// (contract_test.go), so the CRI contract is tested without shims, runc
// or root.

// taskRuntime is what the facade needs of the task runtime; runtimeTasks
// adapts *runtime.Runtime to it.
type taskRuntime interface {
	Create(ctx context.Context, ns, id string, opts runtime.CreateOpts) (taskHandle, error)
	Get(ns, id string) (taskHandle, error)
	Tasks(ns string) []taskHandle
	Delete(ctx context.Context, ns, id string) (*runtime.Exit, error)
	Subscribe(ctx context.Context) <-chan runtime.Event
}

// taskHandle is what the facade needs of one task: a container's, or a
// sandbox's pause.
type taskHandle interface {
	ID() string
	Namespace() string
	Pid() int
	Bundle() string
	Start(ctx context.Context) error
	Kill(ctx context.Context, sig syscall.Signal, all bool) error
	// Exited is closed once the task's init exited; Wait returns how.
	Exited() <-chan struct{}
	Wait(ctx context.Context) (*runtime.Exit, error)
	Update(ctx context.Context, res *specs.LinuxResources) error
	ReopenLog(ctx context.Context) error
	ResizePty(ctx context.Context, width, height uint32) error
	Attach(ctx context.Context, req runtime.AttachOpts) (*runtime.Attachment, error)
	Exec(ctx context.Context, execID string, spec *specs.Process, io runtime.IO) (*runtime.Process, error)
}

// *runtime.Task is the facade's task. The check is here, not beside the
// type: pkg/runtime must not import pkg/cri.
var _ taskHandle = (*runtime.Task)(nil)

// runtimeTasks is *runtime.Runtime seen as a taskRuntime: its tasks
// behind taskHandle.
type runtimeTasks struct{ rt *runtime.Runtime }

var _ taskRuntime = runtimeTasks{}

func (r runtimeTasks) Create(ctx context.Context, ns, id string, opts runtime.CreateOpts) (taskHandle, error) {
	t, err := r.rt.Create(ctx, ns, id, opts)
	if err != nil {
		return nil, err // never a nil *runtime.Task in a non-nil interface
	}
	return t, nil
}

func (r runtimeTasks) Get(ns, id string) (taskHandle, error) {
	t, err := r.rt.Get(ns, id)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (r runtimeTasks) Tasks(ns string) []taskHandle {
	ts := r.rt.Tasks(ns)
	out := make([]taskHandle, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

func (r runtimeTasks) Delete(ctx context.Context, ns, id string) (*runtime.Exit, error) {
	return r.rt.Delete(ctx, ns, id)
}

func (r runtimeTasks) Subscribe(ctx context.Context) <-chan runtime.Event { return r.rt.Subscribe(ctx) }

// imageService is what the facade needs of the image service: what the
// ImageService serves (images.Store), and the rootfs and image volumes of
// containers.
type imageService interface {
	images.Store
	PrepareRootfs(ctx context.Context, containerID, imageID string) ([]image.Mount, error)
	RemoveRootfs(ctx context.Context, containerID string) error
	ImageMount(ctx context.Context, mountID, imageRef string) ([]image.Mount, error)
	ImageMounts(ctx context.Context) ([]string, error)
	RemoveImageMount(ctx context.Context, mountID string) error
}

// networkManager is what the facade needs of the pod network.
type networkManager interface {
	Ready() error
	SetPodCIDR(cidr string) error
	Setup(ctx context.Context, req network.SetupRequest) (*network.Result, error)
	Teardown(ctx context.Context, req network.SetupRequest) error
}

// recordStore is what the facade needs of the metadata store: the records
// of its sandboxes and containers.
type recordStore interface {
	Put(ctx context.Context, kind store.Kind, key string, v any) error
	Delete(ctx context.Context, kind store.Kind, key string) error
	List(ctx context.Context, kind store.Kind, fn func(key string, dec store.Decoder) error) error
}

var _ recordStore = (*store.Store)(nil)

// nriRelay is what the facade needs of the NRI adapter (nri.go): the
// lifecycle events plugins see, and the hooks that may adjust or refuse.
// A disabled one does nothing (a nil *nri.Adapter is one).
type nriRelay interface {
	Enabled() bool
	Start() error
	Stop()
	// BlockSync holds a connecting plugin's synchronization until unblock.
	BlockSync() (unblock func())
	MarkStopped(podSandboxID, containerID string)

	RunPodSandbox(ctx context.Context, pod *nri.PodSandbox) error
	StopPodSandbox(ctx context.Context, pod *nri.PodSandbox) error
	RemovePodSandbox(ctx context.Context, pod *nri.PodSandbox) error

	CreateContainer(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container) error
	UndoCreateContainer(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container)
	PostCreateContainer(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container) error
	StartContainer(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container) error
	PostStartContainer(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container) error
	UpdateContainer(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container, res *specs.LinuxResources) error
	PostUpdateContainer(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container) error
	StopContainer(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container) error
	RemoveContainer(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container) error
}

var _ nriRelay = (*nri.Adapter)(nil)
