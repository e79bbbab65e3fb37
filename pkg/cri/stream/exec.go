package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// killGrace bounds the wait for an exec process after SIGKILL.
const killGrace = 10 * time.Second

// ExecOpts are an exec's command, its timeout and where its output goes.
type ExecOpts struct {
	Cmd     []string
	TTY     bool
	Timeout time.Duration // 0: none
	Stdout  io.Writer
	Stderr  io.Writer
	// Drain bounds the reading of the output once the process exited.
	Drain time.Duration
}

// Exec runs o.Cmd as an exec process of task and returns its exit code;
// a timeout kills it. Once the process exited, its output is read for at
// most o.Drain more (drainOutput).
func Exec(ctx context.Context, task Task, o ExecOpts) (int, error) {
	p, err := task.Exec(ctx, o.Cmd, ExecIO{Terminal: o.TTY})
	if err != nil {
		return 0, err
	}
	cleanupCtx := context.WithoutCancel(ctx)
	defer func() {
		if err := p.Delete(cleanupCtx); err != nil {
			klog.FromContext(ctx).V(4).Info("Failed to delete an exec process", "execID", p.ID(), "err", err)
		}
	}()
	att, err := p.Attach(ctx, AttachOpts{Stdout: true, Stderr: !o.TTY})
	if err != nil {
		return 0, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_ = att.CopyOutput(o.Stdout, o.Stderr)
	}()
	defer func() { // runs before the Delete: the copier is gone by then
		att.Close()
		<-copied
	}()
	if err := p.Start(ctx); err != nil {
		return 0, err
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if o.Timeout > 0 {
		wctx, cancel = context.WithTimeout(ctx, o.Timeout)
	}
	defer cancel()
	code, err := p.Wait(wctx)
	if err != nil {
		_ = p.Kill(cleanupCtx, syscall.SIGKILL)
		kctx, kcancel := context.WithTimeout(cleanupCtx, killGrace)
		_, _ = p.Wait(kctx)
		kcancel()
		if ctx.Err() == nil && wctx.Err() != nil {
			return 0, fmt.Errorf("command %q timed out after %s: %w", o.Cmd, o.Timeout, context.DeadlineExceeded)
		}
		return 0, err
	}
	drainOutput(ctx, p.ID(), o.Drain, copied, att)
	return code, nil
}

type streams struct {
	in       io.Reader
	out, err io.WriteCloser
	tty      bool
	resize   <-chan remotecommandserver.TerminalSize
}

// execStreams runs cmd as an exec process wired to the client's streams
// and returns its exit code. As for Exec, the output is read for at most
// drain once the process exited (drainOutput).
func execStreams(ctx context.Context, task Task, cmd []string, st streams, drain time.Duration) (int, error) {
	p, err := task.Exec(ctx, cmd, ExecIO{Terminal: st.tty, Stdin: st.in != nil})
	if err != nil {
		return 0, err
	}
	defer func() { _ = p.Delete(context.WithoutCancel(ctx)) }()
	att, err := p.Attach(ctx, AttachOpts{Stdin: st.in != nil, Stdout: st.out != nil, Stderr: st.err != nil && !st.tty})
	if err != nil {
		return 0, err
	}
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		if err := pump(att, st); err != nil && !errors.Is(err, io.EOF) {
			klog.FromContext(ctx).V(4).Info("Exec stream ended with an error", "execID", p.ID(), "err", err)
		}
	}()
	defer func() { // runs before the Delete: the output copier is gone by then
		att.Close()
		<-pumped
	}()
	if err := p.Start(ctx); err != nil {
		return 0, err
	}
	go forwardResize(ctx, st.resize, p.ResizePty)
	code, err := p.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return 0, err
	}
	drainOutput(ctx, p.ID(), drain, pumped, att)
	return code, nil
}

// drainOutput waits, once an exec's main process exited, until its output
// ended (done), at most timeout or until ctx ends; then it detaches
// (closes att) and waits for the copier. The main process's own output is
// already in the pipe when it exits; what keeps the output open past that
// is a child left running in the background with the pipes, which must
// not hold the call (or the daemon's goroutines and the shim's exec) for
// as long as it lives.
func drainOutput(ctx context.Context, execID string, timeout time.Duration, done <-chan struct{}, att io.Closer) {
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

// pump copies stdin to the process and its output to the client until the
// output ends (the process exited and its output drained) or att is closed.
func pump(att Attachment, st streams) error {
	if st.in != nil {
		go func() {
			_, _ = io.Copy(att, st.in)
			_ = att.CloseStdin()
		}()
	}
	var stdout, stderr io.Writer = io.Discard, io.Discard
	if st.out != nil {
		stdout = st.out
	}
	if st.err != nil {
		stderr = st.err
	}
	return att.CopyOutput(stdout, stderr)
}

// forwardResize passes terminal size changes to the process's pty.
func forwardResize(ctx context.Context, resize <-chan remotecommandserver.TerminalSize, apply func(context.Context, uint32, uint32) error) {
	if resize == nil {
		return
	}
	for {
		select {
		case size, ok := <-resize:
			if !ok {
				return
			}
			if size.Width > 0 && size.Height > 0 {
				_ = apply(ctx, uint32(size.Width), uint32(size.Height))
			}
		case <-ctx.Done():
			return
		}
	}
}

// ProcessSpec is the process spec of the init in a bundle's config.json
// (user, env, cwd, capabilities) with cmd as its args: the spec of an exec
// process.
func ProcessSpec(bundle string, cmd []string, tty bool) (*specs.Process, error) {
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

// CappedOutput is the room left for an exec's output: its streams share
// it, first come first served. One copier writes both streams.
type CappedOutput struct {
	room    int
	dropped int
}

// NewCappedOutput makes room for room bytes of output.
func NewCappedOutput(room int) *CappedOutput { return &CappedOutput{room: room} }

// Stream is one stream sharing the room.
func (o *CappedOutput) Stream() *CappedStream { return &CappedStream{o: o} }

// Dropped is how many bytes did not fit.
func (o *CappedOutput) Dropped() int { return o.dropped }

// CappedStream keeps what fits in its CappedOutput and drops the rest.
type CappedStream struct {
	o   *CappedOutput
	buf []byte
}

func (w *CappedStream) Write(p []byte) (int, error) {
	n := min(w.o.room, len(p))
	w.buf = append(w.buf, p[:n]...)
	w.o.room -= n
	w.o.dropped += len(p) - n
	return len(p), nil
}

// Bytes is what was kept.
func (w *CappedStream) Bytes() []byte { return w.buf }
