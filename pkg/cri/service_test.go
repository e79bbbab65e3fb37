package cri

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestStateNames: the state labels of the metrics (docs/metrics.md) are
// the CRI states, lower case, one for each.
func TestStateNames(t *testing.T) {
	var pods, ctrs []string
	for v := range runtimeapi.PodSandboxState_name {
		pods = append(pods, sandboxStateName(runtimeapi.PodSandboxState(v)))
	}
	for v := range runtimeapi.ContainerState_name {
		ctrs = append(ctrs, containerStateName(runtimeapi.ContainerState(v)))
	}
	slices.Sort(pods)
	slices.Sort(ctrs)
	if want := []string{"notready", "ready"}; !slices.Equal(pods, want) {
		t.Errorf("sandbox states %v, want %v", pods, want)
	}
	if want := []string{"created", "exited", "running", "unknown"}; !slices.Equal(ctrs, want) {
		t.Errorf("container states %v, want %v", ctrs, want)
	}
}
