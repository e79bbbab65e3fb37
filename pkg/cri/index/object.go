package index

import (
	"context"
	"sync"
)

// Object is one sandbox or container: immutable metadata and a status that
// changes under the object's own lock. Keep S value-only (no pointers, maps
// or slices) so that Status returns a safe copy.
type Object[M any, S any] struct {
	Meta M

	mu      sync.Mutex
	status  S
	persist func(ctx context.Context, meta M, status S) error
}

// NewObject returns an object whose status updates are written through
// persist before they become visible.
func NewObject[M any, S any](meta M, status S, persist func(context.Context, M, S) error) *Object[M, S] {
	return &Object[M, S]{Meta: meta, status: status, persist: persist}
}

// Status returns a copy of the current status.
func (o *Object[M, S]) Status() S {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.status
}

// UpdateSync runs fn under the object's lock; the result is persisted
// before it becomes visible. If fn or the write fails, nothing changes.
// Use it for facts (started, finished, exit code, reason).
func (o *Object[M, S]) UpdateSync(ctx context.Context, fn func(S) (S, error)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	next, err := fn(o.status)
	if err != nil {
		return err
	}
	if err := o.persist(ctx, o.Meta, next); err != nil {
		return err
	}
	o.status = next
	return nil
}

// Update is UpdateSync without the write: only for in-memory operation
// flags, which are never persisted.
func (o *Object[M, S]) Update(fn func(S) (S, error)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	next, err := fn(o.status)
	if err != nil {
		return err
	}
	o.status = next
	return nil
}
