package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"
)

// fakeProcess is an exec process whose output is out and which exits with
// code when exit is closed; with hold, its output stays open after the
// exit (a child left running with the pipes) until it is detached.
type fakeProcess struct {
	out  string
	code int
	hold bool
	exit chan struct{}

	mu      sync.Mutex
	killed  syscall.Signal
	deleted bool
}

func (p *fakeProcess) ID() string { return "exec1" }

func (p *fakeProcess) Attach(context.Context, AttachOpts) (Attachment, error) {
	return &fakeAttachment{p: p, closed: make(chan struct{})}, nil
}

func (p *fakeProcess) Start(context.Context) error { return nil }

func (p *fakeProcess) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.exit:
		return p.code, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (p *fakeProcess) Kill(_ context.Context, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed == 0 {
		p.killed = sig
		close(p.exit)
	}
	return nil
}

func (p *fakeProcess) ResizePty(context.Context, uint32, uint32) error { return nil }

func (p *fakeProcess) Delete(context.Context) error {
	p.mu.Lock()
	p.deleted = true
	p.mu.Unlock()
	return nil
}

type fakeAttachment struct {
	p         *fakeProcess
	closed    chan struct{}
	closeOnce sync.Once
}

func (a *fakeAttachment) Write(b []byte) (int, error) { return len(b), nil }
func (a *fakeAttachment) CloseStdin() error           { return nil }
func (a *fakeAttachment) Close() error {
	a.closeOnce.Do(func() { close(a.closed) })
	return nil
}

func (a *fakeAttachment) CopyOutput(stdout, _ io.Writer) error {
	_, _ = io.WriteString(stdout, a.p.out)
	select {
	case <-a.p.exit:
	case <-a.closed:
		return nil
	}
	if a.p.hold {
		<-a.closed
	}
	return nil
}

type fakeTask struct{ p *fakeProcess }

func (t fakeTask) Exec(context.Context, []string, ExecIO) (Process, error) { return t.p, nil }
func (t fakeTask) Attach(context.Context, AttachOpts) (Attachment, error) {
	return nil, errors.New("not attachable")
}
func (t fakeTask) ResizePty(context.Context, uint32, uint32) error { return nil }

func TestExec(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hold     bool
		exitsIn  time.Duration // -1: never
		timeout  time.Duration
		wantCode int
		wantErr  error
		wantKill bool
	}{
		{name: "exits", exitsIn: 0, wantCode: 3},
		{name: "a child holds the output: drained for at most Drain", hold: true, exitsIn: 0, wantCode: 3},
		{name: "timeout kills", exitsIn: -1, timeout: 50 * time.Millisecond, wantErr: context.DeadlineExceeded, wantKill: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			p := &fakeProcess{out: "hello", code: tc.wantCode, hold: tc.hold, exit: make(chan struct{})}
			if tc.exitsIn >= 0 {
				time.AfterFunc(tc.exitsIn, func() { close(p.exit) })
			}
			var out bytes.Buffer
			start := time.Now()
			code, err := Exec(ctx, fakeTask{p}, ExecOpts{Cmd: []string{"x"}, Timeout: tc.timeout, Stdout: &out, Stderr: io.Discard, Drain: 100 * time.Millisecond})
			if !errors.Is(err, tc.wantErr) || code != tc.wantCode {
				t.Fatalf("Exec = %d, %v; want %d, %v", code, err, tc.wantCode, tc.wantErr)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("Exec took %s", took)
			}
			if out.String() != "hello" {
				t.Errorf("output %q, want hello", out.String())
			}
			if (p.killed == syscall.SIGKILL) != tc.wantKill || !p.deleted {
				t.Errorf("killed %v, deleted %v; want a kill %v and a delete", p.killed, p.deleted, tc.wantKill)
			}
		})
	}
}

func TestCappedOutput(t *testing.T) {
	out := NewCappedOutput(5)
	a, b := out.Stream(), out.Stream()
	for _, w := range []struct {
		s   *CappedStream
		in  string
		buf string
	}{{a, "abc", "abc"}, {b, "defg", "de"}, {a, "h", "abc"}} {
		if n, err := w.s.Write([]byte(w.in)); n != len(w.in) || err != nil {
			t.Fatalf("Write(%q) = %d, %v: it must take everything", w.in, n, err)
		}
		if string(w.s.Bytes()) != w.buf {
			t.Fatalf("after Write(%q): kept %q, want %q", w.in, w.s.Bytes(), w.buf)
		}
	}
	if out.Dropped() != 3 {
		t.Fatalf("dropped %d, want 3", out.Dropped())
	}
}

func TestProcessSpec(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"ociVersion":"1.0.2","process":{"args":["/pause"],"cwd":"/w","env":["A=1"],"user":{"uid":7,"gid":8},"terminal":false,"consoleSize":{"height":1,"width":1}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := ProcessSpec(dir, []string{"sh", "-c", "id"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Args) != 3 || p.Args[0] != "sh" || !p.Terminal || p.ConsoleSize != nil || p.Cwd != "/w" || p.User.UID != 7 || p.Env[0] != "A=1" {
		t.Fatalf("exec spec %+v: the init's, with the command, a terminal and no console size", p)
	}
	if _, err := ProcessSpec(t.TempDir(), []string{"x"}, false); err == nil {
		t.Fatal("a bundle without config.json must fail")
	}
}
