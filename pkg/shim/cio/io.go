package cio

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/containerd/console"
	runc "github.com/containerd/go-runc"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// eot is what closing a terminal's stdin sends: ^D, end of input for a
// reader in canonical mode.
const eot = 0x04

// IO is one process's stdio as the shim holds it.
//
// Life cycle: New before runc runs; RuncIO (pipes) or SetConsole (pty)
// around it; Start once runc returned; Wait after the process exited, to let
// the output drain; Close when the process is forgotten.
type IO struct {
	cfg     api.IO
	pipes   *Pipes
	console console.Console
	log     *Log
	relay   *Relay
	started bool // Start ran: the relay's copiers own its end

	stdinMu     sync.Mutex
	stdin       io.WriteCloser // pipe end or the pty master; nil once closed
	stdinOnceBy bool           // a stdin attacher has detached (StdinOnce)
}

// New prepares the IO of a process: the CRI log when cfg.LogPath is set and,
// without a terminal, the stdio pipes. log receives the CRI log's failures.
func New(cfg api.IO, log *slog.Logger) (_ *IO, retErr error) {
	i := &IO{cfg: cfg, relay: NewRelay()}
	defer func() {
		if retErr != nil {
			i.Close()
		}
	}()
	if cfg.LogPath != "" {
		l, err := OpenLog(cfg.LogPath, log)
		if err != nil {
			if errdefs.ClassName(err) == "" {
				err = fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
			}
			return nil, err
		}
		i.log = l
	}
	if !cfg.Terminal {
		p, err := NewPipes(cfg.Stdin)
		if err != nil {
			return nil, fmt.Errorf("create pipes: %w", err)
		}
		i.pipes = p
		if cfg.Stdin {
			i.stdin = p.Stdin()
		}
	}
	return i, nil
}

// RuncIO is what runc's command gets: the pipes, or nil with a terminal.
func (i *IO) RuncIO() runc.IO {
	if i.pipes == nil {
		return nil
	}
	return i.pipes
}

// SetConsole hands over the pty master received from runc.
func (i *IO) SetConsole(c console.Console) {
	i.console = c
	if i.cfg.Stdin {
		i.stdinMu.Lock()
		i.stdin = c
		i.stdinMu.Unlock()
	}
}

// Start begins copying output, once runc returned: it closes the shim's
// copies of the child ends first, so EOF means the process side is done.
func (i *IO) Start() {
	i.started = true
	switch {
	case i.pipes != nil:
		i.pipes.CloseAfterStart()
		i.relay.Run(i.pipes.Stdout(), i.pipes.Stderr(), i.log)
	case i.console != nil:
		i.relay.Run(i.console, nil, i.log)
	default:
		i.relay.Run(nil, nil, nil)
	}
}

// Wait waits until all output was copied (and logged), at most timeout. It
// reports whether the output ended.
func (i *IO) Wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-i.relay.Done():
		return true
	case <-t.C:
		return false
	}
}

// ReopenLog reopens the CRI log file (after rotation).
func (i *IO) ReopenLog() error {
	if i.log == nil {
		return fmt.Errorf("process has no log file: %w", errdefs.ErrFailedPrecondition)
	}
	return i.log.Reopen()
}

// Resize resizes the pty.
func (i *IO) Resize(width, height uint32) error {
	if i.console == nil {
		return fmt.Errorf("process has no terminal: %w", errdefs.ErrFailedPrecondition)
	}
	return i.console.Resize(console.WinSize{Width: uint16(width), Height: uint16(height)})
}

// WriteStdin writes to the process's stdin.
func (i *IO) WriteStdin(p []byte) error {
	i.stdinMu.Lock()
	w := i.stdin
	i.stdinMu.Unlock()
	if w == nil {
		return fmt.Errorf("stdin is closed: %w", errdefs.ErrFailedPrecondition)
	}
	_, err := w.Write(p)
	return err
}

// CloseStdin closes the process's stdin (sends ^D on a terminal). Closing
// twice is not an error.
func (i *IO) CloseStdin() error {
	i.stdinMu.Lock()
	w := i.stdin
	i.stdin = nil
	i.stdinMu.Unlock()
	if w == nil {
		return nil
	}
	if i.console != nil {
		_, err := w.Write([]byte{eot})
		return err
	}
	return w.Close()
}

// stdinDetached applies StdinOnce when a client that attached with stdin
// goes away.
func (i *IO) stdinDetached() {
	i.stdinMu.Lock()
	first := !i.stdinOnceBy
	i.stdinOnceBy = true
	i.stdinMu.Unlock()
	if i.cfg.StdinOnce && first {
		_ = i.CloseStdin()
	}
}

// Close releases everything: pipes, pty master, log file.
func (i *IO) Close() error {
	var errs []error
	if !i.started { // never ran: end attachers waiting for output
		i.started = true
		i.relay.end()
	}
	if i.pipes != nil {
		errs = append(errs, i.pipes.Close())
	}
	if i.console != nil {
		errs = append(errs, i.console.Close())
	}
	if i.log != nil {
		errs = append(errs, i.log.Close())
	}
	return errors.Join(errs...)
}
