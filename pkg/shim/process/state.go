// Package process is the shim's model of the task's processes: the init
// process (runc create/start/delete) and exec processes (runc exec), each a
// small state machine, plus the go-runc adapter and the classification of
// runc's errors.
//
// Every process moves through the same table (api.Status):
//
//	created ──start──► running ──exit──► stopped ──delete──► deleted
//	   │  │                                 ▲                  ▲
//	   │  └──────────── exit (killed) ──────┘                  │
//	   └────────────────────────── delete ─────────────────────┘
//
// created → stopped is the one edge api.go's diagram leaves implicit: a
// created init (runc init waiting on its exec fifo) can be killed, and the
// kernel's exit has to land somewhere.
package process

import (
	"fmt"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// transitions lists, for each status, the statuses it may move to.
var transitions = map[api.Status][]api.Status{
	api.StatusCreated: {api.StatusRunning, api.StatusStopped, api.StatusDeleted},
	api.StatusRunning: {api.StatusStopped},
	api.StatusStopped: {api.StatusDeleted},
	api.StatusDeleted: nil,
}

// TransitionError is an illegal state change. It is of class
// errdefs.ErrFailedPrecondition.
type TransitionError struct {
	From, To api.Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("process is %s, cannot move to %s", e.From, e.To)
}

// Is makes errors.Is(err, errdefs.ErrFailedPrecondition) true.
func (e *TransitionError) Is(target error) bool {
	return target == errdefs.ErrFailedPrecondition
}

// canTransition reports whether from → to is in the table.
func canTransition(from, to api.Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// state is a process's status with its one mutator.
type state struct {
	status api.Status
}

// setStatus moves the state to `to`, or returns *TransitionError.
func (s *state) setStatus(to api.Status) error {
	if !canTransition(s.status, to) {
		return &TransitionError{From: s.status, To: to}
	}
	s.status = to
	return nil
}
