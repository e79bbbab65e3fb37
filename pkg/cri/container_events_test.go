package cri

import (
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func ev(id string, typ runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
	return &runtimeapi.ContainerEventResponse{ContainerId: id, ContainerEventType: typ}
}

func TestBroadcasterEverySubscriberGetsEveryEvent(t *testing.T) {
	const subs, events = 5, 200
	b := newEventBroadcaster(events)
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
		b.publish(ev(string(rune('a'+n%26)), evCreated))
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
	if b.cutOff.Load() != 0 || b.subscribers() != 0 {
		t.Fatalf("cut off %d, left %d", b.cutOff.Load(), b.subscribers())
	}
}

func TestBroadcasterCutsOffSlowSubscriber(t *testing.T) {
	b := newEventBroadcaster(4)
	slow, fast := b.subscribe(), b.subscribe()
	for i := range 10 {
		b.publish(ev("c", runtimeapi.ContainerEventType(i%4)))
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
	if b.subscribers() != 1 {
		t.Fatalf("%d subscribers left, want the fast one", b.subscribers())
	}
	// Publishing after the cut neither blocks nor panics, and a late
	// unsubscribe of the cut one is harmless.
	b.publish(ev("c", evDeleted))
	b.unsubscribe(slow)
	b.unsubscribe(fast)
}

func TestEventStagesOrder(t *testing.T) {
	type step struct {
		typ  runtimeapi.ContainerEventType
		want []runtimeapi.ContainerEventType
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"full lifecycle", []step{{evCreated, []runtimeapi.ContainerEventType{evCreated}}, {evStarted, []runtimeapi.ContainerEventType{evStarted}}, {evStopped, []runtimeapi.ContainerEventType{evStopped}}, {evDeleted, []runtimeapi.ContainerEventType{evDeleted}}}},
		{"stopped twice (exit handler and removal)", []step{{evCreated, []runtimeapi.ContainerEventType{evCreated}}, {evStopped, []runtimeapi.ContainerEventType{evStopped}}, {evStopped, nil}}},
		{"deleted without a stop sends STOPPED first", []step{{evCreated, []runtimeapi.ContainerEventType{evCreated}}, {evStarted, []runtimeapi.ContainerEventType{evStarted}}, {evDeleted, []runtimeapi.ContainerEventType{evStopped, evDeleted}}}},
		{"nothing after DELETED", []step{{evCreated, []runtimeapi.ContainerEventType{evCreated}}, {evDeleted, []runtimeapi.ContainerEventType{evStopped, evDeleted}}, {evStopped, nil}, {evDeleted, nil}, {evStarted, nil}}},
		{"no STARTED after STOPPED", []step{{evCreated, []runtimeapi.ContainerEventType{evCreated}}, {evStopped, []runtimeapi.ContainerEventType{evStopped}}, {evStarted, nil}}},
		{"restored object: first event seen is STOPPED", []step{{evStopped, []runtimeapi.ContainerEventType{evStopped}}, {evDeleted, []runtimeapi.ContainerEventType{evDeleted}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEventStages()
			for i, s := range tc.steps {
				var got []runtimeapi.ContainerEventType
				e.emit("c", s.typ, func(t runtimeapi.ContainerEventType) { got = append(got, t) })
				if len(got) != len(s.want) {
					t.Fatalf("step %d (%s): sent %v, want %v", i, s.typ, got, s.want)
				}
				for j := range got {
					if got[j] != s.want[j] {
						t.Fatalf("step %d (%s): sent %v, want %v", i, s.typ, got, s.want)
					}
				}
			}
		})
	}
}

func TestEventStagesPrunesTombstones(t *testing.T) {
	e := newEventStages()
	e.tombstoneTTL = 0
	noop := func(runtimeapi.ContainerEventType) {}
	e.emit("a", evDeleted, noop)
	time.Sleep(time.Millisecond)
	e.emit("b", evDeleted, noop)
	e.mu.Lock()
	_, hasA := e.seen["a"]
	e.mu.Unlock()
	if hasA {
		t.Fatal("an expired tombstone was kept")
	}
}

// TestBroadcasterReplaysRestoreEvents: what is published while the daemon
// restores (exits found at start-up) reaches subscribers that connect soon
// after; live events after restore, and the restore events once the window
// has passed, do not.
func TestBroadcasterReplaysRestoreEvents(t *testing.T) {
	b := newEventBroadcaster(8)
	restored := &runtimeapi.ContainerEventResponse{ContainerId: "exited-while-down"}
	b.publish(restored)
	b.restoreDone()
	b.publish(&runtimeapi.ContainerEventResponse{ContainerId: "live"})

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
