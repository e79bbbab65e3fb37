// Package bench holds benchmarks that need real services (a local
// registry), run by `make bench` or
//
//	go test -run '^$' -bench Pull -benchtime 10x ./test/bench/
package bench

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/store"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

const (
	layerCount = 20
	layerBytes = 2_500_000
)

// randomLayer is one file of n random (uncompressible) bytes.
func randomLayer(b *testing.B, i, n int) v1.Layer {
	data := make([]byte, n)
	rand.Read(data)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("data/%02d.bin", i), Mode: 0o644, Size: int64(n), ModTime: time.Unix(1700000000, 0)})
	tw.Write(data)
	tw.Close()
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkPull20Layers pulls a 20-layer, ~50 MB image of random data
// from a local registry into a fresh layer store per iteration (ns/op is
// the pull alone), and downloads the same blobs raw (parallel GETs to
// io.Discard) in the same iteration, reported as download-ns/op and as
// the ratio pull/download.
func BenchmarkPull20Layers(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (layer ownership, whiteouts)")
	}
	addr := testutil.StartRegistry(b)
	var layers []v1.Layer
	for i := range layerCount {
		layers = append(layers, randomLayer(b, i, layerBytes))
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		b.Fatal(err)
	}
	ref := addr + "/bench/pull20:v1"
	nref, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(nref, img, remote.WithJobs(8)); err != nil {
		b.Fatal(err)
	}
	var blobURLs []string
	var total int64
	for _, l := range layers {
		d, _ := l.Digest()
		sz, _ := l.Size()
		total += sz
		blobURLs = append(blobURLs, fmt.Sprintf("http://%s/v2/bench/pull20/blobs/%s", addr, d))
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	download := func() {
		var wg sync.WaitGroup
		for _, u := range blobURLs {
			wg.Go(func() {
				resp, err := client.Get(u)
				if err != nil {
					b.Error(err)
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n == 0 {
					b.Errorf("GET %s: %s, %d bytes", u, resp.Status, n)
				}
			})
		}
		wg.Wait()
	}

	cfg := image.DefaultConfig()
	cfg.Registry.Mirrors = map[string]image.Mirror{addr: {Endpoints: []string{"http://" + addr}}}
	ctx := context.Background()
	base := b.TempDir()
	download() // warm the registry's file cache and the connections

	var downloadTime time.Duration
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		start := time.Now()
		download()
		downloadTime += time.Since(start)
		root := filepath.Join(base, fmt.Sprint(i))
		st, err := store.Open(filepath.Join(root, "meta.db"))
		if err != nil {
			b.Fatal(err)
		}
		svc, err := image.New(filepath.Join(root, "image"), st, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		if _, err := svc.Pull(ctx, ref, nil); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		svc.Close()
		st.Close()
		os.RemoveAll(root)
		b.StartTimer()
	}
	b.StopTimer()
	pullNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	dlNs := float64(downloadTime.Nanoseconds()) / float64(b.N)
	b.ReportMetric(dlNs, "download-ns/op")
	b.ReportMetric(pullNs/dlNs, "pull/download")
}
