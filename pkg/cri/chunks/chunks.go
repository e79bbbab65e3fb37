// Package chunks splits the lists of the CRI's Stream* RPCs (StreamImages,
// StreamContainers, StreamContainerStats, …) into messages. It imports
// nothing of ours.
package chunks

// Size is how many items one message of a Stream* RPC carries: small
// enough that a message of the largest items (pod stats with their
// containers' stats) stays far below gRPC's 4 MiB default.
const Size = 100

// SendChunks sends items in messages of at most Size items each, every
// item once; none at all when there are no items (the CRI asks for lists
// of at least one item, then EOF).
func Send[T any, M any](items []T, wrap func([]T) *M, send func(*M) error) error {
	for len(items) > 0 {
		n := min(len(items), Size)
		if err := send(wrap(items[:n:n])); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}
