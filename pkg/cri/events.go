package cri

import (
	"context"
	"time"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// Exit reasons reported in ContainerStatus.
const (
	reasonCompleted = "Completed"
	reasonError     = "Error"
	reasonOOMKilled = "OOMKilled"
	reasonUnknown   = "Unknown"
)

// handleEvents turns task events into CRI status until ctx ends.
func (s *Service) handleEvents(ctx context.Context) {
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				klog.FromContext(ctx).Error(nil, "Task event stream closed; resubscribing")
				s.events = s.tasks.Subscribe(ctx)
				s.reconcile(ctx)
				continue
			}
			s.handleEvent(ctx, ev)
		case <-ctx.Done():
			return
		}
	}
}

// drainEvents handles the events already buffered, without waiting.
func (s *Service) drainEvents(ctx context.Context) {
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			s.handleEvent(ctx, ev)
		default:
			return
		}
	}
}

func (s *Service) handleEvent(ctx context.Context, ev runtime.Event) {
	if ev.Namespace != taskNamespace || ev.Type != runtime.EventTaskExit || ev.Exit == nil {
		return
	}
	logger := klog.FromContext(ctx)
	if c, err := s.containers.Get(ev.ID); err == nil && c.Meta.ID == ev.ID {
		if err := c.UpdateSync(ctx, func(st containerStatus) (containerStatus, error) {
			return exited(st, ev.Exit), nil
		}); err != nil {
			logger.Error(err, "Failed to record a container's exit", "containerID", ev.ID)
		}
		s.publishContainerEvent(ctx, c, evStopped)
		s.nriStopContainer(ctx, c)
		return
	}
	if sb, err := s.sandboxes.Get(ev.ID); err == nil && sb.Meta.ID == ev.ID {
		if err := sb.UpdateSync(ctx, func(st sandboxStatus) (sandboxStatus, error) {
			if st.StoppedAt == 0 {
				st.StoppedAt = ev.Exit.ExitedAt.UnixNano()
			}
			return st, nil
		}); err != nil {
			logger.Error(err, "Failed to record a sandbox's exit", "podSandboxID", ev.ID)
		}
		s.publishSandboxEvent(ctx, sb, evStopped)
	}
}

// exited records an exit in a container's status, once: a later (repeated)
// exit of the same task does not overwrite the first.
func exited(st containerStatus, e *runtime.Exit) containerStatus {
	if st.FinishedAt != 0 {
		return st
	}
	at := e.ExitedAt
	if at.IsZero() {
		at = time.Now()
	}
	st.FinishedAt = at.UnixNano()
	st.ExitCode = int32(e.Status)
	switch {
	case e.OOMKilled:
		st.Reason = reasonOOMKilled
	case e.Status == 0:
		st.Reason = reasonCompleted
	default:
		st.Reason = reasonError
	}
	return st
}
