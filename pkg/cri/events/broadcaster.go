// Package events is the CRI's container event stream (GetContainerEvents):
// a broadcaster that hands every lifecycle event to every subscriber
// without ever blocking the publisher, and the per-object record of what
// was sent, so that each event goes out once and in lifecycle order
// whichever path gets there first.
//
// It holds no CRI objects: the facade builds each event (with the pod's
// and containers' statuses attached) in the callback of Emit.
package events

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// DefaultBuffer is how many events a GetContainerEvents stream may fall
// behind before it is cut off.
const DefaultBuffer = 1024

// replayWindow is how long after start-up a new subscriber is handed the
// events of the restore: long enough for a kubelet to reconnect.
const replayWindow = 2 * time.Minute

// Broadcaster sends every event to every subscriber, each through its
// own buffered channel. Publishing never blocks: a subscriber whose buffer
// is full is cut off (its cut channel closed) and counted, so it learns it
// missed events instead of silently skipping them. Once closed, its
// closed channel tells every subscriber to end.
type Broadcaster struct {
	buffer    int
	cutOff    atomic.Int64
	replayed  atomic.Int64 // events handed to new subscribers from replay
	closed    chan struct{}
	closeOnce sync.Once
	stages    *stages

	mu   sync.Mutex
	subs map[*subscriber]struct{}
	// replay holds the events published while the daemon restored its
	// state (exits that happened while it was down), for subscribers that
	// (re)connect soon after; replayUntil ends that (zero: still restoring).
	replay      []*runtimeapi.ContainerEventResponse
	restored    bool
	replayUntil time.Time
}

type subscriber struct {
	ch  chan *runtimeapi.ContainerEventResponse
	cut chan struct{}
}

// New returns a Broadcaster whose subscribers may fall buffer events
// behind; it records what it publishes for replay until RestoreDone.
func New(buffer int) *Broadcaster {
	return &Broadcaster{buffer: buffer, closed: make(chan struct{}), subs: map[*subscriber]struct{}{}, stages: newStages()}
}

// ErrClosed ends the event streams of a closing Service.
var ErrClosed = fmt.Errorf("cri-runtime is shutting down; resubscribe to container events after it restarts: %w", errdefs.ErrUnavailable)

// Serve subscribes and hands every event to send until ctx ends, send
// fails, the subscriber falls a whole buffer behind (ResourceExhausted: it
// must relist) or the Broadcaster closes (ErrClosed, so that a graceful
// stop of the gRPC server does not wait on the stream).
func (b *Broadcaster) Serve(ctx context.Context, send func(*runtimeapi.ContainerEventResponse) error) error {
	sub := b.subscribe()
	defer b.unsubscribe(sub)
	klog.FromContext(ctx).V(4).Info("Subscribed to container events")
	for {
		// A closing Broadcaster ends the stream first, even with events waiting.
		select {
		case <-b.closed:
			return ErrClosed
		default:
		}
		select {
		case ev := <-sub.ch:
			if err := send(ev); err != nil {
				return err
			}
		case <-sub.cut:
			return fmt.Errorf("event subscriber fell %d events behind and was cut off; resubscribe and relist: %w", b.buffer, errdefs.ErrResourceExhausted)
		case <-b.closed:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *Broadcaster) subscribe() *subscriber {
	sub := &subscriber{ch: make(chan *runtimeapi.ContainerEventResponse, b.buffer), cut: make(chan struct{})}
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

// RestoreDone ends the recording of restore events; they are replayed to
// subscribers for replayWindow more.
func (b *Broadcaster) RestoreDone() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restored = true
	b.replayUntil = time.Now().Add(replayWindow)
}

// Close tells every subscriber, current and future, to end; it may be
// called more than once.
func (b *Broadcaster) Close() { b.closeOnce.Do(func() { close(b.closed) }) }

func (b *Broadcaster) unsubscribe(sub *subscriber) {
	b.mu.Lock()
	delete(b.subs, sub)
	b.mu.Unlock()
}

// Publish hands ev to every subscriber without blocking.
func (b *Broadcaster) Publish(ev *runtimeapi.ContainerEventResponse) {
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

// Subscribers is the number of current subscribers.
func (b *Broadcaster) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// CutOff counts the subscribers cut off for falling behind.
func (b *Broadcaster) CutOff() int64 { return b.cutOff.Load() }

// Replayed counts the events handed to new subscribers from what restore
// recorded.
func (b *Broadcaster) Replayed() int64 { return b.replayed.Load() }
