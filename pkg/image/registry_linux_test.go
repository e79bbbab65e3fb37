package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/store"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

// loopbackOnly is a transport that dials 127.0.0.1 only: no test packet
// (DNS included) leaves the machine.
func loopbackOnly() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil || host != "127.0.0.1" {
				return nil, fmt.Errorf("test transport: refusing to dial %s", addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 32,
	}
}

// countingTransport counts blob GETs.
type countingTransport struct {
	next  http.RoundTripper
	blobs atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
		c.blobs.Add(1)
	}
	return c.next.RoundTrip(req)
}

// layerOf builds a layer from tar entries; oci picks the OCI media type.
func layerOf(t testing.TB, oci bool, entries ...entry) v1.Layer {
	t.Helper()
	data := tarOf(t, entries...)
	mt := types.DockerLayer
	if oci {
		mt = types.OCILayer
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageOf(t testing.TB, arch string, cfg v1.Config, oci bool, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := empty.Image
	if oci {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", arch, cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, layers...); err != nil {
		t.Fatal(err)
	}
	return img
}

func push(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(loopbackOnly())); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func pushIndex(t testing.TB, ref string, idx v1.ImageIndex) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithTransport(loopbackOnly())); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func busyboxEntries(t testing.TB) []entry {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	e := file("bin/busybox", string(bb))
	e.hdr.Mode = 0o755
	return []entry{dirEntry("bin/"), e, symlinkEntry("bin/sh", "busybox"), symlinkEntry("bin/ls", "busybox")}
}

// fixture is a registry with the test images pushed, and the layer count
// of each.
type fixture struct {
	addr string
	imgs map[string]v1.Image
}

func newFixture(t *testing.T) *fixture {
	requireRoot(t)
	f := &fixture{addr: testutil.StartRegistry(t), imgs: map[string]v1.Image{}}

	// busybox: a file deleted and an opaque directory in the upper layer.
	base := append(busyboxEntries(t),
		dirEntry("etc/"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), file("etc/deleteme", "x"),
		dirEntry("opq/"), file("opq/old1", "1"), file("opq/old2", "2"),
		dirEntry("keep/"), file("keep/a", "a"))
	upper := []entry{file("etc/.wh.deleteme", ""), file("opq/.wh..wh..opq", ""), file("opq/new", "new"), file("keep/b", "b")}
	cfg := v1.Config{User: "1000", Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}, WorkingDir: "/", Labels: map[string]string{"k": "v"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}}, Volumes: map[string]struct{}{"/data": {}}, StopSignal: "SIGQUIT"}
	f.imgs["busybox"] = imageOf(t, "amd64", cfg, false, layerOf(t, false, base...), layerOf(t, false, upper...))
	push(t, f.addr+"/library/busybox:latest", f.imgs["busybox"])

	// An OCI manifest with a single layer.
	f.imgs["oci"] = imageOf(t, "amd64", v1.Config{Cmd: []string{"true"}}, true, layerOf(t, true, file("oci", "yes")))
	push(t, f.addr+"/oci/single:v1", f.imgs["oci"])

	// An index with linux/amd64 and linux/arm64.
	amd := imageOf(t, "amd64", v1.Config{}, true, layerOf(t, true, file("arch", "amd64")))
	arm := imageOf(t, "arm64", v1.Config{}, true, layerOf(t, true, file("arch", "arm64")))
	f.imgs["multi-amd64"], f.imgs["multi-arm64"] = amd, arm
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	pushIndex(t, f.addr+"/multi/arch:v1", idx)

	// 20 layers, each adding a file and deleting the previous one's.
	var layers []v1.Layer
	for i := range 20 {
		es := []entry{file(fmt.Sprintf("layer%02d", i), fmt.Sprint(i))}
		if i > 0 {
			es = append(es, file(fmt.Sprintf(".wh.gone%02d", i-1), ""))
		}
		es = append(es, file(fmt.Sprintf("gone%02d", i), "x"))
		layers = append(layers, layerOf(t, false, es...))
	}
	f.imgs["many"] = imageOf(t, "amd64", v1.Config{}, false, layers...)
	push(t, f.addr+"/many/layers:v1", f.imgs["many"])
	return f
}

func (f *fixture) id(t testing.TB, key string) string {
	t.Helper()
	d, err := f.imgs[key].ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// mirrorConfig points docker.io at the test registry, with no fallback.
func mirrorConfig(endpoints ...string) Config {
	cfg := DefaultConfig()
	cfg.Platform = "linux/amd64"
	no := false
	cfg.Registry.Mirrors = map[string]Mirror{"docker.io": {Endpoints: endpoints, Fallback: &no}}
	return cfg
}

type env struct {
	root string
	st   *store.Store
	svc  *Service
}

func newService(t *testing.T, root string, cfg Config, opts ...Option) *env {
	t.Helper()
	st, err := store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) == 0 {
		opts = []Option{WithTransport(loopbackOnly())}
	}
	svc, err := New(filepath.Join(root, "image"), st, cfg, opts...)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	e := &env{root: root, st: st, svc: svc}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.svc != nil {
		e.svc.Close()
		e.st.Close()
		e.svc = nil
	}
}

// mountRootfs mounts the mounts on a temp dir, unmounted in Cleanup.
func mountRootfs(t *testing.T, mounts []Mount) string {
	t.Helper()
	target := t.TempDir()
	if len(mounts) != 1 {
		t.Fatalf("mounts = %+v", mounts)
	}
	if err := mounts[0].Mount(target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
	return target
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
