package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/client"
)

// shimConn is a connected shim and its pid.
type shimConn struct {
	*client.Client
	pid int
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
	return &shimConn{Client: c, pid: pid}, nil
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
	return &shimConn{Client: c, pid: resp.ShimPid}, &resp, nil
}

// shutdown asks the shim to exit, and kills it when it will not.
func (s *shimConn) shutdown(ctx context.Context) error {
	err := s.Shutdown(ctx)
	if err == nil || isShimGone(err) {
		return nil
	}
	if s.pid > 0 {
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
	}
	return err
}

// isShimGone reports whether err says the shim's socket no longer answers:
// the shim died or exited.
func isShimGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, os.ErrNotExist) || errdefs.IsUnavailable(err)
}
