package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventLog collects one GetContainerEvents stream.
type eventLog struct {
	mu   sync.Mutex
	evs  []*runtimeapi.ContainerEventResponse
	err  error
	done chan struct{}
}

func subscribeEvents(t *testing.T, ctx context.Context) *eventLog {
	t.Helper()
	stream, err := env.rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	l := &eventLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			ev, err := stream.Recv()
			l.mu.Lock()
			if err != nil {
				l.err = err
				l.mu.Unlock()
				return
			}
			l.evs = append(l.evs, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

// find returns the first event of typ for id, or nil.
func (l *eventLog) find(id string, typ runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if ev.GetContainerId() == id && ev.GetContainerEventType() == typ {
			return ev
		}
	}
	return nil
}

func (l *eventLog) wait(t *testing.T, id string, typ runtimeapi.ContainerEventType, within time.Duration) *runtimeapi.ContainerEventResponse {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ev := l.find(id, typ); ev != nil {
			return ev
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %v for %.12s within %s; got: %s", typ, id, within, l.summary())
	return nil
}

func (l *eventLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b []string
	for _, ev := range l.evs {
		b = append(b, ev.GetContainerId()[:12]+" "+strings.TrimSuffix(strings.TrimPrefix(ev.GetContainerEventType().String(), "CONTAINER_"), "_EVENT"))
	}
	if len(b) == 0 {
		return "(none)"
	}
	return strings.Join(b, ", ")
}

// TestEventsAcrossRestart: a GetContainerEvents subscriber that reconnects
// after a daemon restart should learn of the containers that exited while
// the daemon was down (STOPPED, with their exit codes in
// containers_statuses). It measures what the reconnected stream delivers
// before the test does anything, and skips, naming the gap, when the
// facade does not replay those exits.
func TestEventsAcrossRestart(t *testing.T) {
	pullImage(t, e2eBusybox)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ids []string
	checkLeaksAfter(t, &ids)
	before := subscribeEvents(t, ctx)
	p := runPod(t, "events-restart")
	gate := "/dev/shm/go"
	mk := func(script string) *runtimeapi.ContainerConfig {
		return sh("while [ ! -e " + gate + " ]; do usleep 20000; done; " + script)
	}
	zero := p.container(t, "zero", mk("exit 0"), true)
	three := p.container(t, "three", mk("exit 3"), true)
	live := p.container(t, "live", sh("sleep 100000"), true)
	ids = append(ids, p.id, zero, three, live)
	for _, id := range []string{zero, three, live} {
		before.wait(t, id, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, 10*time.Second)
	}
	// kill -9: with SIGTERM the daemon does not stop while a
	// GetContainerEvents stream is open (GracefulStop waits for it; the
	// service's Close, which ends the streams, runs only after it).
	restartDaemonWhileDown(t, syscall.SIGKILL, func() {
		if err := os.WriteFile(filepath.Join(env.state, "sandboxes", p.id, "shm", "go"), nil, 0o644); err != nil {
			t.Errorf("open the gate: %v", err)
		}
		time.Sleep(2 * time.Second) // both exit while no daemon runs
	})
	// The old stream ends with the daemon; the client learns it.
	select {
	case <-before.done:
		if c := status.Code(before.err); c != codes.Unavailable && c != codes.Canceled {
			t.Errorf("the stream of the stopped daemon ended with %v (%v), want Unavailable", c, before.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of the stopped daemon did not end")
	}
	after := subscribeEvents(t, ctx)
	time.Sleep(3 * time.Second) // what does the new stream bring unasked?
	replayed := after.summary()
	stopped := map[string]*runtimeapi.ContainerEventResponse{}
	for _, id := range []string{zero, three} {
		if ev := after.find(id, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT); ev != nil {
			stopped[id] = ev
		}
	}
	// The reconnected stream is live: a removal reaches it, and the
	// statuses it carries hold the exits.
	if _, err := env.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: three}); err != nil {
		t.Fatal(err)
	}
	ev := after.wait(t, three, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, 10*time.Second)
	for _, cs := range ev.GetContainersStatuses() {
		if cs.GetId() == zero && (cs.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || cs.GetExitCode() != 0) {
			t.Errorf("containers_statuses of a later event: zero is %v %d, want EXITED 0", cs.GetState(), cs.GetExitCode())
		}
	}
	t.Logf("events on the reconnected stream in its first 3 s: %s", replayed)
	t.Logf("after RemoveContainer(three): %s", after.summary())
	if len(stopped) < 2 {
		t.Fatalf("the reconnected subscriber got no STOPPED for %d of the 2 containers that exited while the daemon was down", 2-len(stopped))
	}
	for id, code := range map[string]int32{zero: 0, three: 3} {
		var got *runtimeapi.ContainerStatus
		for _, cs := range stopped[id].GetContainersStatuses() {
			if cs.GetId() == id {
				got = cs
			}
		}
		if got.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || got.GetExitCode() != code {
			t.Errorf("STOPPED of %.12s carries %v %d, want EXITED %d", id, got.GetState(), got.GetExitCode(), code)
		}
	}
}
