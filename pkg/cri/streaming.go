package cri

import (
	"context"
	"fmt"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/stream"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// startStreaming starts the streaming server, which serves the URLs that
// Exec, Attach and PortForward hand out.
func (s *Service) startStreaming() error {
	cfg := stream.Config{Address: s.cfg.StreamingAddress, Port: s.cfg.StreamingPort, Drain: time.Duration(s.cfg.DrainExecSyncIOTimeout)}
	srv, err := stream.Start(cfg, streamBackend{s})
	if err != nil {
		return err
	}
	s.stream = srv
	return nil
}

// Exec prepares a streaming exec and returns its URL.
func (s *Service) Exec(ctx context.Context, r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(r.GetCmd()) == 0 {
		return nil, fmt.Errorf("cmd is empty: %w", errdefs.ErrInvalidArgument)
	}
	if !r.GetStdin() && !r.GetStdout() && !r.GetStderr() {
		return nil, fmt.Errorf("one of stdin, stdout and stderr must be set: %w", errdefs.ErrInvalidArgument)
	}
	if _, err := s.runningTask(r.GetContainerId()); err != nil {
		return nil, err
	}
	return s.stream.GetExec(r)
}

// Attach prepares a streaming attach and returns its URL.
func (s *Service) Attach(ctx context.Context, r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if !r.GetStdin() && !r.GetStdout() && !r.GetStderr() {
		return nil, fmt.Errorf("one of stdin, stdout and stderr must be set: %w", errdefs.ErrInvalidArgument)
	}
	if _, err := s.runningTask(r.GetContainerId()); err != nil {
		return nil, err
	}
	return s.stream.GetAttach(r)
}

// PortForward prepares a streaming port-forward and returns its URL.
func (s *Service) PortForward(ctx context.Context, r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.getSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if err := requireReady(sb); err != nil {
		return nil, err
	}
	r.PodSandboxId = sb.Meta.ID
	return s.stream.GetPortForward(r)
}

// streamBackend is what the streaming server needs of the Service.
type streamBackend struct{ s *Service }

var (
	_ stream.Backend = streamBackend{}
	_ stream.Task    = streamTask{}
	_ stream.Process = execProcess{}
)

func (b streamBackend) RunningTask(containerID string) (stream.Task, error) {
	t, err := b.s.runningTask(containerID)
	if err != nil {
		return nil, err
	}
	return streamTask{t}, nil
}

func (b streamBackend) PodNetNS(podSandboxID string) (string, error) {
	sb, err := b.s.getSandbox(podSandboxID)
	if err != nil {
		return "", err
	}
	if err := requireReady(sb); err != nil {
		return "", err // stopped since the URL was handed out
	}
	return sb.Meta.NetNSPath, nil
}

// streamTask is a running container's task as pkg/cri/stream drives it.
type streamTask struct{ t taskHandle }

func (st streamTask) Exec(ctx context.Context, cmd []string, o stream.ExecIO) (stream.Process, error) {
	proc, err := stream.ProcessSpec(st.t.Bundle(), cmd, o.Terminal)
	if err != nil {
		return nil, err
	}
	p, err := st.t.Exec(ctx, newID()[:32], proc, runtime.IO{Terminal: o.Terminal, Stdin: o.Stdin})
	if err != nil {
		return nil, err
	}
	return execProcess{p}, nil
}

func (st streamTask) Attach(ctx context.Context, o stream.AttachOpts) (stream.Attachment, error) {
	return attachment(st.t.Attach(ctx, runtime.AttachOpts(o)))
}

func (st streamTask) ResizePty(ctx context.Context, width, height uint32) error {
	return st.t.ResizePty(ctx, width, height)
}

// execProcess is an exec process as pkg/cri/stream drives it.
type execProcess struct{ p *runtime.Process }

func (e execProcess) ID() string { return e.p.ID() }

func (e execProcess) Attach(ctx context.Context, o stream.AttachOpts) (stream.Attachment, error) {
	return attachment(e.p.Attach(ctx, runtime.AttachOpts(o)))
}

func (e execProcess) Start(ctx context.Context) error {
	_, err := e.p.Start(ctx)
	return err
}

func (e execProcess) Wait(ctx context.Context) (int, error) {
	exit, err := e.p.Wait(ctx)
	if err != nil {
		return 0, err
	}
	return exit.Status, nil
}

func (e execProcess) Kill(ctx context.Context, sig syscall.Signal) error { return e.p.Kill(ctx, sig) }

func (e execProcess) ResizePty(ctx context.Context, width, height uint32) error {
	return e.p.ResizePty(ctx, width, height)
}

func (e execProcess) Delete(ctx context.Context) error { return e.p.Delete(ctx) }

// attachment hands on an attach's result, and no typed nil on an error.
func attachment[A stream.Attachment](a A, err error) (stream.Attachment, error) {
	if err != nil {
		return nil, err
	}
	return a, nil
}
