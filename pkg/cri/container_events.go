package cri

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// observer is what the events RPCs and CheckpointContainer remember
// between calls: the event broadcaster, the events already sent per object
// and the outcome of `criu check`. The Service owns one.
type observer struct {
	events *eventBroadcaster
	stages *eventStages

	criuOnce   sync.Once
	criuResult string
}

// eventBuffer is how many events a GetContainerEvents stream may fall
// behind before it is cut off.
const eventBuffer = 1024

func newObserver() *observer {
	return &observer{events: newEventBroadcaster(eventBuffer), stages: newEventStages()}
}

func (s *Service) observer() *observer { return s.obs }

// GetContainerEvents streams container and pod sandbox lifecycle events
// (sandbox events carry the sandbox's id as container_id) until the client
// goes away. A client that falls eventBuffer events behind is cut off with
// ResourceExhausted, and must relist. When the Service closes, every stream
// ends with Unavailable, so that a graceful stop of the gRPC server does
// not wait on them.
func (s *Service) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	ctx := stream.Context()
	o := s.observer()
	sub := o.events.subscribe()
	defer o.events.unsubscribe(sub)
	klog.FromContext(ctx).V(4).Info("Subscribed to container events")
	for {
		// A closing Service ends the stream first, even with events waiting.
		select {
		case <-o.events.closed:
			return errEventsClosed
		default:
		}
		select {
		case ev := <-sub.ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-sub.cut:
			return fmt.Errorf("event subscriber fell %d events behind and was cut off; resubscribe and relist: %w", o.events.buffer, errdefs.ErrResourceExhausted)
		case <-o.events.closed:
			return errEventsClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errEventsClosed ends the event streams of a closing Service.
var errEventsClosed = fmt.Errorf("cri-runtime is shutting down; resubscribe to container events after it restarts: %w", errdefs.ErrUnavailable)

// eventBroadcaster sends every event to every subscriber, each through its
// own buffered channel. Publishing never blocks: a subscriber whose buffer
// is full is cut off (its cut channel closed) and counted, so it learns it
// missed events instead of silently skipping them. Once closed, its
// closed channel tells every subscriber to end.
type eventBroadcaster struct {
	buffer    int
	cutOff    atomic.Int64
	replayed  atomic.Int64 // events handed to new subscribers from replay
	closed    chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	subs map[*eventSubscriber]struct{}
	// replay holds the events published while the daemon restored its
	// state (exits that happened while it was down), for subscribers that
	// (re)connect soon after; replayUntil ends that (zero: still restoring).
	replay      []*runtimeapi.ContainerEventResponse
	restored    bool
	replayUntil time.Time
}

// replayWindow is how long after start-up a new subscriber is handed the
// events of the restore: long enough for a kubelet to reconnect.
const replayWindow = 2 * time.Minute

type eventSubscriber struct {
	ch  chan *runtimeapi.ContainerEventResponse
	cut chan struct{}
}

func newEventBroadcaster(buffer int) *eventBroadcaster {
	return &eventBroadcaster{buffer: buffer, closed: make(chan struct{}), subs: map[*eventSubscriber]struct{}{}}
}

func (b *eventBroadcaster) subscribe() *eventSubscriber {
	sub := &eventSubscriber{ch: make(chan *runtimeapi.ContainerEventResponse, b.buffer), cut: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.restored && time.Now().After(b.replayUntil) {
		b.replay = nil
	}
	for _, ev := range b.replay {
		sub.ch <- ev // replay is never longer than the buffer
	}
	b.replayed.Add(int64(len(b.replay)))
	b.subs[sub] = struct{}{}
	return sub
}

// restoreDone ends the recording of restore events; they are replayed to
// subscribers for replayWindow more.
func (b *eventBroadcaster) restoreDone() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restored = true
	b.replayUntil = time.Now().Add(replayWindow)
}

// close tells every subscriber, current and future, to end (its closed
// channel); it may be called more than once.
func (b *eventBroadcaster) close() { b.closeOnce.Do(func() { close(b.closed) }) }

func (b *eventBroadcaster) unsubscribe(sub *eventSubscriber) {
	b.mu.Lock()
	delete(b.subs, sub)
	b.mu.Unlock()
}

// publish hands ev to every subscriber without blocking.
func (b *eventBroadcaster) publish(ev *runtimeapi.ContainerEventResponse) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.restored && len(b.replay) < b.buffer {
		b.replay = append(b.replay, ev)
	}
	for sub := range b.subs {
		select {
		case sub.ch <- ev:
		default:
			delete(b.subs, sub)
			close(sub.cut)
			b.cutOff.Add(1)
			klog.Background().Error(nil, "Cut off a slow container event subscriber", "buffer", b.buffer, "cutOff", b.cutOff.Load())
		}
	}
}

// subscribers is the number of current subscribers.
func (b *eventBroadcaster) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// eventStages remembers which events each object has had, so that each is
// sent once and in lifecycle order, whichever path (the RPC, the exit
// handler, a removal that recorded the exit itself) gets there first. A
// deleted object is kept as a tombstone for a while, so a late exit
// handler cannot send STOPPED after DELETED.
type eventStages struct {
	tombstoneTTL time.Duration

	mu   sync.Mutex
	seen map[string]stageSet
}

type stageSet struct {
	sent      [4]bool // indexed by ContainerEventType
	deletedAt time.Time
}

func newEventStages() *eventStages {
	return &eventStages{tombstoneTTL: time.Minute, seen: map[string]stageSet{}}
}

// emit decides which events to send for typ on object id and sends them
// through send, under the stages' lock, so that the order is kept:
//   - an event already sent is not sent again;
//   - nothing follows DELETED; STARTED does not follow STOPPED;
//   - DELETED is preceded by STOPPED if that was never sent.
func (e *eventStages) emit(id string, typ runtimeapi.ContainerEventType, send func(runtimeapi.ContainerEventType)) {
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
func (e *eventStages) prune(now time.Time) {
	for id, st := range e.seen {
		if !st.deletedAt.IsZero() && now.Sub(st.deletedAt) > e.tombstoneTTL {
			delete(e.seen, id)
		}
	}
}

// publishContainerEventByID is publishContainerEvent for a container
// known by id.
func (s *Service) publishContainerEventByID(ctx context.Context, id string, typ runtimeapi.ContainerEventType) {
	c, err := s.containers.Get(id)
	if err != nil || c.Meta.ID != id {
		return
	}
	s.publishContainerEvent(ctx, c, typ)
}

// publishContainerEvent sends a container's lifecycle event, with its pod
// sandbox's status and the statuses of the pod's containers attached, as
// containerd does (the kubelet's evented PLEG reads them).
func (s *Service) publishContainerEvent(ctx context.Context, c *container, typ runtimeapi.ContainerEventType) {
	o := s.observer()
	o.stages.emit(c.Meta.ID, typ, func(t runtimeapi.ContainerEventType) {
		ev := &runtimeapi.ContainerEventResponse{ContainerId: c.Meta.ID, ContainerEventType: t, CreatedAt: time.Now().UnixNano()}
		if sb, err := s.sandboxes.Get(c.Meta.SandboxID); err == nil {
			ev.PodSandboxStatus = toCRISandboxStatus(sb.Meta, sb.Status())
		}
		ev.ContainersStatuses = s.containerStatusesOf(c.Meta.SandboxID)
		o.events.publish(ev)
		klog.FromContext(ctx).V(5).Info("Published container event", "containerID", c.Meta.ID, "event", t.String())
	})
	if typ == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
		s.usage.Forget(c.Meta.ID)
	}
}

// publishSandboxEvent sends a pod sandbox's lifecycle events, in order;
// their container_id is the sandbox's id.
func (s *Service) publishSandboxEvent(ctx context.Context, sb *sandbox, types ...runtimeapi.ContainerEventType) {
	o := s.observer()
	for _, typ := range types {
		o.stages.emit(sb.Meta.ID, typ, func(t runtimeapi.ContainerEventType) {
			o.events.publish(&runtimeapi.ContainerEventResponse{
				ContainerId:        sb.Meta.ID,
				ContainerEventType: t,
				CreatedAt:          time.Now().UnixNano(),
				PodSandboxStatus:   toCRISandboxStatus(sb.Meta, sb.Status()),
				ContainersStatuses: s.containerStatusesOf(sb.Meta.ID),
			})
			klog.FromContext(ctx).V(5).Info("Published pod sandbox event", "podSandboxID", sb.Meta.ID, "event", t.String())
		})
		if typ == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
			s.usage.Forget(sb.Meta.ID)
		}
	}
}

func (s *Service) containerStatusesOf(sandboxID string) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, c := range s.containersOf(sandboxID) {
		out = append(out, toCRIContainerStatus(c.Meta, c.Status()))
	}
	return out
}

// Short names of the event types, for the one-line hooks in the lifecycle
// handlers.
const (
	evCreated = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
	evStarted = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
	evStopped = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
	evDeleted = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
)
