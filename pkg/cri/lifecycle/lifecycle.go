// Package lifecycle is the one table of the CRI objects' lifecycle: the
// status of a pod sandbox and of a container, the transitions that change
// it, and the preconditions the facade's handlers check. It does no I/O
// and reads no clock: pkg/cri passes the times and exits in, persists a
// status through its index (index.Object.UpdateSync), and calls the task
// runtime. Every refusal is a *TransitionError, of class
// errdefs.ErrFailedPrecondition, whichever handler asks.
//
// Facts are persisted, state is derived (STYLE.md §D.17): a status holds
// times, exit code and reason, and State computes the CRI state from them.
// The operation flags (starting, stopping, removing) live in memory only,
// so a crash never persists a stuck flag.
//
// A container:
//
//	              MarkStarting               Started
//	   CREATED ────────────────► CREATED ───────────────► RUNNING
//	      │                     (starting)                   │
//	      │                          │ StartFailed           │ Exited, TaskLost
//	      │ Exited, TaskLost         ▼                       ▼
//	      └────────────────────► EXITED ◄────────────────────┘
//
//	MarkStarting   CREATED, and no start or removal in flight
//	Started        only while starting; an exit that raced the start stays
//	               recorded (the container stays EXITED, with its StartedAt)
//	StartFailed    only while starting; StartError (128) replaces an exit
//	               that raced the failed start: the failure explains it
//	Exited         the task's exit, recorded once: a later exit changes nothing
//	TaskLost       the task is gone without an exit (found at restore):
//	               EXITED, reason Unknown, exit code 255; once, like Exited
//	MarkRemoving   any state, unless a start or another removal is in flight
//	EndStart, EndRemove  clear their flag (deferred by the handler)
//
//	RequireRunning   RUNNING: exec, attach, checkpoint, log reopen
//	RequireLiveTask  CREATED or RUNNING: stats, metrics, resource updates
//
// A pod sandbox:
//
//	         Stopped (the pause exited, its pinned namespaces are gone,
//	         or a stop)                         StopFinished
//	   READY ─────────────────────► NOTREADY ─────────────────► NOTREADY,
//	     │                                                     network down
//	     └──────────────── StopFinished ───────────────────────────▲
//
//	MarkStopping, MarkRemoving  no stop or removal of the sandbox in flight
//	Stopped        NOTREADY from the first time it is recorded
//	StopFinished   only while stopping or removing: NOTREADY (if not yet)
//	               and its network torn down
//	EndStop, EndRemove  clear their flag
//
//	RequireReady   READY, and no stop or removal in flight: a new
//	               container, port-forward, stats, metrics
//
// There is no CONTAINER_UNKNOWN: a container whose task vanished is EXITED
// with reason Unknown (TaskLost). Records from before carry an `unknown`
// field that was never set; decoding ignores it, and restore derives the
// state from the live task.
package lifecycle

import (
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Exit reasons reported in ContainerStatus.
const (
	ReasonCompleted  = "Completed"
	ReasonError      = "Error"
	ReasonOOMKilled  = "OOMKilled"
	ReasonUnknown    = "Unknown"
	ReasonStartError = "StartError"
)

// Exit codes the facade records when the task gives none.
const (
	// StartErrorExitCode is a container's exit code when its start failed.
	StartErrorExitCode = 128
	// LostExitCode is a container's exit code when its task vanished
	// without an exit.
	LostExitCode = 255
)

// lostMessage is the message of a container whose task was lost.
const lostMessage = "the container's task was gone when cri-runtime restarted"

// TransitionError is a transition or a precondition the status refuses.
// It is of class errdefs.ErrFailedPrecondition.
type TransitionError struct {
	// Object is "container" or "pod sandbox"; ID, when the facade knows
	// it, names it.
	Object, ID string
	// State is the object's state ("EXITED"), Busy the operation in
	// flight ("being removed"; "" when none).
	State, Busy string
	// Needs says what the refused operation needs.
	Needs string
}

func (e *TransitionError) Error() string {
	s := e.Object
	if e.ID != "" {
		s += " " + e.ID
	}
	s += " is " + e.State
	if e.Busy != "" {
		s += " (" + e.Busy + ")"
	}
	return s + ", " + e.Needs
}

// Is makes errors.Is(err, errdefs.ErrFailedPrecondition) true.
func (e *TransitionError) Is(target error) bool { return target == errdefs.ErrFailedPrecondition }

// WithID names the object of a *TransitionError (err unchanged
// otherwise); the statuses do not know their ids, the facade does.
func WithID(err error, id string) error {
	if te, ok := err.(*TransitionError); ok {
		named := *te
		named.ID = id
		return &named
	}
	return err
}

// containerStateName is the CRI name of a container state, for messages.
func containerStateName(s runtimeapi.ContainerState) string {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return "CREATED"
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return "RUNNING"
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return "EXITED"
	}
	return fmt.Sprintf("in state %d", s)
}

// sandboxStateName is the CRI name of a sandbox state, for messages.
func sandboxStateName(s runtimeapi.PodSandboxState) string {
	switch s {
	case runtimeapi.PodSandboxState_SANDBOX_READY:
		return "READY"
	case runtimeapi.PodSandboxState_SANDBOX_NOTREADY:
		return "NOTREADY"
	}
	return fmt.Sprintf("in state %d", s)
}
