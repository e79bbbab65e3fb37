// Package service is the shim's server: it listens on the task's unix
// socket, decodes one api.Request per connection, finds the process the
// request names and calls it. The processes themselves (state machine, runc)
// live in pkg/shim/process; the service reaches them through the small
// interfaces of processes.go.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/process"
	"github.com/cri-runtime/cri-runtime/pkg/shim/reaper"
)

// Config is what the shim was started for.
type Config struct {
	Namespace     string
	ID            string
	Bundle        string
	RuntimeBinary string
	RuntimeRoot   string
}

// Service serves the task API of one task.
//
// mu guards only the process map (init, creating, execs); it is never held
// across a runc call. Each process has its own lock for that.
type Service struct {
	cfg   Config
	procs processes
	track process.Tracker // where processes register their pids for exits
	log   *slog.Logger
	ctx   context.Context // the shim's lifetime: runc calls outlive a client that hung up

	mu       sync.Mutex
	init     proc
	creating bool
	execs    map[string]proc

	requestDone func() // called after every request; may be nil

	shutdownOnce sync.Once
	shutdown     chan struct{}
	conns        sync.WaitGroup
}

// Option configures a Service.
type Option func(*Service)

// WithRequestDone sets a hook run after every request (main uses it to trim
// the heap once the shim goes idle).
func WithRequestDone(f func()) Option { return func(s *Service) { s.requestDone = f } }

// New returns the service of the task in cfg. Exits reach its processes
// through router, which the caller feeds from the reaper.
func New(ctx context.Context, cfg Config, router *reaper.Router, log *slog.Logger, opts ...Option) *Service {
	return newService(ctx, cfg, newRuncProcesses(cfg), router, log, opts...)
}

// newService returns the service of the task in cfg over the process layer
// procs.
func newService(ctx context.Context, cfg Config, procs processes, track process.Tracker, log *slog.Logger, opts ...Option) *Service {
	s := &Service{
		cfg:      cfg,
		procs:    procs,
		track:    track,
		log:      log,
		ctx:      ctx,
		execs:    map[string]proc{},
		shutdown: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Done is closed once Shutdown was accepted.
func (s *Service) Done() <-chan struct{} { return s.shutdown }

// lookup finds the process named by execID ("" is the init).
func (s *Service) lookup(execID string) (proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if execID == "" {
		if s.init == nil {
			return nil, fmt.Errorf("task %s is not created: %w", s.cfg.ID, errdefs.ErrNotFound)
		}
		return s.init, nil
	}
	p, ok := s.execs[execID]
	if !ok {
		return nil, fmt.Errorf("exec %s in task %s: %w", execID, s.cfg.ID, errdefs.ErrNotFound)
	}
	return p, nil
}

func (s *Service) connect() api.ConnectResponse {
	r := api.ConnectResponse{ShimPid: os.Getpid()}
	if p, err := s.lookup(""); err == nil {
		r.TaskPid = p.Pid()
	}
	return r
}

func (s *Service) create(req api.CreateRequest) (api.CreateResponse, error) {
	if req.ID == "" {
		req.ID = s.cfg.ID
	}
	if req.Bundle == "" {
		req.Bundle = s.cfg.Bundle
	}
	if req.ID != s.cfg.ID || req.Bundle != s.cfg.Bundle {
		return api.CreateResponse{}, fmt.Errorf("create %s in %s: this shim serves %s in %s: %w",
			req.ID, req.Bundle, s.cfg.ID, s.cfg.Bundle, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	if s.init != nil || s.creating {
		s.mu.Unlock()
		return api.CreateResponse{}, fmt.Errorf("task %s: %w", s.cfg.ID, errdefs.ErrAlreadyExists)
	}
	s.creating = true
	s.mu.Unlock()

	p, err := s.procs.CreateInit(s.ctx, s.track, req, s.log)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.creating = false
	if err != nil {
		return api.CreateResponse{}, fmt.Errorf("create task %s: %w", s.cfg.ID, err)
	}
	s.init = p
	return api.CreateResponse{Pid: p.Pid()}, nil
}

func (s *Service) exec(req api.ExecRequest) error {
	init, err := s.lookup("")
	if err != nil {
		return err
	}
	if st := init.Status(); st != api.StatusRunning {
		return fmt.Errorf("exec in task %s: task is %s: %w", s.cfg.ID, st, errdefs.ErrFailedPrecondition)
	}
	if _, err := s.lookup(req.ExecID); err == nil {
		return fmt.Errorf("exec %s: %w", req.ExecID, errdefs.ErrAlreadyExists)
	}
	p, err := s.procs.NewExec(req, s.log.With("execID", req.ExecID))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.execs[req.ExecID]; ok { // lost a race with the same id
		p.Delete(s.ctx)
		return fmt.Errorf("exec %s: %w", req.ExecID, errdefs.ErrAlreadyExists)
	}
	s.execs[req.ExecID] = p
	return nil
}

func (s *Service) delete(req api.ProcessRequest) (api.Exit, error) {
	p, err := s.lookup(req.ExecID)
	if err != nil {
		return api.Exit{}, err
	}
	exit, err := p.Delete(s.ctx)
	if err != nil {
		return api.Exit{}, err
	}
	if req.ExecID != "" {
		s.mu.Lock()
		if s.execs[req.ExecID] == p {
			delete(s.execs, req.ExecID)
		}
		s.mu.Unlock()
	}
	return exit, nil
}

func (s *Service) pids() (api.PidsResponse, error) {
	if _, err := s.lookup(""); err != nil {
		return api.PidsResponse{}, err
	}
	pids, err := s.procs.Ps(s.ctx)
	if err != nil {
		return api.PidsResponse{}, err
	}
	return api.PidsResponse{Pids: pids}, nil
}

// shutdownTask accepts Shutdown when the init is deleted or was never
// created: nothing of the task is left for the shim to look after.
func (s *Service) shutdownTask() error {
	s.mu.Lock()
	init, creating := s.init, s.creating
	s.mu.Unlock()
	if creating {
		return fmt.Errorf("task %s is being created: %w", s.cfg.ID, errdefs.ErrFailedPrecondition)
	}
	if init != nil {
		if st := init.Status(); st != api.StatusDeleted {
			return fmt.Errorf("task %s is %s, delete it first: %w", s.cfg.ID, st, errdefs.ErrFailedPrecondition)
		}
	}
	return nil
}
