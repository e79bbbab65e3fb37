package index

import (
	"context"
	"fmt"
	"sync"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Names reserves object names. A create reserves its name before any slow
// work; the kubelet retries a create that outlived its timeout with the
// same name and config, and such a retry waits for the create in flight and
// gets its result, never "name is reserved". A create with the same name and
// another config fails with ErrAlreadyExists naming the holder.
type Names struct {
	kind string

	mu    sync.Mutex
	names map[string]*reservation
}

type reservation struct {
	id     string
	digest string        // identifies the config that reserved the name
	done   chan struct{} // closed when the create finished
	err    error         // the create's error, set before done is closed
}

// NewNames returns an empty registrar for objects of kind.
func NewNames(kind string) *Names {
	return &Names{kind: kind, names: map[string]*reservation{}}
}

// Reservation is a reserved name held by a create in flight.
type Reservation struct {
	n    *Names
	name string
	r    *reservation
}

// Reserve claims name for id. When the name is held by a create of the same
// config (digest), Reserve waits for that create and returns (nil, holderID,
// nil) once it succeeded — the caller answers with holderID — or retries the
// reservation if it failed. Otherwise a held name is ErrAlreadyExists.
func (n *Names) Reserve(ctx context.Context, name, id, digest string) (*Reservation, string, error) {
	for {
		n.mu.Lock()
		r, ok := n.names[name]
		if !ok {
			r = &reservation{id: id, digest: digest, done: make(chan struct{})}
			n.names[name] = r
			n.mu.Unlock()
			return &Reservation{n: n, name: name, r: r}, "", nil
		}
		n.mu.Unlock()
		if r.digest != digest {
			return nil, "", fmt.Errorf("%s name %q is reserved for %s: %w", n.kind, name, r.id, errdefs.ErrAlreadyExists)
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
		if r.err == nil {
			return nil, r.id, nil
		}
		// The create we waited for failed and released the name: try again.
	}
}

// Done ends the create: on success the name stays held by its object; on
// failure it is released.
func (r *Reservation) Done(err error) {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	r.r.err = err
	close(r.r.done)
	if err != nil && r.n.names[r.name] == r.r {
		delete(r.n.names, r.name)
	}
}

// Restore marks name as held by an existing object (at start-up).
func (n *Names) Restore(name, id, digest string) {
	r := &reservation{id: id, digest: digest, done: make(chan struct{})}
	close(r.done)
	n.mu.Lock()
	n.names[name] = r
	n.mu.Unlock()
}

// Release frees name when id holds it (when its object is removed).
func (n *Names) Release(name, id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r, ok := n.names[name]; ok && r.id == id {
		delete(n.names, name)
	}
}
