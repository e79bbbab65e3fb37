package runtime

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// EventType names a task lifecycle event.
type EventType string

// The task events.
const (
	EventTaskCreate EventType = "TaskCreate"
	EventTaskStart  EventType = "TaskStart"
	EventTaskExit   EventType = "TaskExit"
	EventTaskOOM    EventType = "TaskOOM"
	EventTaskDelete EventType = "TaskDelete"
)

// Event is one task lifecycle event.
type Event struct {
	Type      EventType
	Namespace string
	ID        string
	Pid       int
	// Exit is set on TaskExit and TaskDelete.
	Exit      *Exit
	Timestamp time.Time
}

// subscriberBuffer is how many events a subscriber may fall behind before
// it is cut off.
const subscriberBuffer = 4096

// exchange broadcasts events to every subscriber. A subscriber that falls
// a whole buffer behind is disconnected (its channel closed) and counted,
// never silently skipped: it must resubscribe and re-read state.
type exchange struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	dropped atomic.Int64
}

type subscriber struct {
	ch     chan Event
	closed bool
}

func newExchange() *exchange {
	return &exchange{subs: map[*subscriber]struct{}{}}
}

func (e *exchange) subscribe(ctx context.Context) <-chan Event {
	s := &subscriber{ch: make(chan Event, subscriberBuffer)}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.remove(s)
	}()
	return s.ch
}

func (e *exchange) remove(s *subscriber) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
		delete(e.subs, s)
	}
}

func (e *exchange) publish(ev Event) {
	if ev.Timestamp.IsZero() {
		ev.Timestamp = time.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		select {
		case s.ch <- ev:
		default:
			s.closed = true
			close(s.ch)
			delete(e.subs, s)
			e.dropped.Add(1)
			klog.Background().Error(nil, "Disconnected a slow event subscriber", "buffer", subscriberBuffer)
		}
	}
}
