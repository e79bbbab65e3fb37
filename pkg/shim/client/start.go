package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// StartOpts describes the shim to launch for one task.
type StartOpts struct {
	ShimBinary    string // path of cri-runtime-shim
	Namespace     string
	ID            string
	Bundle        string // holds config.json; shim.log is written here
	Socket        string // where the shim listens; at most MaxSocketPath bytes
	RuntimeBinary string // runc; "" means runc on PATH
	RuntimeRoot   string // runc --root; "" is runc's default
	Debug         bool
}

func (o StartOpts) validate() error {
	for _, f := range []struct{ name, v string }{
		{"ShimBinary", o.ShimBinary}, {"Namespace", o.Namespace}, {"ID", o.ID}, {"Bundle", o.Bundle},
	} {
		if f.v == "" {
			return fmt.Errorf("start shim: %s is empty: %w", f.name, errdefs.ErrInvalidArgument)
		}
	}
	return checkSocketPath(o.Socket)
}

func (o StartOpts) args() []string {
	args := []string{"-namespace", o.Namespace, "-id", o.ID, "-bundle", o.Bundle, "-socket", o.Socket}
	if o.RuntimeBinary != "" {
		args = append(args, "-runtime", o.RuntimeBinary)
	}
	if o.RuntimeRoot != "" {
		args = append(args, "-runtime-root", o.RuntimeRoot)
	}
	if o.Debug {
		args = append(args, "-debug")
	}
	return args
}

// Start launches a shim for the task in its own session (so that signals to
// the daemon's process group do not reach it), with stdout and stderr
// appended to <bundle>/shim.log, and waits until it listens: the shim writes
// "ok\n" to its fd 3 then. It returns the client and the shim's pid. The
// shim is reaped by a goroutine of the caller for as long as the caller
// lives; after that, init adopts it.
func Start(ctx context.Context, opts StartOpts) (*Client, int, error) {
	if err := opts.validate(); err != nil {
		return nil, 0, err
	}
	logf, err := os.OpenFile(filepath.Join(opts.Bundle, api.ShimLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("start shim: open its log: %w", err)
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, 0, fmt.Errorf("start shim: ready pipe: %w", err)
	}
	defer readyR.Close()

	cmd := exec.Command(opts.ShimBinary, opts.args()...) // not CommandContext: ctx must not kill a shim that started
	cmd.Dir = opts.Bundle
	// One P from the runtime's first instruction: fewer threads and GC
	// workers for the shim's whole life. The shim drops it from its own
	// environment so that runc does not inherit it.
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{readyW} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("start shim: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps the shim whenever it exits

	ready := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(io.LimitReader(readyR, 64*1024))
		ready <- data
	}()
	select {
	case data := <-ready:
		if string(data) == "ok\n" {
			return &Client{socket: opts.Socket}, pid, nil
		}
		msg := string(bytes.TrimSpace(data))
		if msg == "" {
			msg = "exited before it was ready"
			select {
			case werr := <-exited:
				msg += fmt.Sprintf(" (%v)", werr)
			default:
			}
		}
		return nil, 0, fmt.Errorf("start shim for %s: %s (see %s): %w", opts.ID, msg,
			filepath.Join(opts.Bundle, api.ShimLogFile), errdefs.ErrUnavailable)
	case <-ctx.Done():
		_ = cmd.Process.Kill() // the goroutine above reaps it
		readyR.Close()
		return nil, 0, fmt.Errorf("start shim for %s: %w", opts.ID, ctx.Err())
	}
}
