package cri

import (
	"context"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// GetContainerEvents streams container and pod sandbox lifecycle events
// (sandbox events carry the sandbox's id as container_id) until the client
// goes away. A client that falls events.DefaultBuffer events behind is cut
// off with ResourceExhausted, and must relist. When the Service closes,
// every stream ends with Unavailable, so that a graceful stop of the gRPC
// server does not wait on them.
func (s *Service) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	return s.broadcast.Serve(stream.Context(), stream.Send)
}

// publishContainerEventByID is publishContainerEvent for a container
// known by id.
func (s *Service) publishContainerEventByID(ctx context.Context, id string, typ runtimeapi.ContainerEventType) {
	c, err := s.containers.Get(id)
	if err != nil || c.Meta.ID != id {
		return
	}
	s.publishContainerEvent(ctx, c, typ)
}

// publishContainerEvent sends a container's lifecycle event, with its pod
// sandbox's status and the statuses of the pod's containers attached, as
// containerd does (the kubelet's evented PLEG reads them).
func (s *Service) publishContainerEvent(ctx context.Context, c *container, typ runtimeapi.ContainerEventType) {
	s.broadcast.Emit(c.Meta.ID, typ, func(t runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
		ev := &runtimeapi.ContainerEventResponse{ContainerId: c.Meta.ID, ContainerEventType: t, CreatedAt: time.Now().UnixNano()}
		if sb, err := s.sandboxes.Get(c.Meta.SandboxID); err == nil {
			ev.PodSandboxStatus = toCRISandboxStatus(sb.Meta, sb.Status())
		}
		ev.ContainersStatuses = s.containerStatusesOf(c.Meta.SandboxID)
		klog.FromContext(ctx).V(5).Info("Published container event", "containerID", c.Meta.ID, "event", t.String())
		return ev
	})
	if typ == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
		s.usage.Forget(c.Meta.ID)
	}
}

// publishSandboxEvent sends a pod sandbox's lifecycle events, in order;
// their container_id is the sandbox's id.
func (s *Service) publishSandboxEvent(ctx context.Context, sb *sandbox, types ...runtimeapi.ContainerEventType) {
	for _, typ := range types {
		s.broadcast.Emit(sb.Meta.ID, typ, func(t runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
			klog.FromContext(ctx).V(5).Info("Published pod sandbox event", "podSandboxID", sb.Meta.ID, "event", t.String())
			return &runtimeapi.ContainerEventResponse{
				ContainerId:        sb.Meta.ID,
				ContainerEventType: t,
				CreatedAt:          time.Now().UnixNano(),
				PodSandboxStatus:   toCRISandboxStatus(sb.Meta, sb.Status()),
				ContainersStatuses: s.containerStatusesOf(sb.Meta.ID),
			}
		})
		if typ == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
			s.usage.Forget(sb.Meta.ID)
		}
	}
}

func (s *Service) containerStatusesOf(sandboxID string) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, c := range s.containersOf(sandboxID) {
		out = append(out, toCRIContainerStatus(c.Meta, c.Status()))
	}
	return out
}

// Short names of the event types, for the one-line hooks in the lifecycle
// handlers.
const (
	evCreated = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
	evStarted = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
	evStopped = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
	evDeleted = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
)
