package service

import (
	"context"
	"io"
	"log/slog"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/process"
)

// proc is one process of the task as the service calls it: a
// *process.Process (the tests use a fake).
type proc interface {
	Pid() int
	Status() api.Status
	State() api.StateResponse
	Start(ctx context.Context, track process.Tracker) (int, error)
	Kill(ctx context.Context, sig int, all bool) error
	Delete(ctx context.Context) (api.Exit, error)
	Wait(ctx context.Context) (api.Exit, error)
	Attach(req api.AttachRequest) (func(conn io.ReadWriteCloser), error)
	ResizePty(width, height uint32) error
	CloseStdin() error
	ReopenLog() error
}

var _ proc = (*process.Process)(nil)

// processes is the process layer the service dispatches to: it makes the
// task's processes and runs the runc calls that concern the whole
// container.
type processes interface {
	CreateInit(ctx context.Context, track process.Tracker, req api.CreateRequest, log *slog.Logger) (proc, error)
	NewExec(req api.ExecRequest, log *slog.Logger) (proc, error)
	Ps(ctx context.Context) ([]int, error)
	Update(ctx context.Context, res *specs.LinuxResources) error
}

// runcProcesses is the process layer of pkg/shim/process, over runc.
type runcProcesses struct {
	rt  *process.Runtime
	cfg Config
}

var _ processes = runcProcesses{}

func newRuncProcesses(cfg Config) runcProcesses {
	return runcProcesses{
		rt:  process.NewRuntime(process.RuntimeConfig{ID: cfg.ID, Bundle: cfg.Bundle, Binary: cfg.RuntimeBinary, Root: cfg.RuntimeRoot}),
		cfg: cfg,
	}
}

// CreateInit runs process.CreateInit. A failure is a nil proc, not a proc
// holding a nil *process.Process.
func (r runcProcesses) CreateInit(ctx context.Context, track process.Tracker, req api.CreateRequest, log *slog.Logger) (proc, error) {
	p, err := process.CreateInit(ctx, r.rt, track, req, log)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// NewExec runs process.NewExec; a failure is a nil proc.
func (r runcProcesses) NewExec(req api.ExecRequest, log *slog.Logger) (proc, error) {
	p, err := process.NewExec(r.rt, r.cfg.ID, r.cfg.Bundle, req, log)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (r runcProcesses) Ps(ctx context.Context) ([]int, error) { return r.rt.Ps(ctx) }

func (r runcProcesses) Update(ctx context.Context, res *specs.LinuxResources) error {
	return r.rt.Update(ctx, res)
}
