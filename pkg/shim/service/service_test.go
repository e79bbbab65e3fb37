package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/client"
)

// TestDispatchToProcess checks that every request that names a process
// reaches that process, and only it, with its arguments.
func TestDispatchToProcess(t *testing.T) {
	h := startService(t)
	init, e1 := h.running(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		execID string // the process the call names
		call   func(c *client.Client) error
		want   string // the call the process sees
	}{
		{"kill init", "", func(c *client.Client) error {
			return c.Kill(ctx, api.KillRequest{Signal: 15, All: true})
		}, "Kill 15 all=true"},
		{"kill exec", "e1", func(c *client.Client) error {
			return c.Kill(ctx, api.KillRequest{ExecID: "e1", Signal: 9})
		}, "Kill 9 all=false"},
		{"resize init", "", func(c *client.Client) error {
			return c.ResizePty(ctx, api.ResizePtyRequest{Width: 120, Height: 40})
		}, "ResizePty 120x40"},
		{"resize exec", "e1", func(c *client.Client) error {
			return c.ResizePty(ctx, api.ResizePtyRequest{ExecID: "e1", Width: 80, Height: 24})
		}, "ResizePty 80x24"},
		{"close stdin init", "", func(c *client.Client) error { return c.CloseStdin(ctx, "") }, "CloseStdin"},
		{"close stdin exec", "e1", func(c *client.Client) error { return c.CloseStdin(ctx, "e1") }, "CloseStdin"},
		{"reopen log", "", func(c *client.Client) error { return c.ReopenLog(ctx) }, "ReopenLog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, other := init, e1
			if tc.execID != "" {
				target, other = e1, init
			}
			before := len(other.callLog())
			if err := tc.call(h.c); err != nil {
				t.Fatal(err)
			}
			calls := target.callLog()
			if got := calls[len(calls)-1]; got != tc.want {
				t.Errorf("the process saw %q, want %q", got, tc.want)
			}
			if got := other.callLog()[before:]; len(got) != 0 {
				t.Errorf("the other process saw %q too", got)
			}
		})
	}
}

