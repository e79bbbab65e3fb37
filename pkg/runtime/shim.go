package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/client"
)

// shimConn is a connected shim, its pid and a pidfd of it.
type shimConn struct {
	*client.Client
	pid int
	// pidfd refers to the shim's process (-1 if it could not be opened):
	// shutdown waits on it for the process to be gone, and signals through
	// it, so a reused pid is never waited on or killed.
	pidfd int
}

// shimExitTimeout bounds how long shutdown waits for a shim that accepted
// Shutdown to exit before it kills it.
const shimExitTimeout = 2 * time.Second

// newShimConn opens the pidfd while the shim is known to be alive (it just
// started, or just answered Connect).
func newShimConn(c *client.Client, pid int) *shimConn {
	fd := -1
	if pid > 0 {
		if f, err := unix.PidfdOpen(pid, 0); err == nil {
			fd = f
		}
	}
	return &shimConn{Client: c, pid: pid, pidfd: fd}
}

func (r *Runtime) startShim(ctx context.Context, rec taskRecord) (*shimConn, error) {
	c, pid, err := client.Start(ctx, client.StartOpts{
		ShimBinary:    r.shimBinary,
		Namespace:     rec.Namespace,
		ID:            rec.ID,
		Bundle:        rec.Bundle,
		Socket:        rec.Socket,
		RuntimeBinary: rec.Runtime.Binary,
		RuntimeRoot:   rec.Runtime.Root,
		Debug:         r.shimDebug,
	})
	if err != nil {
		return nil, fmt.Errorf("start shim of task %s: %w", rec.ID, err)
	}
	return newShimConn(c, pid), nil
}

// connectShim reconnects to the shim of a task after a daemon restart.
func connectShim(ctx context.Context, rec taskRecord) (*shimConn, *api.ConnectResponse, error) {
	c, err := client.New(rec.Socket)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	return newShimConn(c, resp.ShimPid), &resp, nil
}

// shutdown asks the shim to exit, and kills it when it will not. It returns
// once the shim's process is gone (or after shimExitTimeout and SIGKILL),
// so that a deleted task leaves no process behind, not even for a moment.
func (s *shimConn) shutdown(ctx context.Context) error {
	defer s.closePidfd()
	err := s.Shutdown(ctx)
	if err == nil || isShimGone(err) {
		if !s.waitGone(shimExitTimeout) {
			s.kill()
			s.waitGone(shimExitTimeout)
		}
		return nil
	}
	s.kill()
	return err
}

// waitGone waits up to d for the shim's process to exit; true when it did
// (or when there is no pidfd to wait on).
func (s *shimConn) waitGone(d time.Duration) bool {
	if s.pidfd < 0 {
		return true
	}
	deadline := time.Now().Add(d)
	for {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms <= 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(s.pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n > 0 // a poll error: do not hang on it
	}
}

// kill sends SIGKILL to the shim, through its pidfd when there is one.
func (s *shimConn) kill() {
	switch {
	case s.pidfd >= 0:
		_ = unix.PidfdSendSignal(s.pidfd, unix.SIGKILL, nil, 0)
	case s.pid > 0:
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
	}
}

func (s *shimConn) closePidfd() {
	if s.pidfd >= 0 {
		unix.Close(s.pidfd)
		s.pidfd = -1
	}
}

// isShimGone reports whether err says the shim's socket no longer answers:
// the shim died or exited.
func isShimGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, os.ErrNotExist) || errdefs.IsUnavailable(err)
}
