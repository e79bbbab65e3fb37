package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

type rec struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCRUD(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if err := s.Create(ctx, KindTasks, "k8s.io/a", rec{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, KindTasks, "k8s.io/a", rec{Name: "again"}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second create: %v, want AlreadyExists", err)
	}
	var got rec
	if err := s.Get(ctx, KindTasks, "k8s.io/a", &got); err != nil || got.Name != "a" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := Update(ctx, s, KindTasks, "k8s.io/a", func(r *rec) error { r.Count++; return nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Update(ctx, s, KindTasks, "k8s.io/a", func(r *rec) error { r.Count = 99; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update with failing fn: %v", err)
	}
	if err := s.Get(ctx, KindTasks, "k8s.io/a", &got); err != nil || got.Count != 1 {
		t.Fatalf("after updates: %+v %v, want count 1", got, err)
	}
	if err := Update(ctx, s, KindTasks, "missing", func(*rec) error { return nil }); !errdefs.IsNotFound(err) {
		t.Fatalf("update missing: %v", err)
	}
	if err := s.Put(ctx, KindTasks, "k8s.io/b", rec{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, KindTasks, func(k string, dec Decoder) error {
		var r rec
		keys = append(keys, k)
		return dec(&r)
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "k8s.io/a" || keys[1] != "k8s.io/b" {
		t.Fatalf("list: %v", keys)
	}
	if err := s.Delete(ctx, KindTasks, "k8s.io/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, KindTasks, "k8s.io/a"); !errdefs.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.Get(ctx, KindTasks, "k8s.io/a", &got); !errdefs.IsNotFound(err) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := s.Get(ctx, KindImages, "", &got); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("empty key: %v", err)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, KindImages, "sha256:x", rec{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got rec
	if err := s.Get(ctx, KindImages, "sha256:x", &got); err != nil || got.Name != "x" {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
}

func TestSecondOpenIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); !errdefs.IsUnavailable(err) {
		t.Fatalf("second open: %v, want Unavailable", err)
	}
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A database from a newer build is refused, not corrupted.
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte(rootBucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(schemaVersionKey), []byte("999"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("opened a database with a newer schema")
	}
	for i, m := range migrations {
		t.Run(m.name, func(t *testing.T) {
			db, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error {
				root, err := tx.CreateBucket([]byte(rootBucket))
				if err != nil {
					return err
				}
				return migrations[i].run(root)
			}); err != nil {
				t.Fatalf("migration %d: %v", i+1, err)
			}
		})
	}
}
