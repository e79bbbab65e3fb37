// Package runtime is the task runtime: it creates, monitors, deletes and
// restores tasks, each owned by its own shim process that drives the OCI
// runtime. Shims outlive the daemon: Restore reconnects to live shims and
// cleans up after dead ones. It speaks tasks — Task, Exec, Exit, Bundle,
// Namespace — and publishes their lifecycle as events.
package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// Mount is a filesystem mount for a task's rootfs.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// IO says how a process's stdio is wired (see api.IO).
type IO struct {
	Terminal  bool
	Stdin     bool
	StdinOnce bool
	// LogPath receives stdout and stderr in the CRI log format.
	LogPath string
}

// RuntimeOpts selects the OCI runtime of a task. They are stored with the
// task, so a restored task is driven by what created it.
type RuntimeOpts struct {
	// Binary is the OCI runtime (runc, crun, …).
	Binary string `json:"binary"`
	// Root is the OCI runtime's state dir (--root).
	Root string `json:"root"`
}

// CreateOpts describe a new task.
type CreateOpts struct {
	Spec    *specs.Spec
	Rootfs  []Mount
	IO      IO
	Runtime RuntimeOpts
}

// Exit is how a process ended.
type Exit struct {
	Pid       int
	Status    int
	ExitedAt  time.Time
	OOMKilled bool
}

// taskRecord is what the store keeps of a task.
type taskRecord struct {
	Namespace string      `json:"namespace"`
	ID        string      `json:"id"`
	Bundle    string      `json:"bundle"`
	Socket    string      `json:"socket"`
	Runtime   RuntimeOpts `json:"runtime"`
	CreatedAt time.Time   `json:"createdAt"`
}

func taskKey(ns, id string) string { return ns + "/" + id }

