package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/process"
)

// fakeProcesses is a process layer without runc: it hands out fakeProcs and
// records what the service asked of it.
type fakeProcesses struct {
	mu         sync.Mutex
	calls      []string
	createErr  error         // CreateInit fails with it
	createGate chan struct{} // when set, CreateInit waits for it to close
	creating   chan struct{} // when set, closed once CreateInit was entered
	procs      map[string]*fakeProc
	resources  *specs.LinuxResources
	err        error // Ps and Update fail with it
}

func newFakeProcesses() *fakeProcesses {
	return &fakeProcesses{procs: map[string]*fakeProc{}}
}

func (f *fakeProcesses) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeProcesses) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeProcesses) lastResources() *specs.LinuxResources {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resources
}

// proc returns the process made for execID ("" is the init), nil if none.
func (f *fakeProcesses) proc(execID string) *fakeProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[execID]
}

func (f *fakeProcesses) CreateInit(ctx context.Context, _ process.Tracker, req api.CreateRequest, _ *slog.Logger) (proc, error) {
	f.record("CreateInit %s %s", req.ID, req.Bundle)
	f.mu.Lock()
	gate, entered, err := f.createGate, f.creating, f.createErr
	f.mu.Unlock()
	if entered != nil {
		close(entered)
	}
	if gate != nil {
		<-gate
	}
	if err != nil {
		return nil, err
	}
	p := newFakeProc("", 100)
	p.stdin = req.IO.Stdin
	f.mu.Lock()
	f.procs[""] = p
	f.mu.Unlock()
	return p, nil
}

func (f *fakeProcesses) NewExec(req api.ExecRequest, _ *slog.Logger) (proc, error) {
	f.record("NewExec %s %s", req.ExecID, req.Spec)
	p := newFakeProc(req.ExecID, 200)
	p.stdin = req.IO.Stdin
	f.mu.Lock()
	f.procs[req.ExecID] = p
	f.mu.Unlock()
	return p, nil
}

func (f *fakeProcesses) Ps(context.Context) ([]int, error) {
	f.record("Ps")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return []int{100, 101}, nil
}

func (f *fakeProcesses) Update(_ context.Context, res *specs.LinuxResources) error {
	f.record("Update")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resources = res
	return f.err
}

// fakeProc is a process without runc. It follows the shim's status diagram
// loosely (created → running → stopped → deleted); exit() stops it. Every
// call is recorded; err, when set, is what the calls that can fail return.
type fakeProc struct {
	execID string
	stdin  bool

	mu      sync.Mutex
	pid     int
	status  api.Status
	exitVal *api.Exit
	exited  chan struct{}
	calls   []string
	err     error
	waitErr chan error // when set, receives the ctx error of a Wait that was cancelled
}

var _ proc = (*fakeProc)(nil)

func newFakeProc(execID string, pid int) *fakeProc {
	return &fakeProc{execID: execID, pid: pid, status: api.StatusCreated, exited: make(chan struct{})}
}

func (p *fakeProc) record(format string, args ...any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, fmt.Sprintf(format, args...))
	return p.err
}

func (p *fakeProc) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *fakeProc) callLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// exit stops the process with status code.
func (p *fakeProc) exit(code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = api.StatusStopped
	p.exitVal = &api.Exit{Pid: p.pid, Status: code, ExitedAt: time.Unix(1700000000, 0).UTC()}
	close(p.exited)
}

func (p *fakeProc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *fakeProc) Status() api.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

func (p *fakeProc) State() api.StateResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := api.StateResponse{ID: "task", ExecID: p.execID, Bundle: "/bundle", Pid: p.pid, Status: p.status, Stdin: p.stdin}
	if p.exitVal != nil {
		e := *p.exitVal
		st.Exit = &e
	}
	return st
}

func (p *fakeProc) Start(context.Context, process.Tracker) (int, error) {
	if err := p.record("Start"); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = api.StatusRunning
	return p.pid, nil
}

func (p *fakeProc) Kill(_ context.Context, sig int, all bool) error {
	return p.record("Kill %d all=%t", sig, all)
}

func (p *fakeProc) Delete(context.Context) (api.Exit, error) {
	if err := p.record("Delete"); err != nil {
		return api.Exit{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == api.StatusRunning {
		return api.Exit{}, &process.TransitionError{From: p.status, To: api.StatusDeleted}
	}
	p.status = api.StatusDeleted
	if p.exitVal == nil {
		return api.Exit{Pid: p.pid, Status: 137}, nil
	}
	return *p.exitVal, nil
}

func (p *fakeProc) Wait(ctx context.Context) (api.Exit, error) {
	if err := p.record("Wait"); err != nil {
		return api.Exit{}, err
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		p.mu.Lock()
		ch := p.waitErr
		p.mu.Unlock()
		if ch != nil {
			ch <- ctx.Err()
		}
		return api.Exit{}, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return *p.exitVal, nil
}

// Attach serves a stream that says "hello" on stdout, then echoes each
// stdin frame on stderr until stdin is closed.
func (p *fakeProc) Attach(req api.AttachRequest) (func(conn io.ReadWriteCloser), error) {
	if err := p.record("Attach stdin=%t stdout=%t stderr=%t", req.Stdin, req.Stdout, req.Stderr); err != nil {
		return nil, err
	}
	if req.Stdin && !p.stdin {
		return nil, fmt.Errorf("process has no stdin: %w", errdefs.ErrFailedPrecondition)
	}
	return func(conn io.ReadWriteCloser) {
		defer conn.Close()
		if err := api.WriteFrame(conn, api.StreamStdout, []byte("hello")); err != nil {
			return
		}
		for {
			s, data, err := api.ReadFrame(conn)
			if err != nil || s == api.StreamStdinClose {
				return
			}
			if err := api.WriteFrame(conn, api.StreamStderr, data); err != nil {
				return
			}
		}
	}, nil
}

func (p *fakeProc) ResizePty(width, height uint32) error {
	return p.record("ResizePty %dx%d", width, height)
}

func (p *fakeProc) CloseStdin() error { return p.record("CloseStdin") }

func (p *fakeProc) ReopenLog() error { return p.record("ReopenLog") }
