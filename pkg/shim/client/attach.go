package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// Attachment is an attached stream: output frames from the shim, stdin
// frames to it. ctx given to Attach governs only the setup; Close detaches.
type Attachment struct {
	conn net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
}

// Attach attaches to a process's stdio (execID "" is the init). Output is
// delivered from this moment on; attach to an exec before starting it to
// get all of it.
func (c *Client) Attach(ctx context.Context, req api.AttachRequest) (*Attachment, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	if err := c.roundTrip(ctx, conn, br, api.MethodAttach, req, nil); err != nil {
		conn.Close()
		return nil, err
	}
	return &Attachment{conn: conn, br: br}, nil
}

// Write sends p to the process's stdin.
func (a *Attachment) Write(p []byte) (int, error) {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	n := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > api.MaxFramePayload {
			chunk = chunk[:api.MaxFramePayload]
		}
		if err := api.WriteFrame(a.conn, api.StreamStdin, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// CloseStdin closes the process's stdin.
func (a *Attachment) CloseStdin() error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return api.WriteFrame(a.conn, api.StreamStdinClose, nil)
}

// Recv returns the next output frame; io.EOF once the shim ended the stream
// (the process's output is over).
func (a *Attachment) Recv() (api.Stream, []byte, error) {
	return api.ReadFrame(a.br)
}

// CopyOutput copies stdout and stderr frames to the writers (nil discards)
// until the stream ends; a clean end returns nil.
func (a *Attachment) CopyOutput(stdout, stderr io.Writer) error {
	for {
		s, p, err := a.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("attach stream: %w: %w", err, errdefs.ErrUnavailable)
		}
		w := stdout
		if s == api.StreamStderr {
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
	}
}

// Close detaches.
func (a *Attachment) Close() error { return a.conn.Close() }
