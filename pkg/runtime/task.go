package runtime

import (
	"context"
	"fmt"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/client"
)

// Task is one task: an init process owned by its own shim, and the exec
// processes added to it.
type Task struct {
	r    *Runtime
	rec  taskRecord
	ns   string
	id   string
	shim *shimConn
	pid  int

	// exited is closed once the init's exit is known; exit is set before.
	exitOnce sync.Once
	exited   chan struct{}
	exit     *Exit

	// stopMonitor ends the monitor goroutine; monitorDone is closed when it
	// has returned.
	stopMonitor context.CancelFunc
	monitorDone chan struct{}

	// deleteOnce makes delete and dead-shim cleanup happen once.
	deleteOnce sync.Once
	deleteExit *Exit
	deleteErr  error
}

func newTask(r *Runtime, rec taskRecord, shim *shimConn, pid int) *Task {
	return &Task{r: r, rec: rec, ns: rec.Namespace, id: rec.ID, shim: shim, pid: pid, exited: make(chan struct{}), monitorDone: make(chan struct{})}
}

// ID is the task's id.
func (t *Task) ID() string { return t.id }

// Namespace is the task's namespace.
func (t *Task) Namespace() string { return t.ns }

// Pid is the init process's pid.
func (t *Task) Pid() int { return t.pid }

// Bundle is the task's bundle dir.
func (t *Task) Bundle() string { return t.rec.Bundle }

// ShimPid is the pid of the task's shim.
func (t *Task) ShimPid() int { return t.shim.pid }

// Runtime is the OCI runtime the task was created with.
func (t *Task) Runtime() RuntimeOpts { return t.rec.Runtime }

// Start starts the init process.
func (t *Task) Start(ctx context.Context) error {
	pid, err := t.shim.Start(ctx, "")
	if err != nil {
		return fmt.Errorf("start task %s: %w", t.id, err)
	}
	klog.FromContext(ctx).V(2).Info("Started task", "taskID", t.id, "pid", pid)
	t.r.events.publish(Event{Type: EventTaskStart, Namespace: t.ns, ID: t.id, Pid: pid})
	return nil
}

// Kill signals the init process, or with all every process of the task.
func (t *Task) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	if err := t.shim.Kill(ctx, api.KillRequest{Signal: uint32(sig), All: all}); err != nil {
		return fmt.Errorf("kill task %s: %w", t.id, err)
	}
	return nil
}

// State is the init process's state as the shim sees it.
func (t *Task) State(ctx context.Context) (*api.StateResponse, error) {
	st, err := t.shim.State(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("state of task %s: %w", t.id, err)
	}
	return &st, nil
}

// Exited is closed once the init process has exited.
func (t *Task) Exited() <-chan struct{} { return t.exited }

