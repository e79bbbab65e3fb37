package process

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/cio"
	"github.com/cri-runtime/cri-runtime/pkg/shim/reaper"
)

// initKind is the init process: it owns the rootfs mounts and the OOM
// watch, and its exit ends the container.
type initKind struct {
	mounts      []string // mounted targets, in mount order
	oom         *oomWatcher
	sharedPidNS bool // no pid namespace of its own: the kernel kills nothing for us
}

// CreateInit mounts the rootfs and runs `runc create`. On failure it undoes
// every step (runc delete --force, unmount) and leaves nothing behind.
func CreateInit(ctx context.Context, rt *Runtime, track Tracker, req api.CreateRequest, log *slog.Logger) (_ *Process, retErr error) {
	spec, err := readSpec(req.Bundle)
	if err != nil {
		return nil, err
	}
	k := &initKind{sharedPidNS: !hasNamespace(spec, specs.PIDNamespace)}
	p := &Process{
		id: req.ID, bundle: req.Bundle, rt: rt, ioCfg: req.IO, kind: k,
		exited: make(chan struct{}), state: state{status: api.StatusCreated},
		log: log,
	}

	var cleanups []func()
	defer func() {
		if retErr != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()
	undoCtx := context.WithoutCancel(ctx)

	mounted, err := mountAll(filepath.Join(req.Bundle, api.RootfsDir), req.Rootfs)
	k.mounts = mounted
	cleanups = append(cleanups, func() {
		if err := unmountAll(k.mounts); err != nil {
			log.Error("Could not unmount the rootfs after a failed create", "err", err)
		}
	})
	if err != nil {
		return nil, err
	}

	if p.io, err = cio.New(req.IO, log); err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { p.io.Close() })

	opts := &runc.CreateOpts{IO: p.io.RuncIO(), PidFile: filepath.Join(req.Bundle, api.InitPidFile)}
	var sock *runc.Socket
	if req.IO.Terminal {
		if sock, err = runc.NewTempConsoleSocket(); err != nil {
			return nil, fmt.Errorf("console socket: %w", err)
		}
		defer sock.Close()
		opts.ConsoleSocket = sock
	}

	done := track.Track()
	defer done(0, nil) // no-op once the pid is registered
	if err := rt.create(ctx, opts); err != nil {
		_ = rt.delete(undoCtx, true) // runc may have left state behind
		return nil, err
	}
	cleanups = append(cleanups, func() {
		if err := rt.delete(undoCtx, true); err != nil && !errdefs.IsNotFound(err) {
			log.Error("Could not delete the container after a failed create", "err", err)
		}
	})
	if sock != nil {
		if err := receiveConsole(sock, p.io); err != nil {
			return nil, err
		}
	}
	if p.pid, err = readPid(opts.PidFile); err != nil {
		return nil, err
	}
	p.log = log.With("pid", p.pid)
	p.io.Start()
	done(p.pid, p.handleExit)
	k.oom = watchOOM(cgroupsPath(spec), p.log)
	p.log.Info("Created container")
	return p, nil
}

func (k *initKind) start(ctx context.Context, p *Process, _ Tracker) error {
	return p.rt.start(ctx) // the pid is registered since create
}

func (k *initKind) kill(ctx context.Context, p *Process, sig int, all bool) error {
	return p.rt.kill(ctx, sig, all)
}

// delete runs `runc delete` (forced while created) and unmounts the rootfs.
// Called with p.mu held.
func (k *initKind) delete(ctx context.Context, p *Process) error {
	force := p.state.status == api.StatusCreated
	if err := p.rt.delete(ctx, force); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	k.oom.close()
	if err := unmountAll(k.mounts); err != nil {
		return fmt.Errorf("unmount rootfs: %w", err)
	}
	k.mounts = nil
	return nil
}

// exited runs with p.mu held when the init died: with a shared pid
// namespace kill what is left of the container (a private one is emptied by
// the kernel), drain the output, check for an OOM kill, and record the exit
// in the bundle before anyone can see it.
func (k *initKind) exited(ctx context.Context, p *Process, e reaper.Exit) api.Exit {
	if k.sharedPidNS {
		if err := p.rt.kill(ctx, int(unix.SIGKILL), true); err != nil {
			p.log.Warn("Could not kill the container's remaining processes", "err", err)
		}
	}
	p.drainLocked()
	exit := api.Exit{Pid: e.Pid, Status: e.Status, ExitedAt: e.Timestamp, OOMKilled: k.oom.killed()}
	if err := writeExitFile(p.bundle, exit); err != nil {
		p.log.Error("Could not record the exit", "err", err)
	}
	return exit
}

// bundleSpec is the part of config.json the shim reads. Not specs.Spec:
// encoding/json caches the fields of every type it decodes for the life of
// the process, and that cache for the whole spec is ~150 KiB an idle shim
// would carry.
type bundleSpec struct {
	Linux *struct {
		CgroupsPath string                 `json:"cgroupsPath"`
		Namespaces  []specs.LinuxNamespace `json:"namespaces"`
	} `json:"linux"`
}

func readSpec(bundle string) (*bundleSpec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read config.json: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	var s bundleSpec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse config.json: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return &s, nil
}

func hasNamespace(s *bundleSpec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

func cgroupsPath(s *bundleSpec) string {
	if s.Linux == nil {
		return ""
	}
	return s.Linux.CgroupsPath
}
