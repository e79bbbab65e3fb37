package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/network"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// streamServer serves exec, attach and port-forward over HTTP (SPDY and
// WebSocket) with the Kubernetes streaming library, on the configured
// address (loopback by default).
type streamServer struct {
	server streaming.Server
	http   *http.Server
	lis    net.Listener
	done   chan struct{}
}

// startStreaming listens on the streaming address and serves in the
// background.
func (s *Service) startStreaming() error {
	lis, err := net.Listen("tcp", net.JoinHostPort(s.cfg.StreamingAddress, s.cfg.StreamingPort))
	if err != nil {
		return fmt.Errorf("listen for streaming: %w", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = lis.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: lis.Addr().String()}
	srv, err := streaming.NewServer(cfg, &streamRuntime{s: s})
	if err != nil {
		lis.Close()
		return err
	}
	ss := &streamServer{server: srv, http: &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}, lis: lis, done: make(chan struct{})}
	go func() {
		defer close(ss.done)
		if err := ss.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.Background().Error(err, "Streaming server stopped")
		}
	}()
	s.stream = ss
	klog.Background().Info("Serving streams", "address", lis.Addr().String())
	return nil
}

func (ss *streamServer) stop() {
	if ss == nil {
		return
	}
	_ = ss.http.Close()
	<-ss.done
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
	return s.stream.server.GetExec(r)
}

// Attach prepares a streaming attach and returns its URL.
func (s *Service) Attach(ctx context.Context, r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if !r.GetStdin() && !r.GetStdout() && !r.GetStderr() {
		return nil, fmt.Errorf("one of stdin, stdout and stderr must be set: %w", errdefs.ErrInvalidArgument)
	}
	if _, err := s.runningTask(r.GetContainerId()); err != nil {
		return nil, err
	}
	return s.stream.server.GetAttach(r)
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
	return s.stream.server.GetPortForward(r)
}

// streamRuntime does the streams the streaming server accepted.
type streamRuntime struct{ s *Service }

func (sr *streamRuntime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	task, err := sr.s.runningTask(containerID)
	if err != nil {
		return err
	}
	code, err := sr.s.execStream(ctx, task, cmd, streams{in: in, out: out, err: errw, tty: tty, resize: resize})
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd, code), Code: code}
	}
	return nil
}

func (sr *streamRuntime) Attach(ctx context.Context, containerID string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	task, err := sr.s.runningTask(containerID)
	if err != nil {
		return err
	}
	att, err := task.Attach(ctx, runtime.AttachOpts{Stdin: in != nil, Stdout: out != nil, Stderr: errw != nil && !tty})
	if err != nil {
		return err
	}
	defer att.Close()
	go forwardResize(ctx, resize, task.ResizePty)
	return pump(att, streams{in: in, out: out, err: errw, tty: tty})
}

func (sr *streamRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb, err := sr.s.getSandbox(podSandboxID)
	if err != nil {
		return err
	}
	if err := requireReady(sb); err != nil {
		return err // stopped since the URL was handed out
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	}
	if sb.Meta.NetNSPath == "" {
		err = dial()
	} else {
		ns, lerr := network.LoadNetNS(sb.Meta.NetNSPath)
		if lerr != nil {
			return lerr
		}
		err = ns.Do(dial)
	}
	if err != nil {
		return fmt.Errorf("connect to port %d of pod sandbox %s: %w", port, podSandboxID, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = io.Copy(stream, conn)
	stream.Close()
	wg.Wait()
	return nil
}

type streams struct {
	in       io.Reader
	out, err io.WriteCloser
	tty      bool
	resize   <-chan remotecommandserver.TerminalSize
}

// execStream runs cmd as an exec process wired to the client's streams and
// returns its exit code. As for ExecSync, the output is read for at most
// DrainExecSyncIOTimeout once the process exited (drainOutput).
func (s *Service) execStream(ctx context.Context, task taskHandle, cmd []string, st streams) (int, error) {
	proc, err := execProcessSpec(task.Bundle(), cmd, st.tty)
	if err != nil {
		return 0, err
	}
	execID := newID()[:32]
	p, err := task.Exec(ctx, execID, proc, runtime.IO{Terminal: st.tty, Stdin: st.in != nil})
	if err != nil {
		return 0, err
	}
	defer func() { _ = p.Delete(context.WithoutCancel(ctx)) }()
	att, err := p.Attach(ctx, runtime.AttachOpts{Stdin: st.in != nil, Stdout: st.out != nil, Stderr: st.err != nil && !st.tty})
	if err != nil {
		return 0, err
	}
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		if err := pump(att, st); err != nil && !errors.Is(err, io.EOF) {
			klog.FromContext(ctx).V(4).Info("Exec stream ended with an error", "execID", execID, "err", err)
		}
	}()
	defer func() { // runs before the Delete: the output copier is gone by then
		att.Close()
		<-pumped
	}()
	if _, err := p.Start(ctx); err != nil {
		return 0, err
	}
	go forwardResize(ctx, st.resize, p.ResizePty)
	exit, err := p.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return 0, err
	}
	s.drainOutput(ctx, execID, pumped, att)
	return exit.Status, nil
}

// attachment is what pump needs of an attached stream.
type attachment interface {
	Write([]byte) (int, error)
	CloseStdin() error
	CopyOutput(stdout, stderr io.Writer) error
}

// pump copies stdin to the process and its output to the client until the
// output ends (the process exited and its output drained) or att is closed.
func pump(att attachment, st streams) error {
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
