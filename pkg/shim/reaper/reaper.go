// Package reaper makes the shim the subreaper of its task and reaps every
// child: runc's own commands (handed back to go-runc through Monitor) and the
// container's processes (routed by pid through Router).
package reaper

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is one reaped child.
type Exit struct {
	Pid       int
	Status    int // exit code, or 128+signal
	Timestamp time.Time
}

// SetSubreaper makes the calling process the child subreaper: orphans of its
// descendants (the container's init once runc exits) are re-parented to it.
func SetSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// subscriberBuffer is each subscriber's queue; a send blocks when it is full,
// so subscribers must keep reading (Monitor.Wait and the Router do).
const subscriberBuffer = 128

// Reaper reaps children on SIGCHLD and publishes their exits to every
// subscriber.
type Reaper struct {
	sigs chan os.Signal
	mu   sync.Mutex
	subs map[chan Exit]struct{}
}

// New returns a reaper that already listens for SIGCHLD (so no child's exit
// can fall between New and Run); call Run to start reaping.
func New() *Reaper {
	r := &Reaper{sigs: make(chan os.Signal, 32), subs: map[chan Exit]struct{}{}}
	signal.Notify(r.sigs, unix.SIGCHLD)
	return r
}

// Subscribe returns a channel that receives every exit from now on.
func (r *Reaper) Subscribe() chan Exit {
	c := make(chan Exit, subscriberBuffer)
	r.mu.Lock()
	r.subs[c] = struct{}{}
	r.mu.Unlock()
	return c
}

// Unsubscribe stops delivery to c.
func (r *Reaper) Unsubscribe(c chan Exit) {
	r.mu.Lock()
	delete(r.subs, c)
	r.mu.Unlock()
}

// Run reaps until ctx is done. Children that exited before it runs are
// reaped at once: their SIGCHLD was queued since New.
func (r *Reaper) Run(ctx context.Context) {
	defer signal.Stop(r.sigs)
	r.reap()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.sigs:
			r.reap()
		}
	}
}

// reap collects every child that has exited: signals coalesce, so one
// SIGCHLD may stand for many exits.
func (r *Reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.publish(Exit{Pid: pid, Status: exitStatus(ws), Timestamp: time.Now()})
	}
}

func (r *Reaper) publish(e Exit) {
	r.mu.Lock()
	subs := make([]chan Exit, 0, len(r.subs))
	for c := range r.subs {
		subs = append(subs, c)
	}
	r.mu.Unlock()
	for _, c := range subs {
		c <- e
	}
}

func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
