package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
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

// hostileRegistry is an httptest registry serving fixed manifests and
// blobs, written to misbehave on purpose: oversize documents, bodies
// without Content-Length, blobs that stall.
type hostileRegistry struct {
	addr  string
	mu    sync.Mutex
	files map[string]*hostileFile // by URL path
	gets  map[string]int          // GETs by URL path
}

type hostileFile struct {
	mediaType string
	body      []byte
	chunked   bool // no Content-Length
	// stallAfter > 0: send that many bytes, then nothing until the client
	// goes away; < 0: not even the headers.
	stallAfter int
	// drip: send the body in 4 pieces this far apart.
	drip time.Duration
}

func newHostileRegistry(t *testing.T) *hostileRegistry {
	t.Helper()
	h := &hostileRegistry{files: map[string]*hostileFile{}, gets: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		h.mu.Lock()
		f, ok := h.files[r.URL.Path]
		if r.Method == http.MethodGet {
			h.gets[r.URL.Path]++
		}
		h.mu.Unlock()
		if !ok {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		h.mu.Lock()
		fc := *f
		h.mu.Unlock()
		f = &fc
		if f.stallAfter < 0 {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", f.mediaType)
		if !f.chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
		}
		if r.Method == http.MethodHead {
			return
		}
		body := f.body
		if f.stallAfter > 0 {
			body = body[:f.stallAfter]
		}
		chunk := 64 << 10
		if f.drip > 0 {
			chunk = len(body)/4 + 1
		}
		for len(body) > 0 {
			n := min(len(body), chunk)
			if _, err := w.Write(body[:n]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if body = body[n:]; len(body) > 0 && f.drip > 0 {
				time.Sleep(f.drip)
			}
		}
		if f.stallAfter > 0 {
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	h.addr = strings.TrimPrefix(srv.URL, "http://")
	return h
}

func (h *hostileRegistry) served(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gets[path]
}

// testLayer is a layer blob as served, with its diffID.
type testLayer struct {
	blob      []byte
	diffID    string
	mediaType types.MediaType
}

func gzipLayer(t *testing.T, entries ...entry) testLayer {
	t.Helper()
	data := tarOf(t, entries...)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return testLayer{blob: buf.Bytes(), diffID: sha256Digest(data), mediaType: types.OCILayer}
}

// zstdLayer wraps the tar of entries in one zstd frame whose header asks
// for a window of 1<<windowLog bytes; the data is in raw blocks.
func zstdLayer(t *testing.T, windowLog uint, entries ...entry) testLayer {
	t.Helper()
	data := tarOf(t, entries...)
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte((windowLog - 10) << 3)}
	for rest := data; ; {
		n := min(len(rest), 128<<10)
		last := uint32(0)
		if n == len(rest) {
			last = 1
		}
		hdr := uint32(n)<<3 | last // raw block
		out = append(out, byte(hdr), byte(hdr>>8), byte(hdr>>16))
		out = append(out, rest[:n]...)
		if rest = rest[n:]; last == 1 {
			break
		}
	}
	return testLayer{blob: out, diffID: sha256Digest(data), mediaType: types.OCILayerZStd}
}

// serve publishes an OCI image of layers as repo:tag. configPad and
// manifestPad add that many bytes to the config (a label) and the
// manifest (an annotation); edit may change the manifest last. It
// returns the config's and the manifest's URL paths.
func (h *hostileRegistry) serve(t *testing.T, repo, tag string, layers []testLayer, configPad, manifestPad int, edit func(*v1.Manifest)) (configPath, manifestPath string) {
	t.Helper()
	cf := v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers"}}
	for _, l := range layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: hexOf(l.diffID)})
	}
	if configPad > 0 {
		cf.Config.Labels = map[string]string{"pad": strings.Repeat("x", configPad)}
	}
	cfg, err := json.Marshal(cf)
	if err != nil {
		t.Fatal(err)
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfg)), Digest: mustHash(t, sha256Digest(cfg))}}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range layers {
		d := v1.Descriptor{MediaType: l.mediaType, Size: int64(len(l.blob)), Digest: mustHash(t, sha256Digest(l.blob))}
		m.Layers = append(m.Layers, d)
		h.files["/v2/"+repo+"/blobs/"+d.Digest.String()] = &hostileFile{mediaType: "application/octet-stream", body: l.blob}
	}
	if manifestPad > 0 {
		m.Annotations = map[string]string{"pad": strings.Repeat("x", manifestPad)}
	}
	if edit != nil {
		edit(&m)
	}
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	configPath = "/v2/" + repo + "/blobs/" + m.Config.Digest.String()
	manifestPath = "/v2/" + repo + "/manifests/" + tag
	h.files[configPath] = &hostileFile{mediaType: string(types.OCIConfigJSON), body: cfg}
	h.files[manifestPath] = &hostileFile{mediaType: string(types.OCIManifestSchema1), body: mb}
	return configPath, manifestPath
}

