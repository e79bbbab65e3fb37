package store

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// migration moves the database from schema version N-1 to N, where N is its
// index in migrations plus one. Migrations run in order, once, in one
// transaction with the version bump.
type migration struct {
	name string
	run  func(root *bolt.Bucket) error
}

// migrations is the ordered list of schema changes. Version 1 is the
// initial schema and needs no work.
var migrations = []migration{
	{name: "initial schema", run: func(*bolt.Bucket) error { return nil }},
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations) }

func migrate(tx *bolt.Tx) error {
	root, err := tx.CreateBucketIfNotExists([]byte(rootBucket))
	if err != nil {
		return fmt.Errorf("create root bucket: %w", err)
	}
	current := 0
	if v := root.Get([]byte(schemaVersionKey)); v != nil {
		if current, err = strconv.Atoi(string(v)); err != nil {
			return fmt.Errorf("schema version %q: %w", v, err)
		}
	}
	if current > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this build's %d", current, len(migrations))
	}
	for i := current; i < len(migrations); i++ {
		if err := migrations[i].run(root); err != nil {
			return fmt.Errorf("migration %d (%s): %w", i+1, migrations[i].name, err)
		}
	}
	return root.Put([]byte(schemaVersionKey), []byte(strconv.Itoa(len(migrations))))
}