// Wait waits for the init process to exit and returns how.
func (t *Task) Wait(ctx context.Context) (*Exit, error) {
	select {
	case <-t.exited:
		return t.exit, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Pids lists the pids of the task's processes.
func (t *Task) Pids(ctx context.Context) ([]int, error) {
	pids, err := t.shim.Pids(ctx)
	if err != nil {
		return nil, fmt.Errorf("pids of task %s: %w", t.id, err)
	}
	return pids, nil
}

// Update changes the task's resources.
func (t *Task) Update(ctx context.Context, res *specs.LinuxResources) error {
	if err := t.shim.Update(ctx, res); err != nil {
		return fmt.Errorf("update task %s: %w", t.id, err)
	}
	return nil
}

// ReopenLog makes the shim reopen the task's log file (log rotation).
func (t *Task) ReopenLog(ctx context.Context) error {
	if err := t.shim.ReopenLog(ctx); err != nil {
		return fmt.Errorf("reopen log of task %s: %w", t.id, err)
	}
	return nil
}

// ResizePty resizes the init's pty.
func (t *Task) ResizePty(ctx context.Context, width, height uint32) error {
	return t.shim.ResizePty(ctx, api.ResizePtyRequest{Width: width, Height: height})
}

// CloseStdin closes the init's stdin.
func (t *Task) CloseStdin(ctx context.Context) error { return t.shim.CloseStdin(ctx, "") }

// Attach attaches to the init's stdio; the returned connection carries
// api Frames.
func (t *Task) Attach(ctx context.Context, req AttachOpts) (*Attachment, error) {
	return t.shim.Attach(ctx, api.AttachRequest{Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr})
}

// Attachment is an attached stdio stream of a process; named here so that
// a layer above can declare what it needs of a Task without importing the
// shim's client.
type Attachment = client.Attachment

// AttachOpts pick the streams to attach to.
type AttachOpts struct {
	Stdin, Stdout, Stderr bool
}

// setExit records the init's exit once and wakes every waiter. It reports
// whether this call was the one that set it.
func (t *Task) setExit(e *Exit) bool {
	set := false
	t.exitOnce.Do(func() {
		t.exit = e
		close(t.exited)
		set = true
	})
	return set
}

// delete deletes the init process, the shim and the bundle, once.
func (t *Task) delete(ctx context.Context) (*Exit, error) {
	apiExit, err := t.shim.Delete(ctx, "")
	if err != nil {
		if !isShimGone(err) {
			return nil, fmt.Errorf("delete task %s: %w", t.id, err)
		}
		// The shim died under us: clean up after it.
		return t.r.cleanupDead(context.WithoutCancel(ctx), t, nil)
	}
	t.deleteOnce.Do(func() {
		t.deleteExit, t.deleteErr = t.r.finishDelete(ctx, t, fromAPIExit(&apiExit))
	})
	return t.deleteExit, t.deleteErr
}

// Process is an exec process of a task.
type Process struct {
	t  *Task
	id string
}

// Exec adds a process to the task (created, not started).
func (t *Task) Exec(ctx context.Context, execID string, spec *specs.Process, io IO) (*Process, error) {
	if err := ValidateID("exec id", execID); err != nil {
		return nil, err
	}
	if err := t.shim.Exec(ctx, execID, spec, toAPIIO(io)); err != nil {
		return nil, fmt.Errorf("exec %s in task %s: %w", execID, t.id, err)
	}
	return &Process{t: t, id: execID}, nil
}

// ID is the exec id.
func (p *Process) ID() string { return p.id }

// Attach attaches to the process's stdio; attach before Start to see all
// of its output. The connection carries api Frames.
func (p *Process) Attach(ctx context.Context, req AttachOpts) (*Attachment, error) {
	return p.t.shim.Attach(ctx, api.AttachRequest{ExecID: p.id, Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr})
}

// Start starts the process and returns its pid.
func (p *Process) Start(ctx context.Context) (int, error) {
	pid, err := p.t.shim.Start(ctx, p.id)
	if err != nil {
		return 0, fmt.Errorf("start exec %s in task %s: %w", p.id, p.t.id, err)
	}
	return pid, nil
}

// Wait waits for the process to exit.
func (p *Process) Wait(ctx context.Context) (*Exit, error) {
	e, err := p.t.shim.Wait(ctx, p.id)
	if err != nil {
		return nil, fmt.Errorf("wait for exec %s in task %s: %w", p.id, p.t.id, err)
	}
	return fromAPIExit(&e), nil
}

// Kill signals the process.
func (p *Process) Kill(ctx context.Context, sig syscall.Signal) error {
	return p.t.shim.Kill(ctx, api.KillRequest{ExecID: p.id, Signal: uint32(sig)})
}

// ResizePty resizes the process's pty.
func (p *Process) ResizePty(ctx context.Context, width, height uint32) error {
	return p.t.shim.ResizePty(ctx, api.ResizePtyRequest{ExecID: p.id, Width: width, Height: height})
}

// CloseStdin closes the process's stdin.
func (p *Process) CloseStdin(ctx context.Context) error { return p.t.shim.CloseStdin(ctx, p.id) }

// Delete forgets the stopped process in the shim; a process already gone
// (the task stopped, or the shim forgot it) is fine.
func (p *Process) Delete(ctx context.Context) error {
	if _, err := p.t.shim.Delete(ctx, p.id); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete exec %s in task %s: %w", p.id, p.t.id, err)
	}
	return nil
}