// TestLifecycle walks a task through every request kind and checks each
// reply.
func TestLifecycle(t *testing.T) {
	h := startService(t)
	ctx := context.Background()
	c := h.c

	conn, err := c.Connect(ctx)
	if err != nil || conn.ShimPid != os.Getpid() || conn.TaskPid != 0 {
		t.Fatalf("Connect before Create = %+v, %v; want shim pid %d, task pid 0", conn, err, os.Getpid())
	}
	// An empty ID and bundle mean the shim's own.
	if pid, err := c.Create(ctx, api.CreateRequest{}); err != nil || pid != 100 {
		t.Fatalf("Create = %d, %v; want 100", pid, err)
	}
	if conn, err := c.Connect(ctx); err != nil || conn.TaskPid != 100 {
		t.Fatalf("Connect after Create = %+v, %v; want task pid 100", conn, err)
	}
	if st, err := c.State(ctx, ""); err != nil || st.Pid != 100 || st.Status != api.StatusCreated || st.ID != "task" {
		t.Fatalf("State = %+v, %v; want task 100 created", st, err)
	}
	if pid, err := c.Start(ctx, ""); err != nil || pid != 100 {
		t.Fatalf("Start = %d, %v; want 100", pid, err)
	}
	if err := c.Exec(ctx, "e1", &specs.Process{Args: []string{"sh", "-c", "exit 3"}}, api.IO{}); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if pid, err := c.Start(ctx, "e1"); err != nil || pid != 200 {
		t.Fatalf("Start e1 = %d, %v; want 200", pid, err)
	}
	if pids, err := c.Pids(ctx); err != nil || !slices.Equal(pids, []int{100, 101}) {
		t.Fatalf("Pids = %v, %v; want [100 101]", pids, err)
	}
	limit := int64(64 << 20)
	if err := c.Update(ctx, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if r := h.procs.lastResources(); r == nil || r.Memory == nil || r.Memory.Limit == nil || *r.Memory.Limit != limit {
		t.Fatalf("Update reached the process layer as %+v, want a memory limit of %d", r, limit)
	}

	init, e1 := h.procs.proc(""), h.procs.proc("e1")
	e1.exit(3)
	if exit, err := c.Wait(ctx, "e1"); err != nil || exit.Status != 3 || exit.Pid != 200 {
		t.Fatalf("Wait e1 = %+v, %v; want pid 200 status 3", exit, err)
	}
	if st, err := c.State(ctx, "e1"); err != nil || st.Status != api.StatusStopped || st.Exit == nil || st.Exit.Status != 3 {
		t.Fatalf("State e1 = %+v, %v; want stopped with status 3", st, err)
	}
	if exit, err := c.Delete(ctx, "e1"); err != nil || exit.Status != 3 {
		t.Fatalf("Delete e1 = %+v, %v; want status 3", exit, err)
	}
	if _, err := c.State(ctx, "e1"); !errdefs.IsNotFound(err) {
		t.Fatalf("State of a deleted exec = %v, want NotFound", err)
	}
	if err := c.Shutdown(ctx); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("Shutdown while the init runs = %v, want FailedPrecondition", err)
	}
	init.exit(0)
	if exit, err := c.Delete(ctx, ""); err != nil || exit.Status != 0 {
		t.Fatalf("Delete = %+v, %v; want status 0", exit, err)
	}
	if got, want := init.callLog(), []string{"Start", "Delete"}; !slices.Equal(got, want) {
		t.Errorf("the init saw %q, want %q", got, want)
	}
	if got, want := e1.callLog(), []string{"Start", "Wait", "Delete"}; !slices.Equal(got, want) {
		t.Errorf("the exec saw %q, want %q", got, want)
	}
	if got := h.procs.callLog(); len(got) < 2 || got[0] != "CreateInit task /bundle" ||
		!strings.HasPrefix(got[1], "NewExec e1 {") || !strings.Contains(got[1], `"args":["sh","-c","exit 3"]`) {
		t.Errorf("the process layer saw %q", got)
	}

	if err := c.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after Delete: %v", err)
	}
	select {
	case <-h.svc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after Shutdown")
	}
	select {
	case err := <-h.served:
		if err != nil {
			t.Fatalf("Serve after Shutdown = %v, want nil", err)
		}
		h.served <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if _, err := c.Connect(ctx); !errdefs.IsUnavailable(err) {
		t.Fatalf("Connect after Shutdown = %v, want Unavailable", err)
	}
}

// TestErrorClassCrossesTheWire: whatever class a process's error has, the
// client's error has it too, with the same message; an error without a
// class arrives without one.
func TestErrorClassCrossesTheWire(t *testing.T) {
	h := startService(t)
	init, _ := h.running(t)
	ctx := context.Background()
	for _, class := range []error{
		errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument,
		errdefs.ErrFailedPrecondition, errdefs.ErrUnavailable, errdefs.ErrResourceExhausted,
		errdefs.ErrNotImplemented, errdefs.ErrInternal, context.Canceled, context.DeadlineExceeded,
	} {
		t.Run(errdefs.ClassName(class), func(t *testing.T) {
			sent := fmt.Errorf("kill task: %w", class)
			init.setErr(sent)
			err := h.c.Kill(ctx, api.KillRequest{Signal: 9})
			if !errors.Is(err, class) {
				t.Errorf("Kill = %v, want class %s", err, errdefs.ClassName(class))
			}
			if err == nil || err.Error() != sent.Error() {
				t.Errorf("message %v, want %q", err, sent.Error())
			}
		})
	}
	t.Run("unclassified", func(t *testing.T) {
		init.setErr(errors.New("runc said something new"))
		err := h.c.Kill(ctx, api.KillRequest{Signal: 9})
		if err == nil || err.Error() != "runc said something new" || errdefs.ClassName(err) != "" {
			t.Errorf("Kill = %v (class %q), want the bare message", err, errdefs.ClassName(err))
		}
	})
	init.setErr(nil)
	t.Run("transition error", func(t *testing.T) {
		// The fake refuses to delete a running process as process does.
		_, err := h.c.Delete(ctx, "")
		if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "running") {
			t.Errorf("Delete of a running init = %v, want FailedPrecondition naming the state", err)
		}
	})
	t.Run("process layer", func(t *testing.T) {
		h.procs.mu.Lock()
		h.procs.err = fmt.Errorf("ps: %w", errdefs.ErrUnavailable)
		h.procs.mu.Unlock()
		if _, err := h.c.Pids(ctx); !errdefs.IsUnavailable(err) {
			t.Errorf("Pids = %v, want Unavailable", err)
		}
		if err := h.c.Update(ctx, &specs.LinuxResources{}); !errdefs.IsUnavailable(err) {
			t.Errorf("Update = %v, want Unavailable", err)
		}
	})
}

