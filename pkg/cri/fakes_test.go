package cri

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/network"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// fakeTasks is an in-memory taskRuntime: no shim, no runc, no root. Its
// tasks start and exit when told to (fakeTask.exit) or when killed, and
// their exits reach subscribers as the real runtime's TaskExit events do.
// Hooks let a test hold or fail a call at the moment it matters.
type fakeTasks struct {
	mu      sync.Mutex
	tasks   map[string]*fakeTask // by ns/id
	subs    []chan runtime.Event
	nextPid int
	created []string // ids, in the order Create was called

	// onCreate, when set, runs at the start of Create (before the task
	// exists); an error fails the create.
	onCreate func(ctx context.Context, id string) error
	// onStart, when set, runs when a task starts, after it is running
	// and before Start returns; an error fails the start.
	onStart func(ctx context.Context, t *fakeTask) error
	// onKill, when set, runs when a task is killed, before it exits.
	onKill func(t *fakeTask)
}

func newFakeTasks() *fakeTasks { return &fakeTasks{tasks: map[string]*fakeTask{}, nextPid: 1000} }

var _ taskRuntime = (*fakeTasks)(nil)

func (f *fakeTasks) Create(ctx context.Context, ns, id string, opts runtime.CreateOpts) (taskHandle, error) {
	f.mu.Lock()
	f.created = append(f.created, id)
	hook := f.onCreate
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, id); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := ns + "/" + id
	if _, ok := f.tasks[key]; ok {
		return nil, fmt.Errorf("task %s: %w", key, errdefs.ErrAlreadyExists)
	}
	f.nextPid++
	t := &fakeTask{f: f, ns: ns, id: id, pid: f.nextPid, exited: make(chan struct{})}
	f.tasks[key] = t
	return t, nil
}

func (f *fakeTasks) Get(ns, id string) (taskHandle, error) {
	t, err := f.task(ns, id)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// task is Get with the fake's own type.
func (f *fakeTasks) task(ns, id string) (*fakeTask, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[ns+"/"+id]
	if !ok {
		return nil, fmt.Errorf("task %s/%s: %w", ns, id, errdefs.ErrNotFound)
	}
	return t, nil
}

func (f *fakeTasks) Tasks(ns string) []taskHandle {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []taskHandle
	for _, t := range f.tasks {
		if t.ns == ns {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

func (f *fakeTasks) Delete(ctx context.Context, ns, id string) (*runtime.Exit, error) {
	t, err := f.task(ns, id)
	if err != nil {
		return nil, err
	}
	select {
	case <-t.exited:
	default:
		return nil, fmt.Errorf("task %s is running: %w", id, errdefs.ErrFailedPrecondition)
	}
	f.mu.Lock()
	delete(f.tasks, ns+"/"+id)
	f.mu.Unlock()
	return t.exit, nil
}

// Subscribe returns a channel of every event from now on. It is never
// closed: the Service's event loop ends with its own context.
func (f *fakeTasks) Subscribe(ctx context.Context) <-chan runtime.Event {
	ch := make(chan runtime.Event, 1024)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch
}

// publish hands ev to every subscriber.
func (f *fakeTasks) publish(ev runtime.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- ev
	}
}

// createdIDs is what Create was called with.
func (f *fakeTasks) createdIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.created...)
}

// fakeTask is one task of fakeTasks.
type fakeTask struct {
	f      *fakeTasks
	ns, id string
	pid    int

	exitOnce sync.Once
	exited   chan struct{}
	exit     *runtime.Exit

	mu      sync.Mutex
	updates []*specs.LinuxResources
}

var _ taskHandle = (*fakeTask)(nil)

func (t *fakeTask) ID() string        { return t.id }
func (t *fakeTask) Namespace() string { return t.ns }
func (t *fakeTask) Pid() int          { return t.pid }
func (t *fakeTask) Bundle() string    { return "/nonexistent/bundle/" + t.id }

func (t *fakeTask) Start(ctx context.Context) error {
	select {
	case <-t.exited:
		return fmt.Errorf("start task %s: it has exited: %w", t.id, errdefs.ErrFailedPrecondition)
	default:
	}
	t.f.mu.Lock()
	hook := t.f.onStart
	t.f.mu.Unlock()
	if hook != nil {
		return hook(ctx, t)
	}
	return nil
}

// Kill ends the task at once with 128+sig, like a process that does not
// handle it.
func (t *fakeTask) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	select {
	case <-t.exited:
		return fmt.Errorf("task %s: %w", t.id, errdefs.ErrNotFound)
	default:
	}
	t.f.mu.Lock()
	hook := t.f.onKill
	t.f.mu.Unlock()
	if hook != nil {
		hook(t)
	}
	t.exitWith(128 + int(sig))
	return nil
}

// exitWith ends the task with status, once, and publishes its exit.
func (t *fakeTask) exitWith(status int) {
	t.exitOnce.Do(func() {
		t.exit = &runtime.Exit{Pid: t.pid, Status: status, ExitedAt: time.Now()}
		close(t.exited)
		t.f.publish(runtime.Event{Type: runtime.EventTaskExit, Namespace: t.ns, ID: t.id, Pid: t.pid, Exit: t.exit, Timestamp: t.exit.ExitedAt})
	})
}

func (t *fakeTask) Exited() <-chan struct{} { return t.exited }

func (t *fakeTask) Wait(ctx context.Context) (*runtime.Exit, error) {
	select {
	case <-t.exited:
		return t.exit, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *fakeTask) Update(ctx context.Context, res *specs.LinuxResources) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.updates = append(t.updates, res)
	return nil
}

func (t *fakeTask) ReopenLog(ctx context.Context) error { return nil }

func (t *fakeTask) ResizePty(ctx context.Context, width, height uint32) error { return nil }

func (t *fakeTask) Attach(ctx context.Context, req runtime.AttachOpts) (*runtime.Attachment, error) {
	return nil, fmt.Errorf("attach to a fake task: %w", errdefs.ErrNotImplemented)
}

func (t *fakeTask) Exec(ctx context.Context, execID string, spec *specs.Process, io runtime.IO) (*runtime.Process, error) {
	return nil, fmt.Errorf("exec in a fake task: %w", errdefs.ErrNotImplemented)
}

// fakeNetwork is a pod network that is always ready and sets nothing up;
// the contract tests run host-network pods, which never reach it.
type fakeNetwork struct{}

var _ networkManager = fakeNetwork{}

func (fakeNetwork) Ready() error                 { return nil }
func (fakeNetwork) SetPodCIDR(cidr string) error { return nil }
func (fakeNetwork) Setup(ctx context.Context, req network.SetupRequest) (*network.Result, error) {
	return &network.Result{}, nil
}
func (fakeNetwork) Teardown(ctx context.Context, req network.SetupRequest) error { return nil }
