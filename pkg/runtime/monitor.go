package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// startMonitor watches a task's init process through a Wait call held open
// on its shim: the call returns the exit, or fails when the shim dies.
func (r *Runtime) startMonitor(t *Task) {
	ctx, cancel := context.WithCancel(r.ctx)
	t.stopMonitor = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(t.monitorDone)
		r.monitor(ctx, t)
	}()
}

func (r *Runtime) monitor(ctx context.Context, t *Task) {
	logger := klog.LoggerWithValues(klog.Background(), "taskID", t.id, "namespace", t.ns)
	backoff := 50 * time.Millisecond
	for {
		e, err := t.shim.Wait(ctx, "")
		switch {
		case err == nil:
			r.handleExit(t, fromAPIExit(&e))
			return
		case ctx.Err() != nil:
			return
		case isShimGone(err) && r.shimDead(ctx, t):
			logger.Info("Shim of task died; cleaning up", "pid", t.shim.pid)
			if _, err := r.cleanupDead(ctx, t, nil); err != nil {
				logger.Error(err, "Failed to clean up after a dead shim")
			}
			return
		}
		logger.V(4).Info("Waiting for task failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// shimDead checks, with a fresh connection, whether the shim still answers.
func (r *Runtime) shimDead(ctx context.Context, t *Task) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := t.shim.Connect(ctx)
	return err != nil && isShimGone(err)
}

// handleExit records the init's exit and publishes it, once.
func (r *Runtime) handleExit(t *Task, e *Exit) {
	if !t.setExit(e) {
		return
	}
	klog.Background().V(2).Info("Task exited", "taskID", t.id, "namespace", t.ns, "pid", e.Pid, "exitCode", e.Status)
	if e.OOMKilled {
		r.events.publish(Event{Type: EventTaskOOM, Namespace: t.ns, ID: t.id, Pid: e.Pid})
	}
	r.events.publish(Event{Type: EventTaskExit, Namespace: t.ns, ID: t.id, Pid: e.Pid, Exit: e})
}

// finishDelete is the end of a normal delete: the shim has deleted the init
// process; stop monitoring, stop the shim, remove what is left.
func (r *Runtime) finishDelete(ctx context.Context, t *Task, e *Exit) (*Exit, error) {
	if t.stopMonitor != nil {
		t.stopMonitor()
		<-t.monitorDone
	}
	if t.exit != nil {
		e = t.exit
	}
	r.handleExit(t, e)
	ctx = context.WithoutCancel(ctx)
	if err := t.shim.shutdown(ctx); err != nil {
		klog.FromContext(ctx).Error(err, "Shim did not shut down; killed it", "taskID", t.id, "pid", t.shim.pid)
	}
	if err := r.removeTask(ctx, t.rec); err != nil {
		return nil, err
	}
	r.forget(t)
	klog.FromContext(ctx).V(2).Info("Deleted task", "taskID", t.id, "exitCode", e.Status)
	r.events.publish(Event{Type: EventTaskDelete, Namespace: t.ns, ID: t.id, Pid: e.Pid, Exit: e})
	return e, nil
}

// cleanupDead cleans up after a task whose shim is gone: the OCI runtime's
// state (killing whatever of the container still runs), the rootfs mount,
// the bundle and the record. The exit is the one the shim recorded in the
// bundle, else 128+SIGKILL. t may be nil for a task found only in the store.
func (r *Runtime) cleanupDead(ctx context.Context, t *Task, rec *taskRecord) (*Exit, error) {
	if t != nil {
		rec = &t.rec
		var exit *Exit
		var err error
		t.deleteOnce.Do(func() {
			exit, err = r.cleanupRecord(ctx, *rec, t.exit)
			t.deleteExit, t.deleteErr = exit, err
			if err == nil {
				if t.setExit(exit) {
					r.publishExit(t.ns, t.id, exit)
				}
				r.forget(t)
				r.events.publish(Event{Type: EventTaskDelete, Namespace: t.ns, ID: t.id, Pid: exit.Pid, Exit: exit})
			}
		})
		return t.deleteExit, t.deleteErr
	}
	exit, err := r.cleanupRecord(ctx, *rec, nil)
	if err != nil {
		return nil, err
	}
	r.publishExit(rec.Namespace, rec.ID, exit)
	r.events.publish(Event{Type: EventTaskDelete, Namespace: rec.Namespace, ID: rec.ID, Pid: exit.Pid, Exit: exit})
	return exit, nil
}

func (r *Runtime) publishExit(ns, id string, e *Exit) {
	if e.OOMKilled {
		r.events.publish(Event{Type: EventTaskOOM, Namespace: ns, ID: id, Pid: e.Pid})
	}
	r.events.publish(Event{Type: EventTaskExit, Namespace: ns, ID: id, Pid: e.Pid, Exit: e})
}

func (r *Runtime) cleanupRecord(ctx context.Context, rec taskRecord, known *Exit) (*Exit, error) {
	logger := klog.FromContext(ctx).WithValues("taskID", rec.ID, "namespace", rec.Namespace)
	// A shim that did not answer may still be starting (the daemon died
	// just after launching it): it must not outlive its task's cleanup.
	for _, pid := range shimsOfBundle(rec.Bundle) {
		logger.Info("Killing a shim that never answered", "pid", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := forceDeleteOCI(ctx, rec); err != nil {
		logger.Error(err, "OCI runtime could not delete the container of a dead shim")
	}
	exit := known
	if exit == nil {
		if e, err := readExit(rec.Bundle); err == nil {
			exit = fromAPIExit(e)
		} else {
			exit = &Exit{Status: 128 + int(syscall.SIGKILL), ExitedAt: time.Now()}
		}
	}
	if err := r.removeTask(ctx, rec); err != nil {
		return nil, err
	}
	logger.V(2).Info("Cleaned up task of a dead shim", "exitCode", exit.Status)
	return exit, nil
}

// removeTask removes a task's bundle, socket and record.
func (r *Runtime) removeTask(ctx context.Context, rec taskRecord) error {
	if err := removeBundle(rec.Bundle); err != nil {
		return fmt.Errorf("remove bundle of task %s: %w", rec.ID, err)
	}
	if err := os.Remove(rec.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := r.store.Delete(ctx, store.KindTasks, taskKey(rec.Namespace, rec.ID)); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// forceDeleteOCI runs `<runtime> delete --force`, which kills what is left
// of the container and removes the runtime's state. Success is judged by
// the runtime's state dir being gone, not by its output.
func forceDeleteOCI(ctx context.Context, rec taskRecord) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stateDir := filepath.Join(rec.Runtime.Root, rec.ID)
	if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	out, err := exec.CommandContext(ctx, rec.Runtime.Binary, "--root", rec.Runtime.Root, "delete", "--force", rec.ID).CombinedOutput()
	if _, statErr := os.Stat(stateDir); errors.Is(statErr, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s delete --force %s: %w: %s", rec.Runtime.Binary, rec.ID, err, out)
	}
	return fmt.Errorf("%s delete --force %s left %s behind", rec.Runtime.Binary, rec.ID, stateDir)
}
