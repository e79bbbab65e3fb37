package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Store is the metadata database.
type Store struct {
	db *bolt.DB
}

type envelope struct {
	Version string          `json:"version"`
	Data    json.RawMessage `json:"data"`
}

// Open opens (or creates) the database at path and brings its schema up to
// date. A database held by another process fails after a short wait with
// ErrUnavailable rather than hanging.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: in use by another process: %w", path, errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(migrate); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) view(ctx context.Context, fn func(root *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte(rootBucket))) })
}

func (s *Store) update(ctx context.Context, fn func(root *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte(rootBucket))) })
}

func encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return json.Marshal(envelope{Version: recordVersion, Data: data})
}

func decode(raw []byte, v any) error {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	switch env.Version {
	case recordVersion:
		return json.Unmarshal(env.Data, v)
	default:
		return fmt.Errorf("record version %q unknown to this build: %w", env.Version, errdefs.ErrInternal)
	}
}

func checkKey(kind Kind, key string) error {
	if kind == "" || key == "" {
		return fmt.Errorf("empty kind or key: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// Create stores a new record; ErrAlreadyExists if the key is taken.
func (s *Store) Create(ctx context.Context, kind Kind, key string, v any) error {
	if err := checkKey(kind, key); err != nil {
		return err
	}
	raw, err := encode(v)
	if err != nil {
		return err
	}
	return s.update(ctx, func(root *bolt.Bucket) error {
		b, err := root.CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		if b.Get([]byte(key)) != nil {
			return fmt.Errorf("%s %s: %w", kind, key, errdefs.ErrAlreadyExists)
		}
		return b.Put([]byte(key), raw)
	})
}

// Put stores a record, replacing any record under the same key.
func (s *Store) Put(ctx context.Context, kind Kind, key string, v any) error {
	if err := checkKey(kind, key); err != nil {
		return err
	}
	raw, err := encode(v)
	if err != nil {
		return err
	}
	return s.update(ctx, func(root *bolt.Bucket) error {
		b, err := root.CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), raw)
	})
}

// Get decodes the record under key into v; ErrNotFound if there is none.
func (s *Store) Get(ctx context.Context, kind Kind, key string, v any) error {
	if err := checkKey(kind, key); err != nil {
		return err
	}
	return s.view(ctx, func(root *bolt.Bucket) error {
		var raw []byte
		if b := root.Bucket([]byte(kind)); b != nil {
			raw = b.Get([]byte(key))
		}
		if raw == nil {
			return fmt.Errorf("%s %s: %w", kind, key, errdefs.ErrNotFound)
		}
		return decode(raw, v)
	})
}

// Delete removes the record under key; ErrNotFound if there is none.
func (s *Store) Delete(ctx context.Context, kind Kind, key string) error {
	if err := checkKey(kind, key); err != nil {
		return err
	}
	return s.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket([]byte(kind))
		if b == nil || b.Get([]byte(key)) == nil {
			return fmt.Errorf("%s %s: %w", kind, key, errdefs.ErrNotFound)
		}
		return b.Delete([]byte(key))
	})
}

// Decoder decodes one listed record into v.
type Decoder func(v any) error

// List calls fn for every record of kind, in key order, inside one read
// transaction: fn must not call back into the store.
func (s *Store) List(ctx context.Context, kind Kind, fn func(key string, dec Decoder) error) error {
	return s.view(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, raw []byte) error {
			return fn(string(k), func(v any) error { return decode(raw, v) })
		})
	})
}

// Update reads the record under key into a fresh value, lets fn change it,
// and writes it back, all in one transaction. ErrNotFound if there is no such record; fn's error aborts the
// update and is returned.
func Update[T any](ctx context.Context, s *Store, kind Kind, key string, fn func(*T) error) error {
	if err := checkKey(kind, key); err != nil {
		return err
	}
	return s.update(ctx, func(root *bolt.Bucket) error {
		var raw []byte
		b := root.Bucket([]byte(kind))
		if b != nil {
			raw = b.Get([]byte(key))
		}
		if raw == nil {
			return fmt.Errorf("%s %s: %w", kind, key, errdefs.ErrNotFound)
		}
		v := new(T)
		if err := decode(raw, v); err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		enc, err := encode(v)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), enc)
	})
}
