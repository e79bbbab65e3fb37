package reaper

import (
	"testing"
	"time"
)

func recv(t *testing.T, c <-chan Exit) Exit {
	t.Helper()
	select {
	case e := <-c:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no exit delivered")
		return Exit{}
	}
}

func TestRouterOrdering(t *testing.T) {
	for _, tc := range []struct {
		name        string
		exitBefore  bool // the exit is reaped before the pid is registered
		wantDeliver bool
	}{
		{"exit after registration", false, true},
		{"exit buffered during start", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRouter()
			got := make(chan Exit, 1)
			done := r.Track()
			if tc.exitBefore {
				r.route(Exit{Pid: 42, Status: 3})
			}
			done(42, func(e Exit) { got <- e })
			if !tc.exitBefore {
				r.route(Exit{Pid: 42, Status: 3})
			}
			if e := recv(t, got); e.Pid != 42 || e.Status != 3 {
				t.Fatalf("got %+v", e)
			}
			r.Wait()
		})
	}
}

func TestRouterDropsUnknownOutsideStarts(t *testing.T) {
	r := NewRouter()
	r.route(Exit{Pid: 7}) // nobody starting: an orphan's exit, dropped
	got := make(chan Exit, 1)
	done := r.Track()
	done(7, func(e Exit) { got <- e })
	select {
	case e := <-got:
		t.Fatalf("stale exit delivered: %+v", e)
	case <-time.After(50 * time.Millisecond):
	}
	// After a failed start the buffer is cleared too.
	done2 := r.Track()
	r.route(Exit{Pid: 8})
	done2(0, nil)
	if len(r.pending) != 0 {
		t.Fatalf("pending not cleared: %v", r.pending)
	}
}