// TestServiceErrors: the service's own refusals and their classes.
func TestServiceErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("no init yet", func(t *testing.T) {
		h := startService(t)
		c := h.c
		for name, call := range map[string]func() error{
			"Start":      func() error { _, err := c.Start(ctx, ""); return err },
			"Kill":       func() error { return c.Kill(ctx, api.KillRequest{Signal: 9}) },
			"Delete":     func() error { _, err := c.Delete(ctx, ""); return err },
			"State":      func() error { _, err := c.State(ctx, ""); return err },
			"Pids":       func() error { _, err := c.Pids(ctx); return err },
			"ResizePty":  func() error { return c.ResizePty(ctx, api.ResizePtyRequest{}) },
			"CloseStdin": func() error { return c.CloseStdin(ctx, "") },
			"Wait":       func() error { _, err := c.Wait(ctx, ""); return err },
			"Update":     func() error { return c.Update(ctx, &specs.LinuxResources{}) },
			"ReopenLog":  func() error { return c.ReopenLog(ctx) },
			"Exec":       func() error { return c.Exec(ctx, "e1", nil, api.IO{}) },
			"Attach":     func() error { _, err := c.Attach(ctx, api.AttachRequest{}); return err },
		} {
			if err := call(); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "task task is not created") {
				t.Errorf("%s before Create = %v, want NotFound", name, err)
			}
		}
		if got := h.procs.callLog(); len(got) != 0 {
			t.Errorf("the process layer was called: %q", got)
		}
	})
	t.Run("unknown exec", func(t *testing.T) {
		h := startService(t)
		h.running(t)
		c := h.c
		for name, call := range map[string]func() error{
			"Start":      func() error { _, err := c.Start(ctx, "nope"); return err },
			"Kill":       func() error { return c.Kill(ctx, api.KillRequest{ExecID: "nope"}) },
			"Delete":     func() error { _, err := c.Delete(ctx, "nope"); return err },
			"State":      func() error { _, err := c.State(ctx, "nope"); return err },
			"ResizePty":  func() error { return c.ResizePty(ctx, api.ResizePtyRequest{ExecID: "nope"}) },
			"CloseStdin": func() error { return c.CloseStdin(ctx, "nope") },
			"Wait":       func() error { _, err := c.Wait(ctx, "nope"); return err },
			"Attach":     func() error { _, err := c.Attach(ctx, api.AttachRequest{ExecID: "nope"}); return err },
		} {
			if err := call(); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "exec nope in task task") {
				t.Errorf("%s of an unknown exec = %v, want NotFound naming it", name, err)
			}
		}
	})
	t.Run("create", func(t *testing.T) {
		h := startService(t)
		c := h.c
		if _, err := c.Create(ctx, api.CreateRequest{ID: "other"}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Create of another task = %v, want InvalidArgument", err)
		}
		if _, err := c.Create(ctx, api.CreateRequest{Bundle: "/elsewhere"}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Create in another bundle = %v, want InvalidArgument", err)
		}
		h.procs.mu.Lock()
		h.procs.createErr = fmt.Errorf("mount rootfs: %w", errdefs.ErrInvalidArgument)
		h.procs.mu.Unlock()
		if _, err := c.Create(ctx, api.CreateRequest{}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "mount rootfs") {
			t.Errorf("failed Create = %v, want the process layer's InvalidArgument", err)
		}
		h.procs.mu.Lock()
		h.procs.createErr = nil
		h.procs.mu.Unlock()
		if _, err := c.Create(ctx, api.CreateRequest{}); err != nil {
			t.Fatalf("Create after a failed one: %v", err)
		}
		if _, err := c.Create(ctx, api.CreateRequest{}); !errdefs.IsAlreadyExists(err) {
			t.Errorf("second Create = %v, want AlreadyExists", err)
		}
		if err := c.Exec(ctx, "e1", nil, api.IO{}); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "created") {
			t.Errorf("Exec in a created task = %v, want FailedPrecondition naming the state", err)
		}
		if _, err := c.Start(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if err := c.Exec(ctx, "e1", nil, api.IO{}); err != nil {
			t.Fatal(err)
		}
		if err := c.Exec(ctx, "e1", nil, api.IO{}); !errdefs.IsAlreadyExists(err) {
			t.Errorf("Exec of a taken id = %v, want AlreadyExists", err)
		}
	})
	t.Run("while creating", func(t *testing.T) {
		h := startService(t)
		gate, entered := make(chan struct{}), make(chan struct{})
		h.procs.createGate, h.procs.creating = gate, entered
		created := make(chan error, 1)
		go func() { _, err := h.c.Create(ctx, api.CreateRequest{}); created <- err }()
		<-entered
		if err := h.c.Shutdown(ctx); !errdefs.IsFailedPrecondition(err) {
			t.Errorf("Shutdown while creating = %v, want FailedPrecondition", err)
		}
		h.procs.mu.Lock()
		h.procs.createGate, h.procs.creating = nil, nil
		h.procs.mu.Unlock()
		if _, err := h.c.Create(ctx, api.CreateRequest{}); !errdefs.IsAlreadyExists(err) {
			t.Errorf("Create while creating = %v, want AlreadyExists", err)
		}
		close(gate)
		if err := <-created; err != nil {
			t.Fatalf("the held Create: %v", err)
		}
	})
}

