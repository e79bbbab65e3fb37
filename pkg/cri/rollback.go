package cri

import (
	"context"
	"errors"
	"os"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// rollback is a LIFO stack of undo steps for a create that failed half way.
// It runs on a context detached from the request, with its own timeout, so
// a cancelled request still cleans up.
type rollback []struct {
	what string
	fn   func(context.Context) error
}

func (u *rollback) add(what string, fn func(context.Context) error) {
	*u = append(*u, struct {
		what string
		fn   func(context.Context) error
	}{what, fn})
}

func (u rollback) run(ctx context.Context, logger klog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	for i := len(u) - 1; i >= 0; i-- {
		if err := u[i].fn(ctx); err != nil && !errors.Is(err, os.ErrNotExist) && !errdefs.IsNotFound(err) {
			logger.Error(err, "Failed to undo a step of a failed create", "step", u[i].what)
		}
	}
}
