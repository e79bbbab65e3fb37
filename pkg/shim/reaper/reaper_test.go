package reaper

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestChildExitedBeforeRun: a child that exits between New and Run is still
// reaped and published (its SIGCHLD was queued since New).
func TestChildExitedBeforeRun(t *testing.T) {
	r := New()
	sub := r.Subscribe()
	cmd := exec.Command("/bin/sh", "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the child is a zombie now, and nobody reaps yet
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	select {
	case e := <-sub:
		if e.Pid != cmd.Process.Pid || e.Status != 3 {
			t.Fatalf("exit %+v, want pid %d status 3", e, cmd.Process.Pid)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the exit of a child that died before Run was never reaped")
	}
}