// TestWaitCancelledByClient: a client that gives up on a Wait closes its
// connection, and that cancels the Wait in the shim.
func TestWaitCancelledByClient(t *testing.T) {
	h := startService(t)
	init, _ := h.running(t)
	seen := make(chan error, 1)
	init.mu.Lock()
	init.waitErr = seen
	init.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() { _, err := h.c.Wait(ctx, ""); waited <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(init.callLog(), "Wait") {
		if time.Now().After(deadline) {
			t.Fatal("the Wait did not reach the process")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Errorf("client Wait = %v, want context.Canceled", err)
	}
	select {
	case err := <-seen:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the process's Wait ended with %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the process's Wait was not cancelled when the client left")
	}
	h.alive(t)
}

// TestAttach: Attach turns its connection into a frame stream served by the
// process, and its refusals keep their class.
func TestAttach(t *testing.T) {
	h := startService(t)
	init, _ := h.running(t)
	ctx := context.Background()

	a, err := h.c.Attach(ctx, api.AttachRequest{Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if s, data, err := a.Recv(); err != nil || s != api.StreamStdout || string(data) != "hello" {
		t.Fatalf("first frame = %d %q %v, want stdout hello", s, data, err)
	}
	h.alive(t) // an attachment holds no one else up
	if _, err := a.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if s, data, err := a.Recv(); err != nil || s != api.StreamStderr || string(data) != "ping" {
		t.Fatalf("echo = %d %q %v, want stderr ping", s, data, err)
	}
	if err := a.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after stdin closed = %v, want the stream's end", err)
	}
	if got := init.callLog(); !slices.Contains(got, "Attach stdin=true stdout=true stderr=true") {
		t.Errorf("the init saw %q", got)
	}

	if _, err := h.c.Attach(ctx, api.AttachRequest{ExecID: "e1", Stdin: true}); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Attach to the stdin of an exec without one = %v, want FailedPrecondition", err)
	}
	h.alive(t)
}

// TestRequestDone: the hook runs once per request, after its answer.
func TestRequestDone(t *testing.T) {
	var n atomic.Int32
	h := startService(t, WithRequestDone(func() { n.Add(1) }))
	ctx := context.Background()
	h.c.Connect(ctx)
	h.c.State(ctx, "") // an error is a request too
	h.rawCall(t, []byte("garbage\n"))
	deadline := time.Now().Add(10 * time.Second)
	for n.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("the hook ran %d times for 3 requests", got)
	}
}
