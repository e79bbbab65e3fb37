package reaper

import (
	"os/exec"

	runc "github.com/containerd/go-runc"
)

// Monitor is go-runc's ProcessMonitor over the reaper: the reaper, not
// exec.Cmd.Wait, collects runc's exit, so the SIGCHLD loop and go-runc never
// steal each other's children. Install it once in main: runc.Monitor = m.
type Monitor struct {
	r *Reaper
}

var _ runc.ProcessMonitor = (*Monitor)(nil)

// NewMonitor returns a Monitor over r.
func NewMonitor(r *Reaper) *Monitor { return &Monitor{r: r} }

// Start subscribes before starting c, so c's exit cannot be missed.
func (m *Monitor) Start(c *exec.Cmd) (chan runc.Exit, error) {
	sub := m.r.Subscribe()
	if err := c.Start(); err != nil {
		m.r.Unsubscribe(sub)
		return nil, err
	}
	ec := make(chan runc.Exit, 1)
	go func() {
		defer m.r.Unsubscribe(sub)
		for e := range sub {
			if e.Pid == c.Process.Pid {
				ec <- runc.Exit{Timestamp: e.Timestamp, Pid: e.Pid, Status: e.Status}
				close(ec)
				return
			}
		}
	}()
	return ec, nil
}

// StartLocked is Start: the shim sets no Pdeathsig, so no thread pinning.
func (m *Monitor) StartLocked(c *exec.Cmd) (chan runc.Exit, error) {
	return m.Start(c)
}

// Wait returns c's exit status once reaped. c.Wait then only flushes the
// copying goroutines of c's output (the process is already reaped).
func (m *Monitor) Wait(c *exec.Cmd, ec chan runc.Exit) (int, error) {
	e := <-ec
	_ = c.Wait()
	return e.Status, nil
}
