package runtime

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// restoreWorkers bounds how many shims are reconnected at once.
const restoreWorkers = 8

// Restore brings back every task of a previous run: a task whose shim
// answers goes back into the task list and is monitored again; a task whose
// shim is dead (or whose bundle is gone, as after a reboot) is cleaned up
// and its exit published. Nothing here aborts start-up: a task that cannot
// be read is logged and cleaned up.
func (r *Runtime) Restore(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	var recs []taskRecord
	if err := r.store.List(ctx, store.KindTasks, func(key string, dec store.Decoder) error {
		var rec taskRecord
		if err := dec(&rec); err != nil {
			logger.Error(err, "Unreadable task record; skipping", "key", key)
			return nil
		}
		recs = append(recs, rec)
		return nil
	}); err != nil {
		return err
	}
	work := make(chan taskRecord)
	var wg sync.WaitGroup
	for range min(restoreWorkers, len(recs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rec := range work {
				r.restoreOne(ctx, rec)
			}
		}()
	}
	for _, rec := range recs {
		work <- rec
	}
	close(work)
	wg.Wait()
	return nil
}

// RestoreStats is what Restore found, by what it did with each task.
type RestoreStats struct {
	Running     int // the shim answered: monitored again
	Exited      int // the shim was dead: cleaned up, its exit published
	BundleGone  int // the bundle was gone (a reboot): cleaned up
	NeverCreate int // the daemon died before the create: removed
}

type restoreCounts struct{ running, exited, bundleGone, neverCreated atomic.Int64 }

// RestoreStats reports what the last Restore found (for the metrics).
func (r *Runtime) RestoreStats() RestoreStats {
	c := &r.restored
	return RestoreStats{Running: int(c.running.Load()), Exited: int(c.exited.Load()), BundleGone: int(c.bundleGone.Load()), NeverCreate: int(c.neverCreated.Load())}
}

// restoreOne reconciles one recorded task against its shim.
func (r *Runtime) restoreOne(ctx context.Context, rec taskRecord) {
	logger := klog.FromContext(ctx).WithValues("taskID", rec.ID, "namespace", rec.Namespace)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, statErr := os.Stat(rec.Bundle)
	var shim *shimAndState
	if statErr == nil {
		shim = tryConnect(ctx, rec)
	}
	switch {
	case errors.Is(statErr, os.ErrNotExist):
		// The bundle is gone (a reboot emptied the state dir): the task
		// cannot be running. Release what is left and report it exited.
		logger.Info("Task's bundle is gone; cleaning up")
		r.restored.bundleGone.Add(1)
		if _, err := r.cleanupDead(ctx, nil, &rec); err != nil {
			logger.Error(err, "Failed to clean up a task without a bundle")
		}
	case shim != nil && shim.taskPid == 0:
		// The daemon died between starting the shim and its create: there
		// never was a process, so there is no exit to report. Stop the
		// shim and remove whatever a create in flight may have left.
		logger.Info("Shim of task never created its process; removing it")
		r.restored.neverCreated.Add(1)
		if err := shim.conn.shutdown(ctx); err != nil {
			logger.Error(err, "Shim of an uncreated task did not shut down; killed it")
		}
		if err := forceDeleteOCI(ctx, rec); err != nil {
			logger.Error(err, "OCI runtime could not delete an uncreated task")
		}
		if err := r.removeTask(ctx, rec); err != nil {
			logger.Error(err, "Failed to remove an uncreated task")
		}
	case shim == nil:
		// The shim is dead: clean up after it, with the exit it recorded.
		logger.Info("Shim of task is dead; cleaning up")
		r.restored.exited.Add(1)
		if _, err := r.cleanupDead(ctx, nil, &rec); err != nil {
			logger.Error(err, "Failed to clean up a task of a dead shim")
		}
	default:
		// The shim lives: the task goes back into the list; the monitor
		// picks up an exit that happened while we were away.
		t := newTask(r, rec, shim.conn, shim.taskPid)
		r.add(t)
		r.startMonitor(t)
		logger.V(2).Info("Restored task", "pid", shim.taskPid)
		r.restored.running.Add(1)
	}
}

type shimAndState struct {
	conn    *shimConn
	taskPid int
}

func tryConnect(ctx context.Context, rec taskRecord) *shimAndState {
	conn, resp, err := connectShim(ctx, rec)
	if err != nil {
		return nil
	}
	return &shimAndState{conn: conn, taskPid: resp.TaskPid}
}
