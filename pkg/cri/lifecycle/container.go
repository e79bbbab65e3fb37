package lifecycle

import (
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Container is the status of a container: the facts of its life, which
// are persisted (as JSON, in its record), and the operation flags, which
// are not. Keep it value-only, so that a copy is a snapshot.
type Container struct {
	Pid        int    `json:"pid"`
	StartedAt  int64  `json:"startedAt,omitempty"`  // unix nanos
	FinishedAt int64  `json:"finishedAt,omitempty"` // unix nanos
	ExitCode   int32  `json:"exitCode"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	// Resources are the resources of the last UpdateContainerResources, as
	// protojson of LinuxContainerResources ("" when never updated).
	Resources string `json:"resources,omitempty"`

	// starting and removing are operation flags, never persisted.
	starting bool
	removing bool
}

// Exit is how a container's task ended, as the facade hands it in.
type Exit struct {
	Code      int32
	At        time.Time
	OOMKilled bool
}

// State derives the CRI state from the facts.
func (c Container) State() runtimeapi.ContainerState {
	switch {
	case c.FinishedAt != 0:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	case c.StartedAt != 0:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	return runtimeapi.ContainerState_CONTAINER_CREATED
}

// busy names the operation in flight, for messages.
func (c Container) busy() string {
	switch {
	case c.starting:
		return "being started"
	case c.removing:
		return "being removed"
	}
	return ""
}

func (c Container) refuse(needs string) error {
	return &TransitionError{Object: "container", State: containerStateName(c.State()), Busy: c.busy(), Needs: needs}
}

// MarkStarting reserves the start of a CREATED container; no start or
// removal may be in flight.
func (c Container) MarkStarting() (Container, error) {
	if c.State() != runtimeapi.ContainerState_CONTAINER_CREATED || c.starting || c.removing {
		return c, c.refuse("not CREATED and idle")
	}
	c.starting = true
	return c, nil
}

// Started records the start of a container being started. An exit
// recorded meanwhile (the process exited at once) stays: the container
// stays EXITED.
func (c Container) Started(pid int, at time.Time) (Container, error) {
	if !c.starting || c.StartedAt != 0 {
		return c, c.refuse("not being started")
	}
	c.StartedAt, c.Pid = at.UnixNano(), pid
	return c, nil
}

// StartFailed records that the start of a container being started failed:
// EXITED with StartError and the failure as message. It replaces an exit
// recorded meanwhile, which the failure explains.
func (c Container) StartFailed(at time.Time, msg string) (Container, error) {
	if !c.starting || c.StartedAt != 0 {
		return c, c.refuse("not being started")
	}
	c.FinishedAt, c.ExitCode, c.Reason, c.Message = at.UnixNano(), StartErrorExitCode, ReasonStartError, msg
	return c, nil
}

// EndStart clears the starting flag.
func (c Container) EndStart() (Container, error) {
	c.starting = false
	return c, nil
}

// MarkRemoving reserves the removal of a container in any state, unless
// a start or another removal is in flight.
func (c Container) MarkRemoving() (Container, error) {
	if c.starting || c.removing {
		return c, c.refuse("not idle")
	}
	c.removing = true
	return c, nil
}

// EndRemove clears the removing flag.
func (c Container) EndRemove() (Container, error) {
	c.removing = false
	return c, nil
}

// Exited records the task's exit, once: the status of a container already
// EXITED is returned unchanged.
func (c Container) Exited(e Exit) (Container, error) {
	if c.FinishedAt != 0 {
		return c, nil
	}
	c.FinishedAt, c.ExitCode = e.At.UnixNano(), e.Code
	switch {
	case e.OOMKilled:
		c.Reason = ReasonOOMKilled
	case e.Code == 0:
		c.Reason = ReasonCompleted
	default:
		c.Reason = ReasonError
	}
	return c, nil
}

// TaskLost records that the container's task is gone without an exit:
// EXITED with reason Unknown and exit code 255 (the kernel over the
// cache). Like Exited it records once.
func (c Container) TaskLost(at time.Time) (Container, error) {
	if c.FinishedAt != 0 {
		return c, nil
	}
	c.FinishedAt, c.ExitCode, c.Reason, c.Message = at.UnixNano(), LostExitCode, ReasonUnknown, lostMessage
	return c, nil
}

// RequireRunning is the precondition of what needs the container's
// processes: exec, attach, checkpoint, log reopen.
func (c Container) RequireRunning() error {
	if c.State() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return c.refuse("not RUNNING")
	}
	return nil
}

// RequireLiveTask is the precondition of what needs the container's task
// but not its start: stats, metrics, resource updates. A CREATED or
// RUNNING container has one; an EXITED one has none.
func (c Container) RequireLiveTask() error {
	if c.State() == runtimeapi.ContainerState_CONTAINER_EXITED {
		return c.refuse("with no live task")
	}
	return nil
}
