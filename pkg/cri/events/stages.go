package events

import (
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Emit sends the events that typ calls for on object id, each built by
// build and published, in lifecycle order and once each (see stages.emit);
// it returns once they are published. build runs under the record's lock:
// it must not call Emit.
func (b *Broadcaster) Emit(id string, typ runtimeapi.ContainerEventType, build func(runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse) {
	b.stages.emit(id, typ, func(t runtimeapi.ContainerEventType) { b.Publish(build(t)) })
}

// stages remembers which events each object has had, so that each is
// sent once and in lifecycle order, whichever path (the RPC, the exit
// handler, a removal that recorded the exit itself) gets there first. A
// deleted object is kept as a tombstone for a while, so a late exit
// handler cannot send STOPPED after DELETED.
type stages struct {
	tombstoneTTL time.Duration

	mu   sync.Mutex
	seen map[string]stageSet
}

type stageSet struct {
	sent      [4]bool // indexed by ContainerEventType
	deletedAt time.Time
}

func newStages() *stages {
	return &stages{tombstoneTTL: time.Minute, seen: map[string]stageSet{}}
}

// emit decides which events to send for typ on object id and sends them
// through send, under the stages' lock, so that the order is kept:
//   - an event already sent is not sent again;
//   - nothing follows DELETED; STARTED does not follow STOPPED;
//   - DELETED is preceded by STOPPED if that was never sent.
func (e *stages) emit(id string, typ runtimeapi.ContainerEventType, send func(runtimeapi.ContainerEventType)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.seen[id]
	const (
		created = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
		started = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
		stopped = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
		deleted = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
	)
	if typ < created || typ > deleted || st.sent[typ] || st.sent[deleted] {
		return
	}
	switch typ {
	case started:
		if st.sent[stopped] {
			return
		}
	case deleted:
		if !st.sent[stopped] {
			send(stopped)
			st.sent[stopped] = true
		}
		st.deletedAt = time.Now()
		e.prune(st.deletedAt)
	}
	send(typ)
	st.sent[typ] = true
	e.seen[id] = st
}

// prune drops tombstones older than the TTL; the caller holds the lock.
func (e *stages) prune(now time.Time) {
	for id, st := range e.seen {
		if !st.deletedAt.IsZero() && now.Sub(st.deletedAt) > e.tombstoneTTL {
			delete(e.seen, id)
		}
	}
}
