// Package client is the daemon's side of the shim: it starts shim processes
// and calls the task API on their sockets, one connection per call.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// MaxSocketPath is the longest unix socket path the kernel takes (sun_path
// is 108 bytes with its terminating NUL).
const MaxSocketPath = 107

// Client calls one shim. It holds no connection: every call dials, so a
// Client is safe for concurrent use and survives nothing it need not.
type Client struct {
	socket string
}

// New returns a client of the shim listening on socket (at restore: the
// shim outlived the daemon). It does not dial; Connect tells whether the
// shim is alive.
func New(socket string) (*Client, error) {
	if err := checkSocketPath(socket); err != nil {
		return nil, err
	}
	return &Client{socket: socket}, nil
}

func checkSocketPath(socket string) error {
	if socket == "" {
		return fmt.Errorf("shim socket path is empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(socket) > MaxSocketPath {
		return fmt.Errorf("shim socket path %q is %d bytes, over the %d a unix socket allows: %w",
			socket, len(socket), MaxSocketPath, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Socket is the shim's socket path.
func (c *Client) Socket() string { return c.socket }

// dial connects to the shim; a missing or refusing socket is ErrUnavailable.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("dial shim %s: %w: %w", c.socket, err, errdefs.ErrUnavailable)
	}
	return conn, nil
}

// roundTrip sends one request on conn and reads the response into result.
// A connection that ends without a response is ErrUnavailable (the shim
// died); a cancelled ctx closes the connection and returns ctx.Err().
func (c *Client) roundTrip(ctx context.Context, conn net.Conn, br *bufio.Reader, method string, params, result any) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req := api.Request{Method: method}
	if params != nil {
		data, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("%s: encode: %w: %w", method, err, errdefs.ErrInvalidArgument)
		}
		req.Params = data
	}
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	// A failed write still reads: a shim that refused the request before
	// it had read all of it (too large) answered why before it closed.
	_, werr := conn.Write(append(line, '\n'))
	respLine, err := br.ReadBytes('\n')
	if err != nil {
		if werr != nil {
			err = werr
		}
		return c.connError(ctx, method, err)
	}
	var resp api.Response
	if err := json.Unmarshal(respLine, &resp); err != nil {
		return fmt.Errorf("%s: decode response: %w", method, err)
	}
	if resp.Error != nil {
		return errdefs.FromWire(resp.Error.Class, resp.Error.Message)
	}
	if result != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("%s: decode result: %w", method, err)
		}
	}
	return nil
}

func (c *Client) connError(ctx context.Context, method string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("%s: shim %s closed the connection: %w", method, c.socket, errdefs.ErrUnavailable)
	}
	return fmt.Errorf("%s: shim %s: %w", method, c.socket, err)
}

// call is one request on its own connection.
func (c *Client) call(ctx context.Context, method string, params, result any) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return c.roundTrip(ctx, conn, bufio.NewReader(conn), method, params, result)
}

// Connect checks that the shim is alive and returns its pid and the task's.
func (c *Client) Connect(ctx context.Context) (api.ConnectResponse, error) {
	var r api.ConnectResponse
	err := c.call(ctx, api.MethodConnect, nil, &r)
	return r, err
}

// Create mounts the rootfs and creates the init process; it returns its pid.
func (c *Client) Create(ctx context.Context, req api.CreateRequest) (int, error) {
	var r api.CreateResponse
	err := c.call(ctx, api.MethodCreate, req, &r)
	return r.Pid, err
}

// Start starts the init (execID "") or an exec process; it returns its pid.
func (c *Client) Start(ctx context.Context, execID string) (int, error) {
	var r api.StartResponse
	err := c.call(ctx, api.MethodStart, api.ProcessRequest{ExecID: execID}, &r)
	return r.Pid, err
}

// Exec registers an exec process; Start runs it. Attach before Start to see
// all of its output.
func (c *Client) Exec(ctx context.Context, execID string, spec *specs.Process, io api.IO) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("exec %s: encode spec: %w: %w", execID, err, errdefs.ErrInvalidArgument)
	}
	return c.call(ctx, api.MethodExec, api.ExecRequest{ExecID: execID, Spec: data, IO: io}, nil)
}

// Kill signals a process; all (init only) signals every process of the
// container. A process that already exited is ErrNotFound.
func (c *Client) Kill(ctx context.Context, req api.KillRequest) error {
	return c.call(ctx, api.MethodKill, req, nil)
}

// Delete deletes a created or stopped process and returns its exit. For the
// init it also runs `runc delete` and unmounts the rootfs.
func (c *Client) Delete(ctx context.Context, execID string) (api.Exit, error) {
	var r api.Exit
	err := c.call(ctx, api.MethodDelete, api.ProcessRequest{ExecID: execID}, &r)
	return r, err
}

// State returns the state of a process.
func (c *Client) State(ctx context.Context, execID string) (api.StateResponse, error) {
	var r api.StateResponse
	err := c.call(ctx, api.MethodState, api.ProcessRequest{ExecID: execID}, &r)
	return r, err
}

// Pids lists the pids of the container's processes.
func (c *Client) Pids(ctx context.Context) ([]int, error) {
	var r api.PidsResponse
	err := c.call(ctx, api.MethodPids, nil, &r)
	return r.Pids, err
}

// ResizePty resizes a process's terminal.
func (c *Client) ResizePty(ctx context.Context, req api.ResizePtyRequest) error {
	return c.call(ctx, api.MethodResizePty, req, nil)
}

// CloseStdin closes a process's stdin.
func (c *Client) CloseStdin(ctx context.Context, execID string) error {
	return c.call(ctx, api.MethodCloseStdin, api.ProcessRequest{ExecID: execID}, nil)
}

// Wait blocks until the process stopped and returns its exit. Cancelling
// ctx closes the connection, which cancels the Wait in the shim.
func (c *Client) Wait(ctx context.Context, execID string) (api.Exit, error) {
	var r api.Exit
	err := c.call(ctx, api.MethodWait, api.ProcessRequest{ExecID: execID}, &r)
	return r, err
}

// Update sets the container's resources (`runc update`).
func (c *Client) Update(ctx context.Context, res *specs.LinuxResources) error {
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("update: encode resources: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return c.call(ctx, api.MethodUpdate, api.UpdateRequest{Resources: data}, nil)
}

// ReopenLog makes the shim reopen the init's CRI log file (after rotation).
func (c *Client) ReopenLog(ctx context.Context) error {
	return c.call(ctx, api.MethodReopenLog, nil, nil)
}

// Shutdown makes the shim remove its socket and exit; it is refused while
// the init exists and is not deleted.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.call(ctx, api.MethodShutdown, nil, nil)
}
