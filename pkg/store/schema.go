// Package store keeps cri-runtime's metadata in one bbolt file (meta.db).
//
// The bucket tree:
//
//	v1/                      root bucket, one per schema generation
//	  schemaVersion          → "1" (see migrations.go)
//	  <kind>/                one bucket per Kind: tasks, sandboxes, containers, images, …
//	    <key>                → {"version":"v1","data":<record JSON>}
//
// Records are opaque JSON to this package: the owner of a kind (pkg/runtime
// for tasks, pkg/cri for sandboxes and containers, pkg/image for images)
// marshals its own types, so the store imports nothing of theirs. Every
// record is wrapped in a versioned envelope, so that a future change of a
// record's fields is a decode switch rather than a corrupt database.
//
// No *bolt.Tx leaves this package; bbolt's errors are turned into errdefs
// classes here.
package store

// Kind names a bucket of records.
type Kind string

// The kinds of records cri-runtime keeps.
const (
	KindTasks      Kind = "tasks"
	KindSandboxes  Kind = "sandboxes"
	KindContainers Kind = "containers"
	KindImages     Kind = "images"
	KindLayers     Kind = "layers"
)

const (
	rootBucket       = "v1"
	schemaVersionKey = "schemaVersion"
	recordVersion    = "v1"
)
