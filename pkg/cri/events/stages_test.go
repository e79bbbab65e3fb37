package events

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

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
			e := newStages()
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
	e := newStages()
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

// TestEmitPublishesInStageOrder: Emit builds and publishes what the
// stages let through, so a subscriber sees STOPPED before DELETED.
func TestEmitPublishesInStageOrder(t *testing.T) {
	b := New(8)
	sub := b.subscribe()
	defer b.unsubscribe(sub)
	build := func(typ runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse { return ev("c", typ) }
	b.Emit("c", evCreated, build)
	b.Emit("c", evDeleted, build)
	b.Emit("c", evStopped, build) // after DELETED: dropped
	for _, want := range []runtimeapi.ContainerEventType{evCreated, evStopped, evDeleted} {
		select {
		case e := <-sub.ch:
			if e.GetContainerEventType() != want {
				t.Fatalf("got %s, want %s", e.GetContainerEventType(), want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", want)
		}
	}
	if n := len(sub.ch); n != 0 {
		t.Fatalf("%d more events, want none", n)
	}
}
