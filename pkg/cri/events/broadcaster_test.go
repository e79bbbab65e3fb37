package events

import (
	"errors"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

const (
	evCreated = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
	evStarted = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
	evStopped = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
	evDeleted = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
)

func ev(id string, typ runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
	return &runtimeapi.ContainerEventResponse{ContainerId: id, ContainerEventType: typ}
}

func TestBroadcasterEverySubscriberGetsEveryEvent(t *testing.T) {
	const subs, events = 5, 200
	b := New(events)
	var wg sync.WaitGroup
	got := make([][]string, subs)
	for i := range subs {
		sub := b.subscribe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer b.unsubscribe(sub)
			for range events {
				select {
				case e := <-sub.ch:
					got[i] = append(got[i], e.GetContainerId())
				case <-sub.cut:
					t.Errorf("subscriber %d cut off", i)
					return
				case <-time.After(10 * time.Second):
					t.Errorf("subscriber %d timed out", i)
					return
				}
			}
		}()
	}
	for n := range events {
		b.Publish(ev(string(rune('a'+n%26)), evCreated))
	}
	wg.Wait()
	for i := range subs {
		if len(got[i]) != events {
			t.Fatalf("subscriber %d got %d events, want %d", i, len(got[i]), events)
		}
		for n, id := range got[i] {
			if id != string(rune('a'+n%26)) {
				t.Fatalf("subscriber %d: event %d out of order", i, n)
			}
		}
	}
	if b.cutOff.Load() != 0 || b.Subscribers() != 0 {
		t.Fatalf("cut off %d, left %d", b.cutOff.Load(), b.Subscribers())
	}
}

func TestBroadcasterCutsOffSlowSubscriber(t *testing.T) {
	b := New(4)
	slow, fast := b.subscribe(), b.subscribe()
	for i := range 10 {
		b.Publish(ev("c", runtimeapi.ContainerEventType(i%4)))
		// The fast subscriber keeps up: it reads each event at once.
		select {
		case e := <-fast.ch:
			if e.GetContainerEventType() != runtimeapi.ContainerEventType(i%4) {
				t.Fatalf("fast subscriber: event %d is %s", i, e.GetContainerEventType())
			}
		case <-fast.cut:
			t.Fatalf("the fast subscriber was cut off at event %d", i)
		}
	}
	select {
	case <-slow.cut:
	default:
		t.Fatal("the slow subscriber was not cut off")
	}
	if n := b.cutOff.Load(); n != 1 {
		t.Fatalf("cut off count %d, want 1", n)
	}
	if got := len(slow.ch); got != 4 {
		t.Fatalf("the slow subscriber holds %d events, want its full buffer of 4", got)
	}
	if b.Subscribers() != 1 {
		t.Fatalf("%d subscribers left, want the fast one", b.Subscribers())
	}
	// Publishing after the cut neither blocks nor panics, and a late
	// unsubscribe of the cut one is harmless.
	b.Publish(ev("c", evDeleted))
	b.unsubscribe(slow)
	b.unsubscribe(fast)
}

// TestBroadcasterReplaysRestoreEvents: what is published while the daemon
// restores (exits found at start-up) reaches subscribers that connect soon
// after; live events after restore, and the restore events once the window
// has passed, do not.
func TestBroadcasterReplaysRestoreEvents(t *testing.T) {
	b := New(8)
	restored := &runtimeapi.ContainerEventResponse{ContainerId: "exited-while-down"}
	b.Publish(restored)
	b.RestoreDone()
	b.Publish(&runtimeapi.ContainerEventResponse{ContainerId: "live"})

	sub := b.subscribe()
	select {
	case ev := <-sub.ch:
		if ev.GetContainerId() != "exited-while-down" {
			t.Fatalf("first replayed event %q", ev.GetContainerId())
		}
	default:
		t.Fatal("a subscriber after restore got no replay")
	}
	if n := b.replayed.Load(); n != 1 {
		t.Errorf("replayed counts %d events, want 1 (the metric)", n)
	}
	select {
	case ev := <-sub.ch:
		t.Fatalf("replayed a live event published before subscribing: %q", ev.GetContainerId())
	default:
	}

	b.mu.Lock()
	b.replayUntil = time.Now().Add(-time.Second) // the window has passed
	b.mu.Unlock()
	late := b.subscribe()
	select {
	case ev := <-late.ch:
		t.Fatalf("a late subscriber got a stale replay: %q", ev.GetContainerId())
	default:
	}
	if n := b.replayed.Load(); n != 1 {
		t.Errorf("replayed counts %d events after a late subscriber, want still 1", n)
	}
}

// TestServeEnds: a stream that falls a whole buffer behind ends with
// ResourceExhausted, one of a closed Broadcaster with Unavailable.
func TestServeEnds(t *testing.T) {
	b := New(2)
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- b.Serve(t.Context(), func(*runtimeapi.ContainerEventResponse) error {
			once.Do(func() { close(started) })
			<-release // a slow client
			return nil
		})
	}()
	for b.Subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	b.Publish(ev("a", evCreated))
	<-started
	for range 3 {
		b.Publish(ev("a", evCreated))
	}
	close(release)
	if err := <-done; !errdefs.IsResourceExhausted(err) {
		t.Fatalf("a cut-off stream ended with %v, want ResourceExhausted", err)
	}

	b.Close()
	if err := b.Serve(t.Context(), func(*runtimeapi.ContainerEventResponse) error { return nil }); !errors.Is(err, ErrClosed) || !errdefs.IsUnavailable(err) {
		t.Fatalf("a stream of a closed broadcaster ended with %v, want ErrClosed (Unavailable)", err)
	}
}
