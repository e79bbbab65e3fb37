package cri

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// restore loads every sandbox and container from the store, applies the
// task exits the runtime's restore published, reconciles what is left
// against the live tasks, and starts the event loop.
func (s *Service) restore(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if err := s.store.List(ctx, store.KindSandboxes, func(key string, dec store.Decoder) error {
		var rec record[sandboxMeta, sandboxStatus]
		if err := dec(&rec); err != nil {
			logger.Error(err, "Unreadable sandbox record; skipping", "podSandboxID", key)
			return nil
		}
		cfg, err := decodeSandboxConfig(rec.Meta.RawConfig)
		if err != nil {
			logger.Error(err, "Unreadable sandbox config; skipping", "podSandboxID", key)
			return nil
		}
		rec.Meta.config = cfg
		if err := s.sandboxes.Add(s.newSandbox(rec.Meta, rec.Status)); err != nil {
			return err
		}
		s.sandboxNames.Restore(rec.Meta.Name, rec.Meta.ID, rec.Meta.ConfigDigest)
		return nil
	}); err != nil {
		return err
	}
	if err := s.store.List(ctx, store.KindContainers, func(key string, dec store.Decoder) error {
		var rec record[containerMeta, containerStatus]
		if err := dec(&rec); err != nil {
			logger.Error(err, "Unreadable container record; skipping", "containerID", key)
			return nil
		}
		cfg, err := decodeContainerConfig(rec.Meta.RawConfig)
		if err != nil {
			logger.Error(err, "Unreadable container config; skipping", "containerID", key)
			return nil
		}
		rec.Meta.config = cfg
		if err := s.containers.Add(s.newContainer(rec.Meta, rec.Status)); err != nil {
			return err
		}
		s.containerNames.Restore(rec.Meta.Name, rec.Meta.ID, rec.Meta.ConfigDigest)
		return nil
	}); err != nil {
		return err
	}
	// Exits of tasks that ended while the daemon was down, or whose shim
	// died, are waiting in the event channel: apply them first, so they
	// carry their real exit codes.
	s.drainEvents(ctx)
	s.reconcile(ctx)
	s.removeOrphanTasks(ctx)
	s.removeOrphanSandboxes(ctx)
	s.removeOrphanRootfs(ctx)
	s.removeOrphanVolumes(ctx)
	s.removeOrphanImageMounts(ctx)
	s.fixHostDirs(ctx)
	evCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	prev := s.cancel
	s.cancel = func() { cancel(); prev() }
	go s.handleEvents(evCtx)
	logger.Info("Restored CRI state", "podSandboxes", len(s.sandboxes.List()), "containers", len(s.containers.List()))
	return nil
}

// reconcile marks objects whose task is gone without a known exit: a
// running sandbox becomes NOTREADY (one without a pause when its pinned
// namespaces are gone), an unfinished container EXITED with reason Unknown
// (trust the kernel over the cache).
func (s *Service) reconcile(ctx context.Context) {
	logger := klog.FromContext(ctx)
	now := time.Now()
	for _, sb := range s.sandboxes.List() {
		if sb.Status().StoppedAt != 0 {
			continue
		}
		if sb.Meta.NoPause {
			if s.pinnedSandboxAlive(sb) {
				continue
			}
		} else if t, err := s.tasks.Get(taskNamespace, sb.Meta.ID); err == nil {
			select {
			case <-t.Exited():
			default:
				continue // running
			}
		}
		if err := sandboxStopped(ctx, sb, now); err != nil {
			logger.Error(err, "Failed to mark a sandbox without a task NOTREADY", "podSandboxID", sb.Meta.ID)
			continue
		}
		s.publishSandboxEvent(ctx, sb, evStopped)
	}
	for _, c := range s.containers.List() {
		if c.Status().FinishedAt != 0 {
			continue
		}
		t, err := s.tasks.Get(taskNamespace, c.Meta.ID)
		if err == nil {
			select {
			case <-t.Exited():
				if e, err := t.Wait(ctx); err == nil {
					if s.recordExit(ctx, c, e) == nil {
						s.publishContainerEvent(ctx, c, evStopped)
					}
				}
			default:
			}
			continue
		}
		if err := c.UpdateSync(ctx, func(st containerStatus) (containerStatus, error) { return st.TaskLost(now) }); err != nil {
			logger.Error(err, "Failed to mark a container without a task EXITED", "containerID", c.Meta.ID)
			continue
		}
		s.publishContainerEvent(ctx, c, evStopped)
	}
}

// removeOrphanTasks kills and deletes tasks that belong to no sandbox or
// container: the remains of a create that a daemon crash cut short.
func (s *Service) removeOrphanTasks(ctx context.Context) {
	logger := klog.FromContext(ctx)
	var wg sync.WaitGroup
	slots := make(chan struct{}, orphanWorkers)
	for _, t := range s.tasks.Tasks(taskNamespace) {
		id := t.ID()
		if _, err := s.containers.Get(id); err == nil {
			continue
		}
		if _, err := s.sandboxes.Get(id); err == nil {
			continue
		}
		logger.Info("Removing a task that belongs to no sandbox or container", "taskID", id)
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := s.killAndDelete(ctx, t); err != nil {
				logger.Error(err, "Failed to remove an orphan task", "taskID", id)
			}
		}()
	}
	wg.Wait()
}

// orphanWorkers bounds how many orphan tasks are removed at once: each
// may wait out a kill, and start-up waits for all of them.
const orphanWorkers = 8

// removeOrphanRootfs unmounts and releases container rootfs mounts that
// belong to no container: the remains of a CreateContainer that a daemon
// crash cut short before its record was written.
func (s *Service) removeOrphanRootfs(ctx context.Context) {
	logger := klog.FromContext(ctx)
	entries, err := os.ReadDir(s.rootfsParentDir())
	if err != nil {
		return // none yet
	}
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || id == ".move" {
			continue
		}
		if c, err := s.containers.Get(id); err == nil && c.Meta.ID == id {
			continue
		}
		if sb, err := s.sandboxes.Get(id); err == nil && sb.Meta.ID == id {
			continue // a pause's rootfs from sandbox_image
		}
		logger.Info("Removing a rootfs that belongs to no container", "containerID", id)
		if err := s.removeRootfsMount(id); err != nil {
			logger.Error(err, "Failed to unmount an orphan rootfs", "containerID", id)
			continue
		}
		if err := s.images.RemoveRootfs(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			logger.Error(err, "Failed to release an orphan rootfs", "containerID", id)
		}
	}
}

// removeOrphanVolumes removes anonymous volume dirs of containers that no
// longer exist (a create cut short by a crash).
func (s *Service) removeOrphanVolumes(ctx context.Context) {
	entries, err := os.ReadDir(s.volumesParentDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		id := e.Name()
		if c, err := s.containers.Get(id); err == nil && c.Meta.ID == id {
			continue
		}
		if err := os.RemoveAll(s.volumesDir(id)); err != nil {
			klog.FromContext(ctx).Error(err, "Failed to remove orphan anonymous volumes", "containerID", id)
		}
	}
}

// killAndDelete SIGKILLs every process of a task, waits for its exit and
// deletes it; all bounded in time.
func (s *Service) killAndDelete(ctx context.Context, t taskHandle) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	select {
	case <-t.Exited():
	default:
		if err := t.Kill(ctx, syscall.SIGKILL, true); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) {
			return err
		}
		if _, err := t.Wait(ctx); err != nil {
			return err
		}
	}
	if _, err := s.tasks.Delete(ctx, t.Namespace(), t.ID()); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}
