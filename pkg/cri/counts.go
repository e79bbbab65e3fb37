package cri

import (
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Counts is what the daemon's metrics read of the CRI objects and events
// (docs/metrics.md).
type Counts struct {
	// PodSandboxes by state: "ready", "notready".
	PodSandboxes map[string]int
	// Containers by state: "created", "running", "exited", "unknown".
	Containers map[string]int
	// EventSubscribersCutOff counts GetContainerEvents streams cut off for
	// falling behind.
	EventSubscribersCutOff int64
	// EventsReplayed counts events handed to new GetContainerEvents
	// streams from what restore recorded.
	EventsReplayed int64
}

// Counts counts the CRI objects by state, and the event streams' losses
// and replays. It takes each object's lock briefly, as a List does.
func (s *Service) Counts() Counts {
	c := Counts{PodSandboxes: map[string]int{}, Containers: map[string]int{}}
	for _, sb := range s.sandboxes.List() {
		c.PodSandboxes[sandboxStateName(sb.Status().State())]++
	}
	for _, ctr := range s.containers.List() {
		c.Containers[containerStateName(ctr.Status().State())]++
	}
	c.EventSubscribersCutOff = s.broadcast.CutOff()
	c.EventsReplayed = s.broadcast.Replayed()
	return c
}

// sandboxStateName is SANDBOX_READY → "ready".
func sandboxStateName(st runtimeapi.PodSandboxState) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "SANDBOX_"))
}

// containerStateName is CONTAINER_RUNNING → "running".
func containerStateName(st runtimeapi.ContainerState) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "CONTAINER_"))
}