// edit changes how path is served; the returned func undoes it.
func (h *hostileRegistry) edit(path string, fn func(*hostileFile)) (undo func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	saved := *h.files[path]
	fn(h.files[path])
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		*h.files[path] = saved
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// hostileConfig pulls <addr>/... over http, from there only.
func hostileConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.Platform = "linux/amd64"
	no := false
	cfg.Registry.Mirrors = map[string]Mirror{addr: {Endpoints: []string{"http://" + addr}, Fallback: &no}}
	return cfg
}

// wantLimit checks that err is InvalidArgument and names the limit.
func wantLimit(t *testing.T, err error, limit string) {
	t.Helper()
	if err == nil {
		t.Fatal("pull succeeded")
	}
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), limit) {
		t.Errorf("err = %v; want InvalidArgument naming %q", err, limit)
	}
	t.Logf("err = %v", err)
}

// TestIssue13RegistryCannotMakeUsAllocate: an image whose config blob was
// 64 MiB was accepted (the daemon's RSS went to 583 MB); manifests were
// read up to go-containerregistry's 100 MiB; any number of layers started
// a goroutine each; a zstd frame could ask for a 1 GiB window.
func TestIssue13RegistryCannotMakeUsAllocate(t *testing.T) {
	requireRoot(t)
	_, ctx := ktesting.NewTestContext(t)
	h := newHostileRegistry(t)
	e := newService(t, t.TempDir(), hostileConfig(h.addr))
	small := []testLayer{gzipLayer(t, file("f", "x"))}
	pull := func(repo string) error {
		_, err := e.svc.Pull(ctx, h.addr+"/"+repo+":v1", nil)
		return err
	}

	// The baseline: the same small image, honest, pulls.
	h.serve(t, "ok", "v1", small, 0, 0, nil)
	if err := pull("ok"); err != nil {
		t.Fatalf("honest image: %v", err)
	}

	t.Run("config blob of 64 MiB", func(t *testing.T) {
		configPath, _ := h.serve(t, "bigconfig", "v1", small, 64<<20, 0, nil)
		wantLimit(t, pull("bigconfig"), "4194304")
		if n := h.served(configPath); n != 0 {
			t.Errorf("the config was fetched %d times; the size in its descriptor should have refused it", n)
		}
	})
	t.Run("config blob longer than its descriptor", func(t *testing.T) {
		configPath, _ := h.serve(t, "longconfig", "v1", small, 0, 0, nil)
		h.edit(configPath, func(f *hostileFile) {
			f.body, f.chunked = append(f.body, bytes.Repeat([]byte(" "), 64<<20)...), true
		})
		if err := pull("longconfig"); err == nil || !strings.Contains(err.Error(), "longer") {
			t.Errorf("err = %v, want the blob refused as longer than its descriptor", err)
		}
	})
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("manifest of 5 MiB chunked=%v", chunked), func(t *testing.T) {
			repo := fmt.Sprintf("bigmanifest%v", chunked)
			_, manifestPath := h.serve(t, repo, "v1", small, 0, 5<<20, nil)
			h.edit(manifestPath, func(f *hostileFile) { f.chunked = chunked })
			wantLimit(t, pull(repo), "4194304")
		})
	}
	t.Run("200 layers", func(t *testing.T) {
		var layers []testLayer
		for i := range 200 {
			layers = append(layers, gzipLayer(t, file(fmt.Sprint(i), "x")))
		}
		h.serve(t, "manylayers", "v1", layers, 0, 0, nil)
		wantLimit(t, pull("manylayers"), "128")
		for _, l := range layers {
			if n := h.served("/v2/manylayers/blobs/" + sha256Digest(l.blob)); n != 0 {
				t.Fatalf("a layer of the refused image was fetched")
			}
		}
	})
	t.Run("zstd window", func(t *testing.T) {
		// 32 MiB is allowed; 64 MiB is refused.
		h.serve(t, "zstd32", "v1", []testLayer{zstdLayer(t, 25, file("z", "zstd"))}, 0, 0, nil)
		if err := pull("zstd32"); err != nil {
			t.Errorf("zstd layer with a 32 MiB window: %v", err)
		}
		h.serve(t, "zstd64", "v1", []testLayer{zstdLayer(t, 26, file("z", "another layer"))}, 0, 0, nil)
		wantLimit(t, pull("zstd64"), "33554432")
	})
	if got := listDir(t, e.svc.tmpDir()); len(got) != 0 {
		t.Errorf("tmp keeps %v", got)
	}
}

