package image

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFlightSharesAndSurvivesOneCancel(t *testing.T) {
	var wg sync.WaitGroup
	g := newFlight[int](context.Background(), &wg)
	var runs atomic.Int32
	release, started := make(chan struct{}), make(chan struct{})
	fn := func(ctx context.Context) (int, error) {
		runs.Add(1)
		close(started)
		select {
		case <-release:
			return 42, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	impatient, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := g.do(impatient, "k", fn); errc <- err }()
	<-started
	res := make(chan int, 1)
	go func() { v, _ := g.do(context.Background(), "k", fn); res <- v }()
	// Cancel only once the patient caller has joined: otherwise the
	// impatient one is the last waiter and rightly cancels the call.
	waitWaiters(t, g, "k", 2)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("impatient caller: %v", err)
	}
	close(release)
	if v := <-res; v != 42 {
		t.Errorf("patient caller got %d", v)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}

	// When every waiter gives up the call is cancelled.
	ctx, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := g.do(ctx, "k2", func(ctx context.Context) (int, error) { <-ctx.Done(); done <- ctx.Err(); return 0, ctx.Err() })
		_ = err
	}()
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned call ctx: %v", err)
	}
	wg.Wait()
}

// waitWaiters waits until n callers wait on key's call.
func waitWaiters[T any](t *testing.T, g *flight[T], key string, n int) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		g.mu.Lock()
		c, ok := g.calls[key]
		got := 0
		if ok {
			got = c.waiters
		}
		g.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fewer than %d waiters on %s", n, key)
}

func TestFlightKeySeparatesCredentials(t *testing.T) {
	s := &Service{}
	copy(s.authKey[:], "a key for the test, 32 bytes lon")
	r, err := ParseReference("busybox")
	if err != nil {
		t.Fatal(err)
	}
	anon := s.flightKey(r, nil)
	for _, a := range []*Auth{{}, {ServerAddress: "docker.io"}} {
		if k := s.flightKey(r, a); k != anon {
			t.Errorf("credential-less %+v: key %q, want the anonymous %q", a, k, anon)
		}
	}
	keys := map[string]bool{anon: true}
	for _, a := range []*Auth{
		{Username: "u", Password: "pass-word"},
		{Username: "u", Password: "pass-wore"},
		{Username: "upass-word", Password: ""},
		{Username: "u", Password: "pass-word", ServerAddress: "docker.io"},
		{Auth: "dTpwYXNzLXdvcmQ="},
		{IdentityToken: "identity-token"},
		{RegistryToken: "registry-token"},
	} {
		k := s.flightKey(r, a)
		if keys[k] {
			t.Errorf("%+v shares a key with other credentials", a)
		}
		keys[k] = true
		if k != s.flightKey(r, &Auth{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken, ServerAddress: a.ServerAddress}) {
			t.Errorf("%+v: key not stable", a)
		}
		for _, secret := range []string{a.Password, a.Auth, a.IdentityToken, a.RegistryToken} {
			if secret != "" && strings.Contains(k, secret) {
				t.Errorf("key %q holds the secret %q", k, secret)
			}
		}
	}
}
