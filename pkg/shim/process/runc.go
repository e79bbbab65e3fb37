package process

import (
	"context"
	"path/filepath"

	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime is the go-runc adapter of one task: every runc call of the shim
// goes through it, and every error comes back classified (runcerr.go).
type Runtime struct {
	runc   *runc.Runc
	id     string
	bundle string
}

// RuntimeConfig names the runtime of one task.
type RuntimeConfig struct {
	ID     string // the container id given to runc
	Bundle string // holds config.json
	Binary string // runc, or a compatible runtime; "" means "runc" on PATH
	Root   string // runc --root; "" is runc's default
}

// NewRuntime returns the adapter; runc logs JSON to <bundle>/log.json, which
// is where the error of a command whose stdio is the container's comes from.
func NewRuntime(cfg RuntimeConfig) *Runtime {
	return &Runtime{
		runc: &runc.Runc{
			Command:   cfg.Binary,
			Root:      cfg.Root,
			Log:       filepath.Join(cfg.Bundle, "log.json"),
			LogFormat: runc.JSON,
		},
		id:     cfg.ID,
		bundle: cfg.Bundle,
	}
}

func (r *Runtime) logPath() string { return r.runc.Log }

func (r *Runtime) create(ctx context.Context, opts *runc.CreateOpts) error {
	err := r.runc.Create(ctx, r.id, r.bundle, opts)
	if err != nil {
		return runcError("create", err, lastRuncError(r.logPath()))
	}
	return nil
}

func (r *Runtime) start(ctx context.Context) error {
	return runcError("start", r.runc.Start(ctx, r.id), "")
}

func (r *Runtime) exec(ctx context.Context, spec specs.Process, opts *runc.ExecOpts) error {
	err := r.runc.Exec(ctx, r.id, spec, opts)
	if err != nil {
		return runcError("exec", err, lastRuncError(opts.LogFile))
	}
	return nil
}

func (r *Runtime) kill(ctx context.Context, sig int, all bool) error {
	return runcError("kill", r.runc.Kill(ctx, r.id, sig, &runc.KillOpts{All: all}), "")
}

func (r *Runtime) delete(ctx context.Context, force bool) error {
	return runcError("delete", r.runc.Delete(ctx, r.id, &runc.DeleteOpts{Force: force}), "")
}

// Ps lists the pids of the container's processes.
func (r *Runtime) Ps(ctx context.Context) ([]int, error) {
	pids, err := r.runc.Ps(ctx, r.id)
	if err != nil {
		return nil, runcError("ps", err, "")
	}
	return pids, nil
}

// Update applies new resource limits.
func (r *Runtime) Update(ctx context.Context, res *specs.LinuxResources) error {
	return runcError("update", r.runc.Update(ctx, r.id, res), "")
}
