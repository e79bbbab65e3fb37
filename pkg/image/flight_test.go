package image

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFlightSharesAndSurvivesOneCancel(t *testing.T) {
	var wg sync.WaitGroup
	g := newFlight[int](context.Background(), &wg)
	var runs atomic.Int32
	release, started := make(chan struct{}), make(chan struct{})
	fn := func(ctx context.Context) (int, error) {
		runs.Add(1)
		close(started)
		select {
		case <-release:
			return 42, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	impatient, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := g.do(impatient, "k", fn); errc <- err }()
	<-started
	res := make(chan int, 1)
	go func() { v, _ := g.do(context.Background(), "k", fn); res <- v }()
	// Cancel only once the patient caller has joined: otherwise the
	// impatient one is the last waiter and rightly cancels the call.
	waitWaiters(t, g, "k", 2)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("impatient caller: %v", err)
	}
	close(release)
	if v := <-res; v != 42 {
		t.Errorf("patient caller got %d", v)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}

	// When every waiter gives up the call is cancelled.
	ctx, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := g.do(ctx, "k2", func(ctx context.Context) (int, error) { <-ctx.Done(); done <- ctx.Err(); return 0, ctx.Err() })
		_ = err
	}()
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned call ctx: %v", err)
	}
	wg.Wait()
}

// waitWaiters waits until n callers wait on key's call.
func waitWaiters[T any](t *testing.T, g *flight[T], key string, n int) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		g.mu.Lock()
		c, ok := g.calls[key]
		got := 0
		if ok {
			got = c.waiters
		}
		g.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fewer than %d waiters on %s", n, key)
}
