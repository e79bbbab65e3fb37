package stream

// Chunk is how many items one message of a Stream* RPC carries: small
// enough that a message of the largest items (pod stats with their
// containers' stats) stays far below gRPC's 4 MiB default.
const Chunk = 100

// SendChunks sends items in messages of at most Chunk items each, every
// item once; none at all when there are no items (the CRI asks for lists
// of at least one item, then EOF).
func SendChunks[T any, M any](items []T, wrap func([]T) *M, send func(*M) error) error {
	for len(items) > 0 {
		n := min(len(items), Chunk)
		if err := send(wrap(items[:n:n])); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}
