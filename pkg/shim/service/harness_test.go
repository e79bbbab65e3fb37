package service

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/client"
)

// harness is a Service over a fake process layer, serving on a socket in
// t.TempDir(), and the real client of that socket.
type harness struct {
	procs  *fakeProcesses
	svc    *Service
	c      *client.Client
	socket string
	served chan error // Serve's result
}

func startService(t *testing.T, opts ...Option) *harness {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{procs: newFakeProcesses(), socket: socket, served: make(chan error, 1)}
	cfg := Config{Namespace: "k8s.io", ID: "task", Bundle: "/bundle"}
	h.svc = newService(ctx, cfg, h.procs, nil, slog.New(slog.DiscardHandler), opts...)
	go func() { h.served <- h.svc.Serve(l) }()
	t.Cleanup(func() {
		cancel() // ends the fake's Waits
		l.Close()
		select {
		case <-h.served:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its listener closed")
		}
	})
	h.c, err = client.New(socket)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// running creates and starts the init (with stdin) and an exec "e1"
// (without), both running, and returns their fakes.
func (h *harness) running(t *testing.T) (init, e1 *fakeProc) {
	t.Helper()
	ctx := context.Background()
	if _, err := h.c.Create(ctx, api.CreateRequest{IO: api.IO{Stdin: true}}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := h.c.Start(ctx, ""); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := h.c.Exec(ctx, "e1", nil, api.IO{}); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if _, err := h.c.Start(ctx, "e1"); err != nil {
		t.Fatalf("Start e1: %v", err)
	}
	return h.procs.proc(""), h.procs.proc("e1")
}

// rawCall sends data as it is on a connection of its own, then closes its
// side for writing, and returns the response line decoded; ok is false when
// the shim closed the connection without one. The write runs on its own: a
// shim that stops reading makes it fail, and that is not the test's
// business.
func (h *harness) rawCall(t *testing.T, data []byte) (resp api.Response, ok bool) {
	t.Helper()
	conn, err := net.Dial("unix", h.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	written := make(chan struct{})
	go func() {
		defer close(written)
		if _, err := conn.Write(data); err == nil {
			_ = conn.(*net.UnixConn).CloseWrite()
		}
	}()
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		conn.Close()
		<-written
		return api.Response{}, false
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("response %q: %v", line, err)
	}
	conn.Close()
	<-written
	return resp, true
}

// alive fails the test unless the service still answers a Connect.
func (h *harness) alive(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.c.Connect(ctx); err != nil {
		t.Fatalf("the service no longer answers: Connect: %v", err)
	}
}
