package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// maxExecOutput caps what ExecSync keeps of each stream.
const maxExecOutput = 16 << 20

// ExecSync runs a command in a running container through its shim and
// returns its output and exit code. A timeout kills the command.
func (s *Service) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(r.GetCmd()) == 0 {
		return nil, fmt.Errorf("cmd is empty: %w", errdefs.ErrInvalidArgument)
	}
	task, err := s.runningTask(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	var stdout, stderr cappedBuffer
	code, err := s.execInTask(ctx, task, execOpts{cmd: r.GetCmd(), timeout: time.Duration(r.GetTimeout()) * time.Second, stdout: &stdout, stderr: &stderr})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// runningTask finds the task of a running container.
func (s *Service) runningTask(id string) (*runtime.Task, error) {
	c, err := s.getContainer(id)
	if err != nil {
		return nil, err
	}
	if st := c.Status().State(); st != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, fmt.Errorf("container %s is %s, not RUNNING: %w", c.Meta.ID, stateName(st), errdefs.ErrFailedPrecondition)
	}
	return s.tasks.Get(taskNamespace, c.Meta.ID)
}

type execOpts struct {
	cmd     []string
	tty     bool
	timeout time.Duration // 0: none
	stdout  interface{ Write([]byte) (int, error) }
	stderr  interface{ Write([]byte) (int, error) }
}

// execInTask runs cmd as an exec process of task with the init's user, env
// and working dir, and returns its exit code.
func (s *Service) execInTask(ctx context.Context, task *runtime.Task, o execOpts) (int, error) {
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
	defer att.Close()
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		_ = att.CopyOutput(o.stdout, o.stderr)
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
	copied.Wait()
	return exit.Status, nil
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

// cappedBuffer keeps the first maxExecOutput bytes written to it.
type cappedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxExecOutput - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf
}
