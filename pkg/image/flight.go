package image

import (
	"context"
	"sync"
)

// flight runs one call per key at a time and hands its result to every
// caller that asked for the same key meanwhile (singleflight). The call
// runs on a context of its own, detached from the caller that started it:
// it is cancelled when every waiter has given up, or when the owner's base
// context ends, so one impatient kubelet retry does not fail the others.
type flight[T any] struct {
	base context.Context // cancelled by Service.Close
	wg   *sync.WaitGroup // Service.Close waits for running calls

	mu    sync.Mutex
	calls map[string]*call[T]
}

type call[T any] struct {
	done    chan struct{}
	val     T
	err     error
	waiters int
	cancel  context.CancelFunc
}

func newFlight[T any](base context.Context, wg *sync.WaitGroup) *flight[T] {
	return &flight[T]{base: base, wg: wg, calls: map[string]*call[T]{}}
}

// do returns the result of fn for key, running fn unless a call for key is
// already running. The caller's ctx only bounds its own wait.
func (g *flight[T]) do(ctx context.Context, key string, fn func(context.Context) (T, error)) (T, error) {
	g.mu.Lock()
	c, ok := g.calls[key]
	if !ok {
		// Keep the first caller's values (logger) but not its deadline.
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stop := context.AfterFunc(g.base, cancel)
		c = &call[T]{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = c
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			c.val, c.err = fn(cctx)
			stop()
			cancel()
			g.mu.Lock()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			// Nobody wants it any more: stop it, and let a later caller
			// start afresh rather than join a cancelled call.
			c.cancel()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
		}
		g.mu.Unlock()
		var zero T
		return zero, ctx.Err()
	}
}
