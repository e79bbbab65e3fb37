package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

func TestPullThroughMirrorAndMountRootfs(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	e := newService(t, t.TempDir(), mirrorConfig("http://"+f.addr))

	img, err := e.svc.Pull(ctx, "busybox", nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != f.id(t, "busybox") {
		t.Errorf("ID = %s, want %s", img.ID, f.id(t, "busybox"))
	}
	if !slices.Equal(img.RepoTags, []string{"docker.io/library/busybox:latest"}) {
		t.Errorf("RepoTags = %v", img.RepoTags)
	}
	if len(img.RepoDigests) != 1 || !strings.HasPrefix(img.RepoDigests[0], "docker.io/library/busybox@sha256:") {
		t.Errorf("RepoDigests = %v", img.RepoDigests)
	}
	c := img.Config
	if c.User != "1000" || c.StopSignal != "SIGQUIT" || c.WorkingDir != "/" || !slices.Equal(c.Cmd, []string{"sh"}) ||
		!slices.Equal(c.Volumes, []string{"/data"}) || !slices.Equal(c.ExposedPorts, []string{"80/tcp"}) || c.Labels["k"] != "v" {
		t.Errorf("Config = %+v", c)
	}
	if uid, user := ParseUser(c.User); uid == nil || *uid != 1000 || user != "" {
		t.Errorf("ParseUser(%q) = %v, %q", c.User, uid, user)
	}
	if len(img.DiffIDs) != 2 || len(img.ChainIDs) != 2 || img.ChainIDs[0] != img.DiffIDs[0] || img.Size <= 0 || len(img.RawConfig) == 0 {
		t.Errorf("layers/size: %+v", img)
	}

	// Every spelling of the name finds it.
	for _, ref := range []string{"busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest",
		img.ID, strings.TrimPrefix(img.ID, "sha256:"), img.ID[7:19], img.RepoDigests[0], "busybox@" + strings.Split(img.RepoDigests[0], "@")[1]} {
		if got, err := e.svc.Get(ctx, ref); err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %s, %v", ref, got.ID, err)
		}
	}
	if _, err := e.svc.Get(ctx, "busybox:other"); !errdefs.IsNotFound(err) {
		t.Errorf("Get(busybox:other) err = %v, want NotFound", err)
	}

	mounts, err := e.svc.PrepareRootfs(ctx, "c1", img.ID)
	if err != nil {
		t.Fatal(err)
	}
	root := mountRootfs(t, mounts)
	if _, err := os.Stat(filepath.Join(root, "etc/deleteme")); !os.IsNotExist(err) {
		t.Errorf("etc/deleteme should be deleted by the upper layer's whiteout: %v", err)
	}
	if got := listDir(t, filepath.Join(root, "opq")); !slices.Equal(got, []string{"new"}) {
		t.Errorf("opaque dir shows %v, want [new]", got)
	}
	if got := listDir(t, filepath.Join(root, "keep")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("merged dir shows %v, want [a b]", got)
	}
	if got := listDir(t, filepath.Join(root, "etc")); !slices.Equal(got, []string{"passwd"}) {
		t.Errorf("etc shows %v", got)
	}
	if fi, err := os.Stat(filepath.Join(root, "bin/busybox")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/busybox: %v %v", fi, err)
	}
	// Writes land in the container's upper dir, not in a layer.
	if err := os.WriteFile(filepath.Join(root, "keep/a"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(e.svc.containerDir("c1"), "upper/keep/a")); string(b) != "changed" {
		t.Errorf("upper/keep/a = %q", b)
	}
	// Prepare again (daemon restart) gives the same mounts; over another
	// image it is AlreadyExists.
	again, err := e.svc.PrepareRootfs(ctx, "c1", img.ID)
	if err != nil || fmt.Sprint(again) != fmt.Sprint(mounts) {
		t.Errorf("second Prepare = %v, %v", again, err)
	}
	if got, err := e.svc.Rootfs(ctx, "c1"); err != nil || fmt.Sprint(got) != fmt.Sprint(mounts) {
		t.Errorf("Rootfs = %v, %v", got, err)
	}
	if used, inodes, mp, err := e.svc.FsInfo(ctx); err != nil || used < 1<<20 || inodes < 10 || mp != filepath.Join(e.root, "image/layers") {
		t.Errorf("FsInfo = %d %d %q %v", used, inodes, mp, err)
	}
}

func TestPullFailsCleanlyWithoutMirror(t *testing.T) {
	requireRoot(t)
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		ref  string
	}{
		// Upstream only, to a host that is never dialled (the test
		// transport refuses all but 127.0.0.1, DNS included).
		{"no mirror", DefaultConfig(), "example.invalid/library/busybox:latest"},
		// The registry is plain http and the config does not say so: the
		// request goes out as https and fails.
		{"http not configured", DefaultConfig(), f.addr + "/library/busybox:latest"},
		// A mirror that is down, no fallback.
		{"mirror down", mirrorConfig("http://127.0.0.1:1"), "busybox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newService(t, t.TempDir(), tc.cfg)
			_, err := e.svc.Pull(ctx, tc.ref, nil)
			if err == nil {
				t.Fatal("pull succeeded")
			}
			if !errdefs.IsUnavailable(err) && !errdefs.IsNotFound(err) {
				t.Errorf("err = %v, want a classified error", err)
			}
			t.Logf("err = %v", err)
			if imgs, _ := e.svc.List(ctx); len(imgs) != 0 {
				t.Errorf("images = %v", imgs)
			}
			if got := listDir(t, e.svc.tmpDir()); len(got) != 0 {
				t.Errorf("tmp = %v", got)
			}
		})
	}
	// A mirror that is down with fallback to an upstream that serves http
	// because the config says so.
	cfg := DefaultConfig()
	cfg.Registry.Mirrors = map[string]Mirror{f.addr: {Endpoints: []string{"http://127.0.0.1:1", "http://" + f.addr}}}
	e := newService(t, t.TempDir(), cfg)
	if _, err := e.svc.Pull(ctx, f.addr+"/library/busybox", nil); err != nil {
		t.Errorf("pull via second endpoint: %v", err)
	}
}