// eventually polls cond for up to 10s: a cancelled layer's cleanup may
// finish just after its pull returned.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%s: still not so after 10s", what)
			return
		}
	}
}

// nothingLeft checks that a failed pull left no image, no temp directory
// and no layer but the complete ones in keep (diffIDs: a good layer of a
// failed pull stays for a retry until the next collection).
func nothingLeft(t *testing.T, e *env, keep ...string) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	eventually(t, "tmp/ empty", func() bool { return len(listDir(t, e.svc.tmpDir())) == 0 })
	for _, d := range listDir(t, e.svc.layersDir()) {
		if !slices.Contains(keep, "sha256:"+d) {
			t.Errorf("layers/ keeps %v", d)
		}
	}
	if imgs, _ := e.svc.List(ctx); len(imgs) != 0 {
		t.Errorf("images: %v", imageNames(imgs))
	}
}

// TestIssue13LayerLimits: a layer was unpacked without any bound on its
// total size or inode count, so a compromised mirror could fill the disk
// (a zstd blob expands ~32000:1) before its digest mismatch was found.
func TestIssue13LayerLimits(t *testing.T) {
	requireRoot(t)
	_, ctx := ktesting.NewTestContext(t)
	addr := testutil.StartRegistry(t)
	cfg := hostileConfig(addr)
	cfg.MaxLayerSize = 1 << 20
	cfg.MaxLayerInodes = 100

	manyFiles := func(n int) []entry {
		var es []entry
		for i := range n {
			es = append(es, file(fmt.Sprintf("f%03d", i), "x"))
		}
		return es
	}
	zeros := func(n int) string { return string(make([]byte, n)) }
	zstdOf := func(entries ...entry) v1.Layer {
		data := tarOf(t, entries...)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, tc := range []struct {
		name   string
		layers []v1.Layer
		limit  string // "" : within the limits
	}{
		{"within the limits", []v1.Layer{layerOf(t, true, append(manyFiles(90), file("big", zeros(900<<10)))...)}, ""},
		{"one file over max_layer_size", []v1.Layer{layerOf(t, true, file("big", zeros(2<<20)))}, "max_layer_size"},
		{"many files over max_layer_size", []v1.Layer{layerOf(t, true, file("a", zeros(600<<10)), file("b", zeros(600<<10)))}, "max_layer_size"},
		// 64 MiB of zeros: a blob of a few KiB.
		{"zstd bomb", []v1.Layer{zstdOf(file("bomb", zeros(64<<20)))}, "max_layer_size"},
		{"over max_layer_inodes", []v1.Layer{layerOf(t, true, manyFiles(101)...)}, "max_layer_inodes"},
		{"directories count", []v1.Layer{layerOf(t, true, append(manyFiles(60), func() []entry {
			var ds []entry
			for i := range 41 {
				ds = append(ds, dirEntry(fmt.Sprintf("d%02d/", i)))
			}
			return ds
		}()...)...)}, "max_layer_inodes"},
		{"over max_entry_size", []v1.Layer{layerOf(t, true, file("big", zeros(3<<10)))}, "max_entry_size"},
		// Incompressible: the blob itself is over the limit.
		{"blob over max_layer_size", []v1.Layer{layerOf(t, true, file("random", string(randomBytes(t, 2<<20))))}, "max_layer_size"},
		// The good layer may finish or be cancelled; either way nothing stays.
		{"one bad layer of two", []v1.Layer{layerOf(t, true, file("ok", "ok")), zstdOf(file("bomb2", zeros(64<<20)))}, "max_layer_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.limit == "max_entry_size" {
				c.MaxEntrySize = 2 << 10
			}
			counter := &countingTransport{next: loopbackOnly()}
			e := newService(t, t.TempDir(), c, WithTransport(counter))
			repo := strings.ReplaceAll(tc.name, " ", "-")
			push(t, addr+"/"+repo+":v1", imageOf(t, "amd64", v1.Config{}, true, tc.layers...))
			_, err := e.svc.Pull(ctx, addr+"/"+repo+":v1", nil)
			if tc.limit == "" {
				if err != nil {
					t.Fatalf("layer within the limits: %v", err)
				}
				return
			}
			wantLimit(t, err, tc.limit)
			if n := counter.blobs.Load(); strings.HasPrefix(tc.name, "blob over") && n != 0 {
				t.Errorf("%d blob GETs; want none: the layer's size in the manifest refuses it", n)
			}
			var good []string
			for _, l := range tc.layers[:len(tc.layers)-1] {
				d, _ := l.DiffID()
				good = append(good, d.String())
			}
			nothingLeft(t, e, good...)
		})
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// imageGoroutines lists the goroutines running code of this package,
// other than the tests' own.
func imageGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "cri-runtime/pkg/image.") && !strings.Contains(g, "_test.go") {
			out = append(out, g)
		}
	}
	return out
}

