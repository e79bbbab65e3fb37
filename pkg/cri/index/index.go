// Package index is the CRI facade's in-memory index of sandboxes and
// containers: objects by id (with unique-prefix lookup), name reservations
// that hand a kubelet retry the result of the create still in flight, and
// per-object status whose updates are persisted before they are published.
package index

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Index holds objects by id. Misses are explicit: Add refuses a taken id,
// Get returns ErrNotFound; List returns a snapshot.
type Index[T any] struct {
	kind string
	idOf func(T) string

	mu   sync.RWMutex
	byID map[string]T
}

// New returns an empty index of objects of kind (for messages).
func New[T any](kind string, idOf func(T) string) *Index[T] {
	return &Index[T]{kind: kind, idOf: idOf, byID: map[string]T{}}
}

// Add inserts v; ErrAlreadyExists if its id is taken.
func (i *Index[T]) Add(v T) error {
	id := i.idOf(v)
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, ok := i.byID[id]; ok {
		return fmt.Errorf("%s %s: %w", i.kind, id, errdefs.ErrAlreadyExists)
	}
	i.byID[id] = v
	return nil
}

// minPrefix is the shortest id prefix Get accepts.
const minPrefix = 3

// Get finds an object by id or by a unique id prefix.
func (i *Index[T]) Get(idOrPrefix string) (T, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	var zero T
	if idOrPrefix == "" {
		return zero, fmt.Errorf("%s id is empty: %w", i.kind, errdefs.ErrNotFound)
	}
	if v, ok := i.byID[idOrPrefix]; ok {
		return v, nil
	}
	if len(idOrPrefix) >= minPrefix {
		var found []string
		for id := range i.byID {
			if strings.HasPrefix(id, idOrPrefix) {
				found = append(found, id)
			}
		}
		if len(found) == 1 {
			return i.byID[found[0]], nil
		}
		if len(found) > 1 {
			return zero, fmt.Errorf("%s id prefix %q is ambiguous (%d matches): %w", i.kind, idOrPrefix, len(found), errdefs.ErrNotFound)
		}
	}
	return zero, fmt.Errorf("%s %q: %w", i.kind, idOrPrefix, errdefs.ErrNotFound)
}

// List returns every object, ordered by id.
func (i *Index[T]) List() []T {
	i.mu.RLock()
	ids := make([]string, 0, len(i.byID))
	for id := range i.byID {
		ids = append(ids, id)
	}
	i.mu.RUnlock()
	sort.Strings(ids)
	out := make([]T, 0, len(ids))
	i.mu.RLock()
	for _, id := range ids {
		if v, ok := i.byID[id]; ok {
			out = append(out, v)
		}
	}
	i.mu.RUnlock()
	return out
}

// Delete removes an object; a missing id is fine.
func (i *Index[T]) Delete(id string) {
	i.mu.Lock()
	delete(i.byID, id)
	i.mu.Unlock()
}
