package process

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	runc "github.com/containerd/go-runc"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/cio"
	"github.com/cri-runtime/cri-runtime/pkg/shim/reaper"
)

// drainTimeout bounds how long an exit waits for the process's output to
// reach EOF: a background process that inherited the pipes (and escaped the
// kill) must not hold the exit forever.
const drainTimeout = 2 * time.Second

// Tracker routes exits to processes by pid (reaper.Router). Track is called
// before runc creates a process; done registers its pid afterwards.
type Tracker interface {
	Track() (done func(pid int, onExit func(reaper.Exit)))
}

// Process is the init or one exec process of the task.
//
// mu guards everything below it and is held across this process's runc
// calls: that is what keeps an exit from being applied before Start has
// returned. Unexported methods whose name ends in Locked assume it is held.
type Process struct {
	id     string // task id
	execID string // "" for the init
	bundle string
	rt     *Runtime
	io     *cio.IO
	ioCfg  api.IO
	log    *slog.Logger
	exited chan struct{} // closed once exit is set (stopped or deleted)

	mu    sync.Mutex
	state state
	pid   int
	exit  *api.Exit
	kind  kind
}

// kind is what differs between the init and an exec process.
type kind interface {
	start(ctx context.Context, p *Process, track Tracker) error
	kill(ctx context.Context, p *Process, sig int, all bool) error
	delete(ctx context.Context, p *Process) error
	exited(ctx context.Context, p *Process, e reaper.Exit) api.Exit
}

// ExecID is "" for the init.
func (p *Process) ExecID() string { return p.execID }

// Pid is the process's pid, 0 before it exists.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// Status is the current status.
func (p *Process) Status() api.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.status
}

// State describes the process.
func (p *Process) State() api.StateResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := api.StateResponse{
		ID: p.id, ExecID: p.execID, Bundle: p.bundle, Pid: p.pid, Status: p.state.status,
		Terminal: p.ioCfg.Terminal, Stdin: p.ioCfg.Stdin,
	}
	if p.exit != nil {
		e := *p.exit
		st.Exit = &e
	}
	return st
}

// Start runs the created process: `runc start` for the init, `runc exec
// --detach` for an exec.
func (p *Process) Start(ctx context.Context, track Tracker) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !canTransition(p.state.status, api.StatusRunning) {
		return 0, &TransitionError{From: p.state.status, To: api.StatusRunning}
	}
	if err := p.kind.start(ctx, p, track); err != nil {
		return 0, err
	}
	if err := p.state.setStatus(api.StatusRunning); err != nil {
		return 0, err
	}
	p.log.Info("Started process", "pid", p.pid)
	return p.pid, nil
}

// Kill signals the process (all: every process of the container, init
// only). A process that already exited is ErrNotFound, as runc says.
func (p *Process) Kill(ctx context.Context, sig int, all bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.state.status {
	case api.StatusStopped, api.StatusDeleted:
		return fmt.Errorf("process already finished: %w", errdefs.ErrNotFound)
	}
	return p.kind.kill(ctx, p, sig, all)
}

// Delete deletes a created or stopped process and returns its exit.
func (p *Process) Delete(ctx context.Context) (api.Exit, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !canTransition(p.state.status, api.StatusDeleted) {
		return api.Exit{}, &TransitionError{From: p.state.status, To: api.StatusDeleted}
	}
	if err := p.kind.delete(ctx, p); err != nil {
		return api.Exit{}, err
	}
	if p.exit == nil { // deleted while created: it never ran to an exit of its own
		p.exit = &api.Exit{Pid: p.pid, Status: 128 + 9, ExitedAt: time.Now()}
		if p.execID == "" {
			if err := writeExitFile(p.bundle, *p.exit); err != nil {
				p.log.Error("Could not record the exit", "err", err)
			}
		}
	}
	if err := p.state.setStatus(api.StatusDeleted); err != nil {
		return api.Exit{}, err
	}
	p.closeExitedLocked()
	_ = p.io.Close()
	p.log.Info("Deleted process", "pid", p.pid, "exitCode", p.exit.Status)
	return *p.exit, nil
}