// TestIssue13PullProgressTimeout: a registry that stalled mid-blob
// blocked the pull forever (its context is detached from the caller's),
// and with it the kubelet's serial image puller.
func TestIssue13PullProgressTimeout(t *testing.T) {
	requireRoot(t)
	h := newHostileRegistry(t)
	random := randomBytes(t, 1<<20) // gzip does not shrink it
	layers := []testLayer{gzipLayer(t, file("random", string(random))), gzipLayer(t, file("small", "x"))}
	_, manifestPath := h.serve(t, "stall", "v1", layers, 0, 0, nil)
	blobPath := "/v2/stall/blobs/" + sha256Digest(layers[0].blob)

	cfg := hostileConfig(h.addr)
	cfg.PullProgressTimeout = Duration(time.Second)
	for _, tc := range []struct {
		name       string
		path       string
		stallAfter int
	}{
		{"mid-blob", blobPath, len(layers[0].blob) / 2},
		{"mid-manifest", manifestPath, 10},
		{"before the manifest's headers", manifestPath, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			defer h.edit(tc.path, func(f *hostileFile) { f.stallAfter = tc.stallAfter })()
			e := newService(t, t.TempDir(), cfg)
			// Without the progress timeout the pull would hang: give up
			// waiting (which cancels it) after 20s.
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err := e.svc.Pull(ctx, h.addr+"/stall:v1", nil)
			took := time.Since(start)
			if err == nil {
				t.Fatal("pull from a stalled registry succeeded")
			}
			t.Logf("err after %s = %v", took, err)
			if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "pull_progress_timeout") {
				t.Errorf("err = %v, want Unavailable naming pull_progress_timeout", err)
			}
			if took > 8*time.Second {
				t.Errorf("the pull failed after %s, want a few seconds with a 1s progress timeout", took)
			}
			nothingLeft(t, e, layers[1].diffID)
			eventually(t, "no pull flight", func() bool {
				e.svc.pulls.mu.Lock()
				defer e.svc.pulls.mu.Unlock()
				e.svc.layerPulls.mu.Lock()
				defer e.svc.layerPulls.mu.Unlock()
				return len(e.svc.pulls.calls)+len(e.svc.layerPulls.calls) == 0
			})
			eventually(t, "no goroutine of the pull", func() bool { return len(imageGoroutines()) == 0 })
			if g := imageGoroutines(); len(g) != 0 {
				t.Logf("goroutines left:\n%s", strings.Join(g, "\n\n"))
			}
		})
	}

	t.Run("slow but steady", func(t *testing.T) {
		// A byte now and then is progress: 4 chunks 600ms apart take longer
		// than the timeout in all, and the pull succeeds.
		_, ctx := ktesting.NewTestContext(t)
		defer h.edit(blobPath, func(f *hostileFile) { f.drip = 600 * time.Millisecond })()
		e := newService(t, t.TempDir(), cfg)
		start := time.Now()
		if _, err := e.svc.Pull(ctx, h.addr+"/stall:v1", nil); err != nil {
			t.Fatalf("slow pull: %v", err)
		}
		if took := time.Since(start); took < 1500*time.Millisecond {
			t.Errorf("the drip took only %s: the test does not test a pull longer than the timeout", took)
		}
	})

	t.Run("0 disables it", func(t *testing.T) {
		defer h.edit(blobPath, func(f *hostileFile) { f.stallAfter = len(layers[0].blob) / 2 })()
		c := cfg
		c.PullProgressTimeout = 0
		e := newService(t, t.TempDir(), c)
		_, ctx := ktesting.NewTestContext(t)
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := e.svc.Pull(ctx, h.addr+"/stall:v1", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the caller's deadline", err)
		}
		nothingLeft(t, e, layers[1].diffID)
	})
}
