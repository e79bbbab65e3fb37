package process

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/cio"
	"github.com/cri-runtime/cri-runtime/pkg/shim/reaper"
)

// validExecID reports whether id matches ^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$.
// Hand-written: that regexp compiles to ~80 KiB of heap at every shim's
// start, which an idle shim would carry for its whole life.
func validExecID(id string) bool {
	if len(id) == 0 || len(id) > 76 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// execIDPattern is what validExecID accepts, for error messages.
const execIDPattern = `^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$`

// execKind is an extra process run in the container with `runc exec`.
type execKind struct {
	spec specs.Process
}

// NewExec registers an exec process (created): its IO exists from now on, so
// a client can attach before Start and see all of its output.
func NewExec(rt *Runtime, taskID, bundle string, req api.ExecRequest, log *slog.Logger) (*Process, error) {
	if !validExecID(req.ExecID) {
		return nil, fmt.Errorf("exec id %q must match %s: %w", req.ExecID, execIDPattern, errdefs.ErrInvalidArgument)
	}
	var spec specs.Process
	if err := json.Unmarshal(req.Spec, &spec); err != nil {
		return nil, fmt.Errorf("exec %s: process spec: %w: %w", req.ExecID, err, errdefs.ErrInvalidArgument)
	}
	if len(spec.Args) == 0 {
		return nil, fmt.Errorf("exec %s: process spec has no args: %w", req.ExecID, errdefs.ErrInvalidArgument)
	}
	spec.Terminal = req.IO.Terminal
	i, err := cio.New(req.IO, log)
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", req.ExecID, err)
	}
	return &Process{
		id: taskID, execID: req.ExecID, bundle: bundle, rt: rt, io: i, ioCfg: req.IO,
		kind: &execKind{spec: spec}, exited: make(chan struct{}),
		state: state{status: api.StatusCreated}, log: log,
	}, nil
}

func (k *execKind) files(p *Process) (pidFile, logFile string) {
	base := filepath.Join(p.bundle, "exec-"+p.execID)
	return base + ".pid", base + ".log.json"
}

// start runs `runc exec --detach`; p.mu is held, so the exit handler
// registered here waits until the process is marked running.
func (k *execKind) start(ctx context.Context, p *Process, track Tracker) error {
	pidFile, logFile := k.files(p)
	defer os.Remove(logFile)
	opts := &runc.ExecOpts{IO: p.io.RuncIO(), PidFile: pidFile, LogFile: logFile, Detach: true}
	if p.ioCfg.Terminal {
		sock, err := runc.NewTempConsoleSocket()
		if err != nil {
			return fmt.Errorf("console socket: %w", err)
		}
		defer sock.Close()
		opts.ConsoleSocket = sock
	}
	done := track.Track()
	defer done(0, nil)
	if err := p.rt.exec(ctx, k.spec, opts); err != nil {
		return err
	}
	if opts.ConsoleSocket != nil {
		if err := receiveConsole(opts.ConsoleSocket.(*runc.Socket), p.io); err != nil {
			return err
		}
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return err
	}
	p.pid = pid
	p.log = p.log.With("pid", pid)
	p.io.Start()
	done(pid, p.handleExit)
	return nil
}

// kill signals the exec's pid; p.mu is held and the process is not stopped,
// so the pid is still the process's (its exit has not been applied).
func (k *execKind) kill(_ context.Context, p *Process, sig int, all bool) error {
	if all {
		return fmt.Errorf("kill --all applies to the init only: %w", errdefs.ErrInvalidArgument)
	}
	if p.state.status != api.StatusRunning {
		return fmt.Errorf("exec %s is %s: %w", p.execID, p.state.status, errdefs.ErrFailedPrecondition)
	}
	if err := unix.Kill(p.pid, unix.Signal(sig)); err != nil {
		if err == unix.ESRCH {
			return fmt.Errorf("exec %s: process already finished: %w", p.execID, errdefs.ErrNotFound)
		}
		return fmt.Errorf("signal exec %s: %w", p.execID, err)
	}
	return nil
}

func (k *execKind) delete(_ context.Context, p *Process) error {
	pidFile, _ := k.files(p)
	os.Remove(pidFile)
	if p.state.status == api.StatusCreated {
		p.exit = &api.Exit{ExitedAt: time.Now()} // never ran
	}
	return nil
}

// exited publishes an exec's exit at once, without waiting for its output
// to end: a child it left in the background can hold the pipes open for as
// long as it lives, and that must not hold the exit. Attached clients keep
// receiving output until EOF or until Delete closes the pipes; the daemon
// bounds how long it reads (drain_exec_sync_io_timeout). Only an exec that
// logs to a file waits first (at most drainTimeout, like the init), so its
// log is complete when the exit is reported.
func (k *execKind) exited(_ context.Context, p *Process, e reaper.Exit) api.Exit {
	if p.ioCfg.LogPath != "" {
		p.drainLocked()
	}
	return api.Exit{Pid: e.Pid, Status: e.Status, ExitedAt: e.Timestamp}
}
