// Package stream is the facade's streaming: the HTTP server that serves
// exec, attach and port-forward (SPDY and WebSocket, with the Kubernetes
// streaming library) once the Exec, Attach and PortForward RPCs handed out
// its URLs; and the plumbing that runs an exec process wired to streams,
// which ExecSync shares.
//
// It holds no CRI objects and knows no task runtime: what it needs of the
// facade is the small interfaces below (Backend, Task, Process,
// Attachment), which pkg/cri implements over its tasks.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/klog/v2"
)

// Backend is what the server needs of the facade for a stream it accepted.
type Backend interface {
	// RunningTask is the task of a running container.
	RunningTask(containerID string) (Task, error)
	// PodNetNS is the path of a ready pod sandbox's network namespace;
	// "" for the host's. A pod that is not ready is refused.
	PodNetNS(podSandboxID string) (string, error)
}

// Task is the task of a running container.
type Task interface {
	// Exec creates, and does not start, an exec process that runs cmd with
	// the init's user, env and working dir.
	Exec(ctx context.Context, cmd []string, o ExecIO) (Process, error)
	// Attach attaches to the init's stdio.
	Attach(ctx context.Context, o AttachOpts) (Attachment, error)
	ResizePty(ctx context.Context, width, height uint32) error
}

// ExecIO says how an exec process's stdio is wired.
type ExecIO struct {
	Terminal, Stdin bool
}

// Process is an exec process of a task, created but not started.
type Process interface {
	ID() string
	Attach(ctx context.Context, o AttachOpts) (Attachment, error)
	Start(ctx context.Context) error
	// Wait returns the process's exit status once it exited.
	Wait(ctx context.Context) (int, error)
	Kill(ctx context.Context, sig syscall.Signal) error
	ResizePty(ctx context.Context, width, height uint32) error
	Delete(ctx context.Context) error
}

// AttachOpts pick the streams to attach to.
type AttachOpts struct {
	Stdin, Stdout, Stderr bool
}

// Attachment is a process's attached stdio: Write feeds its stdin, and
// CopyOutput copies its output until it ends or Close detaches.
type Attachment interface {
	io.Writer
	CloseStdin() error
	CopyOutput(stdout, stderr io.Writer) error
	Close() error
}

// Config is where the server listens and how it drains an exec's output.
type Config struct {
	// Address and Port to listen on ("0" picks a free port).
	Address, Port string
	// Drain bounds the reading of an exec's output once its process
	// exited (drain_exec_sync_io_timeout).
	Drain time.Duration
}

// Server serves exec, attach and port-forward over HTTP on its own
// listener (loopback by default).
type Server struct {
	server streaming.Server
	http   *http.Server
	done   chan struct{}
}

// Start listens on the configured address and serves in the background
// until Stop.
func Start(cfg Config, b Backend) (*Server, error) {
	lis, err := net.Listen("tcp", net.JoinHostPort(cfg.Address, cfg.Port))
	if err != nil {
		return nil, fmt.Errorf("listen for streaming: %w", err)
	}
	scfg := streaming.DefaultConfig
	scfg.Addr = lis.Addr().String()
	scfg.BaseURL = &url.URL{Scheme: "http", Host: lis.Addr().String()}
	srv, err := streaming.NewServer(scfg, &runtimeAdapter{b: b, drain: cfg.Drain})
	if err != nil {
		lis.Close()
		return nil, err
	}
	s := &Server{server: srv, http: &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.Background().Error(err, "Streaming server stopped")
		}
	}()
	klog.Background().Info("Serving streams", "address", lis.Addr().String())
	return s, nil
}

// Stop closes the listener and every stream, and waits for the server to
// end. A nil Server (never started) is fine.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	_ = s.http.Close()
	<-s.done
}

// GetExec validates an exec request and returns its URL.
func (s *Server) GetExec(r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return s.server.GetExec(r)
}

// GetAttach validates an attach request and returns its URL.
func (s *Server) GetAttach(r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return s.server.GetAttach(r)
}

// GetPortForward validates a port-forward request and returns its URL.
func (s *Server) GetPortForward(r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.server.GetPortForward(r)
}
