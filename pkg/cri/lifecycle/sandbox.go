package lifecycle

import (
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Sandbox is the status of a pod sandbox: the facts of its life, which are
// persisted (as JSON, in its record), and the operation flags, which are
// not. Keep it value-only, so that a copy is a snapshot.
type Sandbox struct {
	Pid       int   `json:"pid"`
	StoppedAt int64 `json:"stoppedAt,omitempty"` // unix nanos; 0 while ready
	// NetworkDown is true once the network was torn down.
	NetworkDown bool `json:"networkDown,omitempty"`
	// Resources and Overhead are the pod's resources as the last
	// UpdatePodSandboxResources reported them, as protojson of
	// LinuxContainerResources ("" when never reported).
	Resources string `json:"resources,omitempty"`
	Overhead  string `json:"overhead,omitempty"`

	// stopping and removing are operation flags, never persisted.
	stopping bool
	removing bool
}

// State derives the CRI state from the facts.
func (s Sandbox) State() runtimeapi.PodSandboxState {
	if s.StoppedAt != 0 {
		return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	return runtimeapi.PodSandboxState_SANDBOX_READY
}

// busy names the operation in flight, for messages.
func (s Sandbox) busy() string {
	switch {
	case s.removing:
		return "being removed"
	case s.stopping:
		return "being stopped"
	}
	return ""
}

func (s Sandbox) refuse(needs string) error {
	return &TransitionError{Object: "pod sandbox", State: sandboxStateName(s.State()), Busy: s.busy(), Needs: needs}
}

// MarkStopping reserves a stop; no stop or removal may be in flight.
func (s Sandbox) MarkStopping() (Sandbox, error) {
	if s.stopping || s.removing {
		return s, s.refuse("not idle")
	}
	s.stopping = true
	return s, nil
}

// EndStop clears the stopping flag.
func (s Sandbox) EndStop() (Sandbox, error) {
	s.stopping = false
	return s, nil
}

// MarkRemoving reserves a removal; no stop or removal may be in flight.
func (s Sandbox) MarkRemoving() (Sandbox, error) {
	if s.stopping || s.removing {
		return s, s.refuse("not idle")
	}
	s.removing = true
	return s, nil
}

// EndRemove clears the removing flag.
func (s Sandbox) EndRemove() (Sandbox, error) {
	s.removing = false
	return s, nil
}

// Stopped records that the sandbox is NOTREADY from at: its pause exited,
// its pinned namespaces are gone, or it was stopped. The first time
// recorded stays.
func (s Sandbox) Stopped(at time.Time) (Sandbox, error) {
	if s.StoppedAt == 0 {
		s.StoppedAt = at.UnixNano()
	}
	return s, nil
}

// StopFinished records that a stop (or the stop a removal does) finished:
// NOTREADY, if not yet (Stopped), and the network torn down.
func (s Sandbox) StopFinished(at time.Time) (Sandbox, error) {
	if !s.stopping && !s.removing {
		return s, s.refuse("not being stopped or removed")
	}
	s, _ = s.Stopped(at)
	s.NetworkDown = true
	return s, nil
}

// RequireReady is the precondition of what needs a live pod: a new
// container, a port-forward, stats and metrics. A sandbox being stopped or
// removed is refused even while it is still READY.
func (s Sandbox) RequireReady() error {
	if s.State() != runtimeapi.PodSandboxState_SANDBOX_READY || s.stopping || s.removing {
		return s.refuse("not READY and idle")
	}
	return nil
}