// Wait blocks until the process stopped (or was deleted) and returns its
// exit; for the init the exit is in exit.json by then.
func (p *Process) Wait(ctx context.Context) (api.Exit, error) {
	select {
	case <-p.exited:
	case <-ctx.Done():
		return api.Exit{}, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return *p.exit, nil
}

// Exited is closed once the process has an exit.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// handleExit is the reaper's report that the process died. It runs in its
// own goroutine and waits for the process lock, so it is applied only after
// a Start in progress has returned. For the init: kill what is left of the
// container (see initKind.exited), drain the output into the log, record the
// exit in exit.json, then publish it (close exited).
func (p *Process) handleExit(e reaper.Exit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exit != nil { // deleted while created; the kill's exit arrives late
		return
	}
	exit := p.kind.exited(context.Background(), p, e)
	if err := p.state.setStatus(api.StatusStopped); err != nil {
		p.log.Error("Dropped an exit", "pid", e.Pid, "err", err)
		return
	}
	p.exit = &exit
	p.closeExitedLocked()
	p.log.Info("Process exited", "pid", e.Pid, "exitCode", exit.Status, "oomKilled", exit.OOMKilled)
}

func (p *Process) closeExitedLocked() {
	select {
	case <-p.exited:
	default:
		close(p.exited)
	}
}

// drainLocked waits for the output to reach EOF, so that every line is in
// the log before the exit is recorded.
func (p *Process) drainLocked() {
	if !p.io.Wait(drainTimeout) {
		p.log.Warn("Output did not end after the exit; recording the exit anyway", "pid", p.pid)
	}
}

// Attach checks that the process can be attached to and returns the
// function that serves the stream (it closes conn when the output ended).
func (p *Process) Attach(req api.AttachRequest) (func(conn io.ReadWriteCloser), error) {
	if st := p.Status(); st == api.StatusDeleted {
		return nil, fmt.Errorf("process is %s: %w", st, errdefs.ErrFailedPrecondition)
	}
	if req.Stdin && !p.ioCfg.Stdin {
		return nil, fmt.Errorf("process has no stdin: %w", errdefs.ErrFailedPrecondition)
	}
	return func(conn io.ReadWriteCloser) { p.io.ServeAttach(conn, req) }, nil
}

// ResizePty resizes the process's terminal.
func (p *Process) ResizePty(width, height uint32) error { return p.io.Resize(width, height) }

// CloseStdin closes the process's stdin.
func (p *Process) CloseStdin() error {
	if !p.ioCfg.Stdin {
		return fmt.Errorf("process has no stdin: %w", errdefs.ErrFailedPrecondition)
	}
	return p.io.CloseStdin()
}

// ReopenLog reopens the CRI log file after a rotation.
func (p *Process) ReopenLog() error { return p.io.ReopenLog() }

// receiveConsole takes the pty master from runc's console socket.
func receiveConsole(sock *runc.Socket, i *cio.IO) error {
	c, err := sock.ReceiveMaster()
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	i.SetConsole(c)
	return nil
}

// readPid reads a pid file written by runc.
func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	var pid int
	if _, err := fmt.Sscan(string(data), &pid); err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", path, data)
	}
	return pid, nil
}

// writeExitFile records the init's exit atomically (temp file + rename).
func writeExitFile(bundle string, e api.Exit) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(bundle, ".exit-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(bundle, api.ExitFile))
}

// ReadExitFile reads the exit recorded in bundle; ErrNotFound when none.
func ReadExitFile(bundle string) (api.Exit, error) {
	var e api.Exit
	data, err := os.ReadFile(filepath.Join(bundle, api.ExitFile))
	if os.IsNotExist(err) {
		return e, fmt.Errorf("no exit recorded in %s: %w", bundle, errdefs.ErrNotFound)
	}
	if err != nil {
		return e, err
	}
	return e, json.Unmarshal(data, &e)
}