func TestPullIndexOCIAndManyLayers(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	cfg := mirrorConfig()
	cfg.Registry.Mirrors = map[string]Mirror{f.addr: {Endpoints: []string{"http://" + f.addr}}}
	e := newService(t, t.TempDir(), cfg)

	img, err := e.svc.Pull(ctx, f.addr+"/multi/arch:v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != f.id(t, "multi-amd64") {
		t.Errorf("index resolved to %s, want the amd64 image %s", img.ID, f.id(t, "multi-amd64"))
	}
	root := mountRootfs(t, prepare(t, e, "multi", img.ID))
	if b, _ := os.ReadFile(filepath.Join(root, "arch")); string(b) != "amd64" {
		t.Errorf("arch = %q", b)
	}

	img, err = e.svc.Pull(ctx, f.addr+"/oci/single:v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	root = mountRootfs(t, prepare(t, e, "single", img.ID))
	if got := listDir(t, root); !slices.Equal(got, []string{"oci"}) {
		t.Errorf("single-layer rootfs = %v", got)
	}

	img, err = e.svc.Pull(ctx, f.addr+"/many/layers:v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.DiffIDs) != 20 {
		t.Fatalf("%d layers", len(img.DiffIDs))
	}
	root = mountRootfs(t, prepare(t, e, "many", img.ID))
	got := listDir(t, root)
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("layer%02d", i))
	}
	want = append(want, "gone19")
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("20-layer rootfs = %v, want %v", got, want)
	}
}

