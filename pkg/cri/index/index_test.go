package index

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

type thing struct{ id string }

func TestIndex(t *testing.T) {
	idx := New("thing", func(v thing) string { return v.id })
	for _, id := range []string{"abcdef", "abcxyz", "zzz111"} {
		if err := idx.Add(thing{id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := idx.Add(thing{"abcdef"}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("duplicate add: %v", err)
	}
	for _, tc := range []struct {
		name, q, want string
		wantErr       error
	}{
		{"full id", "abcdef", "abcdef", nil},
		{"unique prefix", "zzz", "zzz111", nil},
		{"ambiguous prefix", "abc", "", errdefs.ErrNotFound},
		{"too short prefix", "zz", "", errdefs.ErrNotFound},
		{"missing", "nope", "", errdefs.ErrNotFound},
		{"empty", "", "", errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := idx.Get(tc.q)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Get(%q) = %v, want %v", tc.q, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.id != tc.want {
				t.Fatalf("Get(%q) = %v, %v; want %s", tc.q, got, err, tc.want)
			}
		})
	}
	idx.Delete("abcdef")
	idx.Delete("abcdef")
	if l := idx.List(); len(l) != 2 || l[0].id != "abcxyz" || l[1].id != "zzz111" {
		t.Fatalf("List = %v", l)
	}
}

func TestNamesRetryGetsInFlightResult(t *testing.T) {
	n := NewNames("pod")
	ctx := context.Background()
	res, holder, err := n.Reserve(ctx, "pod_ns_uid_0", "id1", "cfgA")
	if err != nil || holder != "" {
		t.Fatal(err, holder)
	}
	// Another config with the same name fails at once, naming the holder.
	if _, _, err := n.Reserve(ctx, "pod_ns_uid_0", "id2", "cfgB"); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("other config: %v", err)
	}
	// A retry with the same config waits for the create in flight: it
	// must not return before that create is done.
	returned := make(chan struct{})
	var gotHolder string
	go func() {
		defer close(returned)
		_, gotHolder, err = n.Reserve(ctx, "pod_ns_uid_0", "id3", "cfgA")
	}()
	select {
	case <-returned:
		t.Fatalf("the retry returned (%q, %v) while the create was still in flight", gotHolder, err)
	case <-time.After(50 * time.Millisecond):
	}
	res.Done(nil)
	<-returned
	if err != nil || gotHolder != "id1" {
		t.Fatalf("retry got %q, %v; want id1", gotHolder, err)
	}
	n.Release("pod_ns_uid_0", "id1")
	if _, _, err := n.Reserve(ctx, "pod_ns_uid_0", "id4", "cfgB"); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestNamesFailedCreateReleases(t *testing.T) {
	n := NewNames("container")
	ctx := context.Background()
	res, _, err := n.Reserve(ctx, "c", "id1", "x")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		r, holder, err := n.Reserve(ctx, "c", "id2", "x")
		if err == nil && (r == nil || holder != "") {
			err = errors.New("retry after a failed create did not get the name")
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	res.Done(errors.New("create failed"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := n.Reserve(cctx, "c", "id3", "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reserve while held: %v", err)
	}
}

func TestObjectUpdateSync(t *testing.T) {
	fail := errors.New("disk full")
	var persisted []int
	writeErr := error(nil)
	o := NewObject("meta", 1, func(_ context.Context, _ string, s int) error {
		if writeErr != nil {
			return writeErr
		}
		persisted = append(persisted, s)
		return nil
	})
	ctx := context.Background()
	if err := o.UpdateSync(ctx, func(s int) (int, error) { return s + 1, nil }); err != nil {
		t.Fatal(err)
	}
	writeErr = fail
	if err := o.UpdateSync(ctx, func(s int) (int, error) { return s + 1, nil }); !errors.Is(err, fail) {
		t.Fatalf("failed write: %v", err)
	}
	if o.Status() != 2 || len(persisted) != 1 {
		t.Fatalf("status %d persisted %v: a failed write must change nothing", o.Status(), persisted)
	}
	if err := o.Update(func(s int) (int, error) { return 10, nil }); err != nil || o.Status() != 10 {
		t.Fatalf("Update: %v %d", err, o.Status())
	}
}
