package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Registries and images are untrusted input. These bounds keep what one
// pull can make the daemon allocate or hold independent of what a
// registry sends; the per-layer bounds on disk are in Config
// (max_layer_size, max_layer_inodes, max_entry_size). docs/security.md
// lists them all with the tests that prove them.
const (
	// maxResponseSize bounds every registry response body except a blob
	// being fetched: manifests, indexes, tokens, errors. containers/image
	// and containerd allow 4 MiB for a manifest.
	maxResponseSize = 4 << 20
	// maxConfigSize bounds the image config blob, which is read into
	// memory and kept in the image record (containers/image: 4 MiB).
	maxConfigSize = 4 << 20
	// maxLayers bounds the layers of one image, checked before anything
	// is fetched for them. Docker refuses more than 125; overlayfs mounts
	// of about 100 fit the kernel's one page of mount options here.
	maxLayers = 128
	// maxZstdWindow bounds the window a zstd layer may ask the decoder to
	// allocate (up front, per concurrent layer). The encoders that build
	// image layers (klauspost/compress in BuildKit, containers/image and
	// containerd; the zstd CLI up to level 19) use at most 8 MiB.
	maxZstdWindow = 32 << 20
)

// limitError is a refusal because input exceeded one of the bounds
// above or in Config. It is errdefs.ErrInvalidArgument; its message says
// what exceeded which limit, and names the config key where there is one.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }
func (e *limitError) Unwrap() error { return errdefs.ErrInvalidArgument }

func limitErrorf(format string, args ...any) error {
	return &limitError{msg: fmt.Sprintf(format, args...)}
}

type blobRequestKey struct{}

// withBlobRequest marks ctx as the context of a blob GET whose body the
// caller bounds itself (by the descriptor's size), so capTransport
// leaves a successful response alone. Redirects keep the mark: the
// http.Client sends them with the same context.
func withBlobRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, blobRequestKey{}, true)
}

// capTransport bounds the body of every response that is not a blob
// being fetched to maxResponseSize. go-containerregistry reads manifests
// and indexes into memory with a 100 MiB bound of its own; this one
// comes first.
type capTransport struct{ next http.RoundTripper }

func (c capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || (resp.StatusCode == http.StatusOK && req.Context().Value(blobRequestKey{}) != nil) {
		return resp, err
	}
	what := "registry response to " + req.Method + " " + req.URL.Path
	if resp.ContentLength > maxResponseSize {
		resp.Body.Close()
		return nil, limitErrorf("%s is %d bytes, the limit is %d (4 MiB)", what, resp.ContentLength, maxResponseSize)
	}
	resp.Body = cappedBody{
		Reader: &capReader{r: resp.Body, left: maxResponseSize, err: limitErrorf("%s is more than %d bytes (4 MiB), the limit", what, maxResponseSize)},
		Closer: resp.Body,
	}
	return resp, nil
}

type cappedBody struct {
	io.Reader
	io.Closer
}

// progressTransport aborts a request that waits longer than timeout for
// its response headers or for any one read of its body: a registry that
// stalls mid-blob fails the pull instead of blocking it forever. Only
// time spent waiting on the network counts; a slow consumer (a big file
// being written) does not.
type progressTransport struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (p progressTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watchdog{
		timeout: p.timeout,
		cancel:  cancel,
		// Host and path only: a redirect's query may be a signed URL.
		err: fmt.Errorf("%s %s%s: no progress for %s (pull_progress_timeout): %w",
			req.Method, req.URL.Host, req.URL.Path, p.timeout, errdefs.ErrUnavailable),
	}
	w.timer = time.AfterFunc(p.timeout, w.fire)
	resp, err := p.next.RoundTrip(req.WithContext(ctx))
	if !w.timer.Stop() || w.fired.Load() {
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, w.err
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &watchedBody{rc: resp.Body, w: w}
	return resp, nil
}

type watchdog struct {
	timeout time.Duration
	timer   *time.Timer
	cancel  context.CancelCauseFunc
	fired   atomic.Bool
	err     error
}

func (w *watchdog) fire() {
	w.fired.Store(true)
	w.cancel(w.err) // unblocks the read: the transport closes the connection
}

type watchedBody struct {
	rc io.ReadCloser
	w  *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.w.fired.Load() {
		return 0, b.w.err
	}
	b.w.timer.Reset(b.w.timeout)
	n, err := b.rc.Read(p)
	if !b.w.timer.Stop() || b.w.fired.Load() {
		return n, b.w.err
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.w.timer.Stop()
	err := b.rc.Close()
	b.w.cancel(nil)
	return err
}

// verifiedReader passes a blob through while hashing and counting it. It
// fails at the first byte past size, and at the end of the stream when
// fewer than size bytes came or the digest differs: a reader behind it
// (the decompressor, the tar reader) never sees a clean end of a blob
// that is not the one the manifest names.
type verifiedReader struct {
	r      io.Reader // the body, limited to size+1
	h      hash.Hash
	n      int64
	size   int64
	digest string
	err    error // sticky once the blob is judged
}

func newVerifiedReader(body io.Reader, size int64, digest string) *verifiedReader {
	limit := size
	if limit < math.MaxInt64 {
		limit++ // one byte past the end tells a longer blob
	}
	return &verifiedReader{r: io.LimitReader(body, limit), h: sha256.New(), size: size, digest: digest}
}

func (v *verifiedReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	if v.n+int64(n) > v.size {
		n = int(v.size - v.n) // the byte past the end is not passed on
		v.err = fmt.Errorf("blob %s: longer than the %d bytes its descriptor says: %w", v.digest, v.size, errdefs.ErrUnavailable)
	}
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.err != nil:
		return n, v.err
	case err == io.EOF && v.n < v.size:
		v.err = fmt.Errorf("blob %s: ended after %d of its %d bytes: %w", v.digest, v.n, v.size, errdefs.ErrUnavailable)
	case err == io.EOF:
		if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.digest {
			v.err = fmt.Errorf("blob %s: content has digest %s: %w", v.digest, got, errdefs.ErrUnavailable)
		} else {
			v.err = io.EOF
		}
	default:
		return n, err
	}
	return n, v.err
}

// capReader fails at the first byte past max with err.
type capReader struct {
	r    io.Reader
	left int64
	err  error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left { // never c.left+1: it may be MaxInt64
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left < 0 {
		return n + int(c.left), c.err
	}
	return n, err
}
