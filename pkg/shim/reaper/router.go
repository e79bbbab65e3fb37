package reaper

import (
	"sync"
)

// Router routes exits to processes by pid, and closes the window between a
// process's birth and the moment its pid is known:
//
//   - Track is called before runc create/start/exec. While any start is in
//     flight, exits of unknown pids are buffered.
//   - The returned done(pid, onExit) registers the pid. An exit already
//     buffered for it is delivered at once; a later one when it comes.
//
// onExit runs in its own goroutine, never on the reaping path, so a handler
// waiting for a process lock (held across a runc call that needs the reaper)
// cannot deadlock the reaper.
type Router struct {
	mu       sync.Mutex
	inFlight int
	pending  map[int]Exit
	byPid    map[int]func(Exit)
	wg       sync.WaitGroup
}

// NewRouter returns an empty router; feed it with Run.
func NewRouter() *Router {
	return &Router{pending: map[int]Exit{}, byPid: map[int]func(Exit){}}
}

// Run routes the exits of sub until it is closed.
func (r *Router) Run(sub <-chan Exit) {
	for e := range sub {
		r.route(e)
	}
}

func (r *Router) route(e Exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.byPid[e.Pid]; ok {
		delete(r.byPid, e.Pid)
		r.deliver(f, e)
		return
	}
	if r.inFlight > 0 {
		r.pending[e.Pid] = e
	}
}

func (r *Router) deliver(f func(Exit), e Exit) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f(e)
	}()
}

// Track opens a start window. Call the returned function exactly once, with
// the started pid and its exit handler, or with pid 0 when the start failed.
func (r *Router) Track() (done func(pid int, onExit func(Exit))) {
	r.mu.Lock()
	r.inFlight++
	r.mu.Unlock()
	var once sync.Once
	return func(pid int, onExit func(Exit)) {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.inFlight--
			if pid > 0 && onExit != nil {
				if e, ok := r.pending[pid]; ok {
					delete(r.pending, pid)
					r.deliver(onExit, e)
				} else {
					r.byPid[pid] = onExit
				}
			}
			if r.inFlight == 0 {
				clear(r.pending)
			}
		})
	}
}

// Forget drops the handler of pid (the process was deleted unseen).
func (r *Router) Forget(pid int) {
	r.mu.Lock()
	delete(r.byPid, pid)
	r.mu.Unlock()
}

// Wait waits for the exit handlers in flight.
func (r *Router) Wait() { r.wg.Wait() }