func prepare(t *testing.T, e *env, id, image string) []Mount {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	m, err := e.svc.PrepareRootfs(ctx, id, image)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLayerStoreSurvivesReopen(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	dir := t.TempDir()
	cfg := mirrorConfig("http://" + f.addr)
	e := newService(t, dir, cfg)
	img, err := e.svc.Pull(ctx, "busybox", nil)
	if err != nil {
		t.Fatal(err)
	}
	mounts := prepare(t, e, "c1", img.ID)
	e.close()

	// Leftovers of a kill -9: a half-unpacked layer, a layer dir without
	// record, a rootfs dir without record.
	imgRoot := filepath.Join(dir, "image")
	for _, d := range []string{"tmp/layer-123/diff/x", "layers/" + strings.Repeat("ab", 32) + "/diff", "containers/half/upper"} {
		if err := os.MkdirAll(filepath.Join(imgRoot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	counter := &countingTransport{next: loopbackOnly()}
	e2 := newService(t, dir, cfg, WithTransport(counter))
	got, err := e2.svc.Get(ctx, "busybox")
	if err != nil || got.ID != img.ID {
		t.Fatalf("Get after reopen = %v, %v", got.ID, err)
	}
	if again, err := e2.svc.PrepareRootfs(ctx, "c1", "busybox"); err != nil || fmt.Sprint(again) != fmt.Sprint(mounts) {
		t.Errorf("Prepare after reopen = %v, %v; want %v", again, err, mounts)
	}
	mountRootfs(t, mounts)
	if got := listDir(t, filepath.Join(imgRoot, "tmp")); len(got) != 0 {
		t.Errorf("tmp after reopen: %v", got)
	}
	if got := listDir(t, filepath.Join(imgRoot, "layers")); len(got) != 2 {
		t.Errorf("layers after reopen: %v", got)
	}
	if got := listDir(t, filepath.Join(imgRoot, "containers")); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("containers after reopen: %v", got)
	}
	// Pulling again downloads nothing but the config.
	if _, err := e2.svc.Pull(ctx, "busybox", nil); err != nil {
		t.Fatal(err)
	}
	if n := counter.blobs.Load(); n != 1 {
		t.Errorf("re-pull fetched %d blobs, want 1 (the config)", n)
	}
}

func TestConcurrentPullsShareDownloads(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	counter := &countingTransport{next: loopbackOnly()}
	e := newService(t, t.TempDir(), mirrorConfig("http://"+f.addr), WithTransport(counter))
	refs := []string{"busybox", "docker.io/library/busybox:latest", "library/busybox", "busybox:latest", "busybox"}
	var wg sync.WaitGroup
	ids := make([]string, len(refs))
	errs := make([]error, len(refs))
	for i, ref := range refs {
		wg.Go(func() {
			img, err := e.svc.Pull(ctx, ref, nil)
			ids[i], errs[i] = img.ID, err
		})
	}
	wg.Wait()
	for i := range refs {
		if errs[i] != nil || ids[i] != f.id(t, "busybox") {
			t.Errorf("pull %q: %s, %v", refs[i], ids[i], errs[i])
		}
	}
	// One config and two layers.
	if n := counter.blobs.Load(); n != 3 {
		t.Errorf("%d blob GETs for %d concurrent pulls, want 3", n, len(refs))
	}
}

func TestRemoveAndLayerGC(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	push(t, f.addr+"/library/busybox:second", f.imgs["busybox"])
	e := newService(t, t.TempDir(), mirrorConfig("http://"+f.addr))
	layersOnDisk := func() int { return len(listDir(t, filepath.Join(e.root, "image/layers"))) }

	img, err := e.svc.Pull(ctx, "busybox", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Pull(ctx, "busybox:second", nil); err != nil {
		t.Fatal(err)
	}
	got, _ := e.svc.Get(ctx, img.ID)
	if len(got.RepoTags) != 2 || len(got.RepoDigests) != 1 {
		t.Fatalf("names = %v %v", got.RepoTags, got.RepoDigests)
	}
	// By tag: untag only.
	if err := e.svc.Remove(ctx, "busybox"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get(ctx, "busybox:latest"); !errdefs.IsNotFound(err) {
		t.Errorf("untagged name still found: %v", err)
	}
	if _, err := e.svc.Get(ctx, "busybox:second"); err != nil {
		t.Errorf("other tag lost: %v", err)
	}
	if got, _ := e.svc.Get(ctx, img.ID); len(got.RepoDigests) != 1 || layersOnDisk() != 2 {
		t.Errorf("after removing one of two tags: digests %v, %d layers", got.RepoDigests, layersOnDisk())
	}
	// A container keeps the layers after its image goes.
	prepare(t, e, "c1", img.ID)
	if err := e.svc.Remove(ctx, "busybox:second"); err != nil { // last name
		t.Fatal(err)
	}
	if _, err := e.svc.Get(ctx, img.ID); !errdefs.IsNotFound(err) {
		t.Errorf("image without tags still there: %v", err)
	}
	if layersOnDisk() != 2 {
		t.Errorf("layers of a container's rootfs were collected")
	}
	if err := e.svc.RemoveRootfs(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RemoveRootfs(ctx, "c1"); err != nil {
		t.Errorf("second RemoveRootfs: %v", err)
	}
	if n := layersOnDisk(); n != 0 {
		t.Errorf("%d layers left after the last user went", n)
	}
	if got := listDir(t, filepath.Join(e.root, "image/l")); len(got) != 0 {
		t.Errorf("links left: %v", got)
	}
	// By ID or by digest: all names go.
	for _, by := range []string{"id", "digest"} {
		img, err = e.svc.Pull(ctx, "busybox", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Pull(ctx, "busybox:second", nil); err != nil {
			t.Fatal(err)
		}
		ref := img.ID
		if by == "digest" {
			ref = img.RepoDigests[0]
		}
		if err := e.svc.Remove(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if imgs, _ := e.svc.List(ctx); len(imgs) != 0 || layersOnDisk() != 0 {
			t.Errorf("after remove by %s: %d images, %d layers", by, len(imgs), layersOnDisk())
		}
	}
	if err := e.svc.Remove(ctx, img.ID); !errdefs.IsNotFound(err) {
		t.Errorf("removing an absent image: %v, want NotFound", err)
	}
	var n int
	e.st.List(ctx, store.KindLayers, func(string, store.Decoder) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d layer records left", n)
	}
}

// TestIssue12RemoveLastTagRemovesImage: crictl rmi NAME:TAG of an image's
// only tag used to leave it listed under the digest name its pull added.
func TestIssue12RemoveLastTagRemovesImage(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	push(t, f.addr+"/library/busybox:second", f.imgs["busybox"])
	e := newService(t, t.TempDir(), mirrorConfig("http://"+f.addr))
	layerRecords := func() int {
		var n int
		e.st.List(ctx, store.KindLayers, func(string, store.Decoder) error { n++; return nil })
		return n
	}

	img, err := e.svc.Pull(ctx, "busybox:latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.RepoTags) != 1 || len(img.RepoDigests) != 1 {
		t.Fatalf("names after a pull by tag: %v %v", img.RepoTags, img.RepoDigests)
	}
	if err := e.svc.Remove(ctx, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if imgs, _ := e.svc.List(ctx); len(imgs) != 0 {
		t.Errorf("after removing the only tag the list has %v", imageNames(imgs))
	}
	if got := listDir(t, filepath.Join(e.root, "image/layers")); len(got) != 0 || layerRecords() != 0 {
		t.Errorf("layers left: %v, %d records", got, layerRecords())
	}

	// Two tags: removing one keeps the image with the other.
	for _, ref := range []string{"busybox:latest", "busybox:second"} {
		if _, err := e.svc.Pull(ctx, ref, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.Remove(ctx, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Get(ctx, img.ID)
	if err != nil || !slices.Equal(got.RepoTags, []string{"docker.io/library/busybox:second"}) || len(got.RepoDigests) != 1 {
		t.Fatalf("after removing one of two tags: %v %v, %v", got.RepoTags, got.RepoDigests, err)
	}
	if err := e.svc.Remove(ctx, "busybox:second"); err != nil {
		t.Fatal(err)
	}
	if imgs, _ := e.svc.List(ctx); len(imgs) != 0 {
		t.Errorf("after removing the last tag the list has %v", imageNames(imgs))
	}

	// A pull by digest is a name of its own: removing a tag leaves it.
	if _, err := e.svc.Pull(ctx, img.RepoDigests[0], nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Pull(ctx, "busybox:latest", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Remove(ctx, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.Get(ctx, img.RepoDigests[0]); err != nil || len(got.RepoTags) != 0 {
		t.Errorf("image pulled by digest after removing its tag: %v %v, %v", got.RepoTags, got.RepoDigests, err)
	}
	if err := e.svc.Remove(ctx, img.RepoDigests[0]); err != nil {
		t.Fatal(err)
	}
	if imgs, _ := e.svc.List(ctx); len(imgs) != 0 || layerRecords() != 0 {
		t.Errorf("after removing by digest: %d images, %d layer records", len(imgs), layerRecords())
	}
}

// imageNames is each image's ID and names, for messages.
func imageNames(imgs []Image) []string {
	var out []string
	for _, img := range imgs {
		out = append(out, fmt.Sprint(img.ID, img.RepoTags, img.RepoDigests))
	}
	return out
}

func TestPullMovesTag(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	cfg := mirrorConfig()
	cfg.Registry.Mirrors = map[string]Mirror{f.addr: {Endpoints: []string{"http://" + f.addr}}}
	e := newService(t, t.TempDir(), cfg)
	push(t, f.addr+"/app:v1", f.imgs["oci"])
	old, err := e.svc.Pull(ctx, f.addr+"/app:v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	push(t, f.addr+"/app:v1", f.imgs["multi-amd64"])
	cur, err := e.svc.Pull(ctx, f.addr+"/app:v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if old.ID == cur.ID {
		t.Fatal("same image")
	}
	// The old image lost its only tag but keeps its digest name.
	got, err := e.svc.Get(ctx, old.ID)
	if err != nil || len(got.RepoTags) != 0 || len(got.RepoDigests) != 1 {
		t.Errorf("old image = %+v, %v", got, err)
	}
}

// tamperingProxy serves the registry, but flips a byte in the middle of
// every layer blob it passes on.
func tamperingProxy(t *testing.T, registry string, layerDigest string) string {
	t.Helper()
	u, _ := url.Parse("http://" + registry)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/blobs/"+layerDigest) || resp.StatusCode != http.StatusOK {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0xff
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestDigestMismatchRefused(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	layers, _ := f.imgs["busybox"].Layers()
	d, _ := layers[0].Digest() // the big one, with busybox in it
	proxy := tamperingProxy(t, f.addr, d.String())
	e := newService(t, t.TempDir(), mirrorConfig("http://"+proxy))
	_, err := e.svc.Pull(ctx, "busybox", nil)
	if err == nil {
		t.Fatal("pull of a tampered blob succeeded")
	}
	if !strings.Contains(err.Error(), "digest") {
		t.Errorf("err = %v, want it to name the digest", err)
	}
	t.Logf("err = %v", err)
	if got := listDir(t, e.svc.tmpDir()); len(got) != 0 {
		t.Errorf("tmp keeps %v", got)
	}
	if imgs, _ := e.svc.List(ctx); len(imgs) != 0 {
		t.Errorf("images = %d", len(imgs))
	}
	// Whatever layer completed meanwhile is unreferenced; after a reopen
	// nothing of the pull is left.
	e.close()
	e2 := newService(t, e.root, mirrorConfig("http://"+proxy))
	if got := listDir(t, filepath.Join(e2.root, "image/layers")); len(got) != 0 {
		t.Errorf("layers after failed pull and reopen: %v", got)
	}
	if _, err := e2.svc.Pull(ctx, "busybox", nil); err == nil {
		t.Error("second pull of the tampered blob succeeded")
	}
}

func TestPullErrorsAreClassified(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	e := newService(t, t.TempDir(), mirrorConfig("http://"+f.addr))
	if _, err := e.svc.Pull(ctx, "nosuch/image:v1", nil); !errdefs.IsNotFound(err) {
		t.Errorf("pull of an absent image: %v, want NotFound", err)
	}
	if _, err := e.svc.Pull(ctx, "UPPER/case", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("pull of a bad reference: %v, want InvalidArgument", err)
	}
}
