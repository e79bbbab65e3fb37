package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// maxExecSyncOutput caps what ExecSync returns of stdout and stderr
// together. The kubelet's CRI client takes messages of at most 16 MiB
// (cri-client's maxMsgSize); the rest of the response (field tags, lengths,
// the exit code) takes a few bytes of that, for which 1 KiB is plenty.
const maxExecSyncOutput = 16<<20 - 1<<10

// ExecSync runs a command in a running container through its shim and
// returns its output and exit code. A timeout kills the command. Output
// beyond maxExecSyncOutput (both streams together) is dropped.
func (s *Service) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(r.GetCmd()) == 0 {
		return nil, fmt.Errorf("cmd is empty: %w", errdefs.ErrInvalidArgument)
	}
	task, err := s.runningTask(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	out := cappedOutput{room: maxExecSyncOutput}
	stdout, stderr := out.stream(), out.stream()
	code, err := s.execInTask(ctx, task, execOpts{cmd: r.GetCmd(), timeout: time.Duration(r.GetTimeout()) * time.Second, stdout: stdout, stderr: stderr})
	if err != nil {
		return nil, err
	}
	if out.dropped > 0 {
		klog.FromContext(ctx).V(4).Info("Truncated ExecSync output", "containerID", task.ID(), "droppedBytes", out.dropped, "limit", maxExecSyncOutput)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.buf, Stderr: stderr.buf, ExitCode: int32(code)}, nil
}

// runningTask finds the task of a running container.
func (s *Service) runningTask(id string) (taskHandle, error) {
	c, err := s.getContainer(id)
	if err != nil {
		return nil, err
	}
	if err := requireRunning(c); err != nil {
		return nil, err
	}
	return s.liveTask(c)
}

type execOpts struct {
	cmd     []string
	tty     bool
	timeout time.Duration // 0: none
	stdout  io.Writer
	stderr  io.Writer
}

// execInTask runs cmd as an exec process of task with the init's user, env
// and working dir, and returns its exit code. Once the process exited, its
// output is read for at most DrainExecSyncIOTimeout more (drainOutput).
func (s *Service) execInTask(ctx context.Context, task taskHandle, o execOpts) (int, error) {
	proc, err := execProcessSpec(task.Bundle(), o.cmd, o.tty)
	if err != nil {
		return 0, err
	}
	execID := newID()[:32]
	p, err := task.Exec(ctx, execID, proc, runtime.IO{Terminal: o.tty})
	if err != nil {
		return 0, err
	}
	cleanupCtx := context.WithoutCancel(ctx)
	defer func() {
		if err := p.Delete(cleanupCtx); err != nil {
			klog.FromContext(ctx).V(4).Info("Failed to delete an exec process", "execID", execID, "err", err)
		}
	}()
	att, err := p.Attach(ctx, runtime.AttachOpts{Stdout: true, Stderr: !o.tty})
	if err != nil {
		return 0, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_ = att.CopyOutput(o.stdout, o.stderr)
	}()
	defer func() { // runs before the Delete: the copier is gone by then
		att.Close()
		<-copied
	}()
	if _, err := p.Start(ctx); err != nil {
		return 0, err
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if o.timeout > 0 {
		wctx, cancel = context.WithTimeout(ctx, o.timeout)
	}
	defer cancel()
	exit, err := p.Wait(wctx)
	if err != nil {
		_ = p.Kill(cleanupCtx, syscall.SIGKILL)
		kctx, kcancel := context.WithTimeout(cleanupCtx, killGrace)
		_, _ = p.Wait(kctx)
		kcancel()
		if ctx.Err() == nil && wctx.Err() != nil {
			return 0, fmt.Errorf("command %q timed out after %s: %w", o.cmd, o.timeout, context.DeadlineExceeded)
		}
		return 0, err
	}
	s.drainOutput(ctx, execID, copied, att)
	return exit.Status, nil
}

// drainOutput waits, once an exec's main process exited, until its output
// ended (done), at most DrainExecSyncIOTimeout or until ctx ends; then it
// detaches (closes att) and waits for the copier. The main process's own
// output is already in the pipe when it exits; what keeps the output open
// past that is a child left running in the background with the pipes,
// which must not hold the call (or the daemon's goroutines and the shim's
// exec) for as long as it lives.
func (s *Service) drainOutput(ctx context.Context, execID string, done <-chan struct{}, att io.Closer) {
	timeout := time.Duration(s.cfg.DrainExecSyncIOTimeout)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
		klog.FromContext(ctx).V(4).Info("Stopped reading the output of an exec whose process exited", "execID", execID, "drainExecSyncIOTimeout", timeout.String())
	case <-ctx.Done():
	}
	att.Close()
	<-done
}

// execProcessSpec is the init's process spec (user, env, cwd,
// capabilities) with cmd as its args.
func execProcessSpec(bundle string, cmd []string, tty bool) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("decode container spec: %w", err)
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("container spec has no process: %w", errdefs.ErrInternal)
	}
	p := *spec.Process
	p.Args = cmd
	p.Terminal = tty
	p.ConsoleSize = nil
	return &p, nil
}

// cappedOutput is the room left for ExecSync's output: its streams share
// it, first come first served. One copier writes both streams.
type cappedOutput struct {
	room    int
	dropped int
}

func (o *cappedOutput) stream() *cappedStream { return &cappedStream{o: o} }

// cappedStream keeps what fits in its cappedOutput and drops the rest.
type cappedStream struct {
	o   *cappedOutput
	buf []byte
}

func (w *cappedStream) Write(p []byte) (int, error) {
	n := min(w.o.room, len(p))
	w.buf = append(w.buf, p[:n]...)
	w.o.room -= n
	w.o.dropped += len(p) - n
	return len(p), nil
}