// Runtime is the task runtime.
type Runtime struct {
	layout     layout
	store      *store.Store
	shimBinary string
	shimDebug  bool
	events     *exchange
	restored   restoreCounts // what Restore found (RestoreStats)

	// mu guards tasks and reserved (map operations only: never held across
	// a shim call or an exec).
	mu       sync.Mutex
	tasks    map[string]*Task
	reserved map[string]struct{}

	// ctx is cancelled by Close: it owns the monitors.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the task runtime over the state dir. Call Subscribe before
// Restore so that no event of the restore is missed.
func New(state string, st *store.Store, cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	shim, err := findShim(cfg.ShimBinary)
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{filepath.Join(state, "tasks"), filepath.Join(state, "s")} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(filepath.Join(state, "s"), 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{
		layout:     layout{state: state},
		store:      st,
		shimBinary: shim,
		shimDebug:  cfg.ShimDebug,
		events:     newExchange(),
		tasks:      map[string]*Task{},
		reserved:   map[string]struct{}{},
		ctx:        ctx,
		cancel:     cancel,
	}, nil
}

// findShim resolves the shim binary: the configured one, the one next to
// this executable, or the one on PATH.
func findShim(configured string) (string, error) {
	const name = "cri-runtime-shim"
	if configured != "" {
		return exec.LookPath(configured)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("find %s next to the daemon or on PATH: %w", name, err)
	}
	return p, nil
}

// Subscribe returns a channel of every task event from now until ctx ends.
// A subscriber that falls too far behind has its channel closed.
func (r *Runtime) Subscribe(ctx context.Context) <-chan Event { return r.events.subscribe(ctx) }

// DroppedSubscribers counts subscribers cut off for being slow.
func (r *Runtime) DroppedSubscribers() int64 { return r.events.dropped.Load() }

// Close stops monitoring. Tasks and their shims keep running.
func (r *Runtime) Close() {
	r.cancel()
	r.wg.Wait()
}

// Get returns a task.
func (r *Runtime) Get(ns, id string) (*Task, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tasks[taskKey(ns, id)]
	if !ok {
		return nil, fmt.Errorf("task %s/%s: %w", ns, id, errdefs.ErrNotFound)
	}
	return t, nil
}

// Tasks lists the tasks of a namespace, sorted by id.
func (r *Runtime) Tasks(ns string) []*Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Task
	for _, t := range r.tasks {
		if t.ns == ns {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (r *Runtime) reserve(ns, id string) error {
	key := taskKey(ns, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.tasks[key]; ok {
		return fmt.Errorf("task %s: %w", key, errdefs.ErrAlreadyExists)
	}
	if _, ok := r.reserved[key]; ok {
		return fmt.Errorf("task %s is being created or deleted: %w", key, errdefs.ErrAlreadyExists)
	}
	r.reserved[key] = struct{}{}
	return nil
}

func (r *Runtime) release(ns, id string) {
	r.mu.Lock()
	delete(r.reserved, taskKey(ns, id))
	r.mu.Unlock()
}

func (r *Runtime) add(t *Task) {
	r.mu.Lock()
	r.tasks[taskKey(t.ns, t.id)] = t
	r.mu.Unlock()
}

func (r *Runtime) forget(t *Task) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := taskKey(t.ns, t.id)
	if r.tasks[key] != t {
		return false
	}
	delete(r.tasks, key)
	return true
}

// Create creates a task: the bundle, its shim, and the init process
// (created, not started). Any failure undoes every step.
func (r *Runtime) Create(ctx context.Context, ns, id string, opts CreateOpts) (_ *Task, retErr error) {
	if err := ValidateID("namespace", ns); err != nil {
		return nil, err
	}
	if err := ValidateID("task id", id); err != nil {
		return nil, err
	}
	if opts.Spec == nil {
		return nil, fmt.Errorf("task %s: no spec: %w", id, errdefs.ErrInvalidArgument)
	}
	if opts.Runtime.Binary == "" {
		opts.Runtime.Binary = "runc"
	}
	if opts.Runtime.Root == "" {
		opts.Runtime.Root = filepath.Join(r.layout.state, "runtime", filepath.Base(opts.Runtime.Binary), ns)
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "taskID", id, "namespace", ns)
	if err := r.reserve(ns, id); err != nil {
		return nil, err
	}
	defer r.release(ns, id)

	var undo cleanups
	defer func() {
		if retErr != nil {
			undo.run(logger)
		}
	}()
	bundle := r.layout.bundle(ns, id)
	rec := taskRecord{Namespace: ns, ID: id, Bundle: bundle, Socket: r.layout.socket(ns, id), Runtime: opts.Runtime, CreatedAt: time.Now()}
	if err := r.store.Create(ctx, store.KindTasks, taskKey(ns, id), rec); err != nil {
		return nil, err
	}
	undo.add(func(ctx context.Context) error { return r.store.Delete(ctx, store.KindTasks, taskKey(ns, id)) })
	if err := writeSpec(bundle, opts.Spec); err != nil {
		return nil, fmt.Errorf("write bundle of task %s: %w", id, err)
	}
	undo.add(func(context.Context) error { return removeBundle(bundle) })

	shim, err := r.startShim(ctx, rec)
	if err != nil {
		return nil, err
	}
	undo.add(func(ctx context.Context) error { return shim.shutdown(ctx) })

	pid, err := shim.Create(ctx, api.CreateRequest{ID: id, Bundle: bundle, Rootfs: toAPIMounts(opts.Rootfs), IO: toAPIIO(opts.IO)})
	if err != nil {
		return nil, fmt.Errorf("create task %s: %w", id, err)
	}
	t := newTask(r, rec, shim, pid)
	r.add(t)
	r.startMonitor(t)
	logger.V(2).Info("Created task", "pid", pid)
	r.events.publish(Event{Type: EventTaskCreate, Namespace: ns, ID: id, Pid: pid})
	return t, nil
}

// Delete deletes a stopped (or never started) task: its init process, its
// shim and its bundle, and returns how it exited.
func (r *Runtime) Delete(ctx context.Context, ns, id string) (*Exit, error) {
	t, err := r.Get(ns, id)
	if err != nil {
		return nil, err
	}
	return t.delete(ctx)
}

func toAPIMounts(ms []Mount) []api.Mount {
	out := make([]api.Mount, 0, len(ms))
	for _, m := range ms {
		out = append(out, api.Mount{Type: m.Type, Source: m.Source, Options: m.Options})
	}
	return out
}

func toAPIIO(io IO) api.IO {
	return api.IO{Terminal: io.Terminal, Stdin: io.Stdin, StdinOnce: io.StdinOnce, LogPath: io.LogPath}
}

func fromAPIExit(e *api.Exit) *Exit {
	if e == nil {
		return nil
	}
	return &Exit{Pid: e.Pid, Status: e.Status, ExitedAt: e.ExitedAt, OOMKilled: e.OOMKilled}
}

// cleanups is a LIFO stack of undo steps; each runs on a fresh context with
// its own deadline, so a cancelled request still cleans up.
type cleanups []func(context.Context) error

func (c *cleanups) add(f func(context.Context) error) { *c = append(*c, f) }

func (c cleanups) run(logger klog.Logger) {
	for i := len(c) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c[i](ctx); err != nil && !errdefs.IsNotFound(err) {
			logger.Error(err, "Failed to undo a step of a failed create")
		}
		cancel()
	}
}
