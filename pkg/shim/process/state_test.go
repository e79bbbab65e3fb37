package process

import (
	"errors"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// TestTransitionMatrix walks every (from, to) pair: the legal ones succeed,
// every other one fails with *TransitionError of class FailedPrecondition and
// leaves the state untouched.
func TestTransitionMatrix(t *testing.T) {
	all := []api.Status{api.StatusCreated, api.StatusRunning, api.StatusStopped, api.StatusDeleted}
	legal := map[[2]api.Status]bool{
		{api.StatusCreated, api.StatusRunning}: true,
		{api.StatusCreated, api.StatusStopped}: true,
		{api.StatusCreated, api.StatusDeleted}: true,
		{api.StatusRunning, api.StatusStopped}: true,
		{api.StatusStopped, api.StatusDeleted}: true,
	}
	for _, from := range all {
		for _, to := range all {
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				s := state{status: from}
				err := s.setStatus(to)
				if legal[[2]api.Status{from, to}] {
					if err != nil {
						t.Fatalf("legal transition failed: %v", err)
					}
					if s.status != to {
						t.Fatalf("status %s, want %s", s.status, to)
					}
					return
				}
				var te *TransitionError
				if !errors.As(err, &te) {
					t.Fatalf("got %v, want *TransitionError", err)
				}
				if te.From != from || te.To != to {
					t.Fatalf("error says %s->%s, want %s->%s", te.From, te.To, from, to)
				}
				if !errors.Is(err, errdefs.ErrFailedPrecondition) || errdefs.ClassName(err) != "FailedPrecondition" {
					t.Fatalf("%v is not FailedPrecondition", err)
				}
				if s.status != from {
					t.Fatalf("failed transition changed status to %s", s.status)
				}
			})
		}
	}
}
