package cio

import (
	"io"
	"os"
	"os/exec"
)

// Pipes are a process's stdio pipes. They implement go-runc's IO and
// StartCloser: runc gets the child ends, the shim keeps the others.
type Pipes struct {
	stdinR, stdinW *os.File
	outR, outW     *os.File
	errR, errW     *os.File
}

// NewPipes creates stdout and stderr pipes, and a stdin pipe when stdin.
func NewPipes(stdin bool) (_ *Pipes, retErr error) {
	p := &Pipes{}
	defer func() {
		if retErr != nil {
			p.Close()
		}
	}()
	var err error
	if stdin {
		if p.stdinR, p.stdinW, err = os.Pipe(); err != nil {
			return nil, err
		}
	}
	if p.outR, p.outW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if p.errR, p.errW, err = os.Pipe(); err != nil {
		return nil, err
	}
	return p, nil
}

// Stdin is the shim's end of the stdin pipe (nil without stdin).
func (p *Pipes) Stdin() io.WriteCloser {
	if p.stdinW == nil {
		return nil
	}
	return p.stdinW
}

// Stdout is the shim's end of the stdout pipe.
func (p *Pipes) Stdout() io.ReadCloser { return p.outR }

// Stderr is the shim's end of the stderr pipe.
func (p *Pipes) Stderr() io.ReadCloser { return p.errR }

// Set gives the child ends to runc's command.
func (p *Pipes) Set(cmd *exec.Cmd) {
	if p.stdinR != nil {
		cmd.Stdin = p.stdinR
	}
	cmd.Stdout = p.outW
	cmd.Stderr = p.errW
}

// CloseAfterStart closes the shim's copies of the child ends, so that the
// read ends see EOF once the container's processes closed theirs.
func (p *Pipes) CloseAfterStart() error {
	for _, f := range []**os.File{&p.stdinR, &p.outW, &p.errW} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
	return nil
}

// Close closes every end still open.
func (p *Pipes) Close() error {
	for _, f := range []**os.File{&p.stdinR, &p.stdinW, &p.outR, &p.outW, &p.errR, &p.errW} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
	return nil
}
