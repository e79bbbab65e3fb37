package image

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Tests of issue 13: registries and images are untrusted, and a hostile
// one must not reach past its own pull (docs/security.md).

// authProxy serves registry behind HTTP basic auth (user:pass). Every
// blob GET is held until release is closed; the first one calls held.
// manifests counts the authorized manifest GETs.
type authProxy struct {
	addr      string
	release   chan struct{}
	held      chan struct{}
	manifests atomic.Int64
	once      sync.Once
}

func newAuthProxy(t *testing.T, registry, user, pass string) *authProxy {
	t.Helper()
	p := &authProxy{release: make(chan struct{}), held: make(chan struct{})}
	u, _ := url.Parse("http://" + registry)
	rp := httputil.NewSingleHostReverseProxy(u)
	var heldOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, pw, ok := r.BasicAuth(); !ok || u != user || pw != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			p.manifests.Add(1)
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			heldOnce.Do(func() { close(p.held) })
			select {
			case <-p.release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.releaseAll()
		srv.Close()
	})
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *authProxy) releaseAll() { p.once.Do(func() { close(p.release) }) }

// TestIssue13PullFlightNeedsItsOwnCredentials: concurrent pulls of one
// reference used to share one flight whatever their credentials, so a
// pull without credentials that arrived during another pod's
// authenticated pull of a private image got the image.
func TestIssue13PullFlightNeedsItsOwnCredentials(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	proxy := newAuthProxy(t, f.addr, "user", "secret")
	e := newService(t, t.TempDir(), mirrorConfig("http://"+proxy.addr))

	good := &Auth{Username: "user", Password: "secret"}
	type result struct {
		img Image
		err error
	}
	pull := func(auth *Auth) chan result {
		c := make(chan result, 1)
		go func() {
			img, err := e.svc.Pull(ctx, "busybox", auth)
			c <- result{img, err}
		}()
		return c
	}
	first := pull(good)
	select {
	case <-proxy.held:
	case <-time.After(20 * time.Second):
		t.Fatal("the authenticated pull never reached a blob")
	}
	same := pull(good) // joins the running pull
	ref, _ := ParseReference("busybox")
	waitWaiters(t, e.svc.pulls, e.svc.flightKey(ref, good), 2)
	for name, auth := range map[string]*Auth{"anonymous": nil, "wrong password": {Username: "user", Password: "guess"}} {
		var r result
		c := pull(auth)
		select {
		case r = <-c:
		case <-time.After(5 * time.Second):
			// It joined the running pull: let that finish to see the result.
			proxy.releaseAll()
			r = <-c
		}
		if r.err == nil {
			t.Errorf("%s pull during an authenticated one got image %s", name, r.img.ID)
		} else if !errdefs.IsFailedPrecondition(r.err) {
			t.Errorf("%s pull: %v, want FailedPrecondition (401)", name, r.err)
		}
	}
	proxy.releaseAll()
	for _, c := range []chan result{first, same} {
		if r := <-c; r.err != nil || r.img.ID != f.id(t, "busybox") {
			t.Errorf("authenticated pull: %s, %v", r.img.ID, r.err)
		}
	}
	// The two with the same credentials shared one flight.
	if n := proxy.manifests.Load(); n != 1 {
		t.Errorf("%d authorized manifest GETs for two pulls with the same credentials, want 1", n)
	}
}
