package cri

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/runtime"
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
		if err := s.recordExit(ctx, c, ev.Exit); err != nil {
			logger.Error(err, "Failed to record a container's exit", "containerID", ev.ID)
		}
		s.publishContainerEvent(ctx, c, evStopped)
		s.nriStopContainer(ctx, c)
		return
	}
	if sb, err := s.sandboxes.Get(ev.ID); err == nil && sb.Meta.ID == ev.ID {
		if err := sandboxStopped(ctx, sb, exitOf(ev.Exit).At); err != nil {
			logger.Error(err, "Failed to record a sandbox's exit", "podSandboxID", ev.ID)
		}
		s.publishSandboxEvent(ctx, sb, evStopped)
	}
}
