package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// fetchLayers downloads and unpacks the layers not yet stored, at most
// MaxConcurrentDownloads at a time; the first failure cancels the rest.
func (s *Service) fetchLayers(ctx context.Context, ri *remoteImage, diffIDs []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, s.cfg.MaxConcurrentDownloads)
	var wg sync.WaitGroup
	seen := map[string]bool{}
	for i, d := range diffIDs {
		if seen[d] {
			continue
		}
		seen[d] = true
		s.mu.Lock()
		_, have := s.layers[d]
		s.mu.Unlock()
		if have {
			continue
		}
		desc := ri.manifest.Layers[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			_, err := s.layerPulls.do(ctx, d, func(ctx context.Context) (layerRecord, error) {
				return s.fetchLayer(ctx, ri, desc, d)
			})
			if err != nil {
				cancel(fmt.Errorf("layer %s: %w", desc.Digest, err))
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// hashReader hashes and counts what is read through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashReader) digest() string { return "sha256:" + hex.EncodeToString(h.h.Sum(nil)) }

// fetchLayer streams one blob from the registry into the layer store:
//
//	HTTP body → sha256 and size (fails at the first byte past the size,
//	and at the end on a digest mismatch) → decompress (zstd window ≤ 32
//	MiB) → max_layer_size → sha256 (diffID) → tar unpack (max_entry_size,
//	max_layer_inodes) into <root>/tmp/layer-*/diff
//
// and, only when both digests and the size match the manifest and the
// config, renames the directory to <root>/layers/<diffID>, links it in
// <root>/l and writes its record. Any failure removes the temp directory.
func (s *Service) fetchLayer(ctx context.Context, ri *remoteImage, desc v1.Descriptor, diffID string) (rec layerRecord, retErr error) {
	s.mu.Lock()
	rec, have := s.layers[diffID] // another image's pull may have finished it
	s.mu.Unlock()
	if have {
		return rec, nil
	}
	logger := klog.FromContext(ctx)
	start := time.Now()
	if desc.Size < 0 {
		return rec, fmt.Errorf("negative layer size: %w", errdefs.ErrFailedPrecondition)
	}
	body, err := ri.openBlob(ctx, desc.Digest.String(), desc.Size)
	if err != nil {
		return rec, err
	}
	defer body.Close()

	tmp, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return rec, err
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()
	diff := filepath.Join(tmp, "diff")
	if err := os.Mkdir(diff, 0o755); err != nil {
		return rec, err
	}

	blob := newVerifiedReader(body, desc.Size, desc.Digest.String())
	br := bufio.NewReaderSize(blob, 128<<10)
	// checkBlob reads the rest of the blob (the digest covers all of it);
	// blob judges its size and digest at its end.
	checkBlob := func() error {
		_, err := io.Copy(io.Discard, br)
		return err
	}
	// failed: when a limit was hit, that is the reason as the blob was
	// served, and its rest may be huge: stop reading. Anything else may be
	// a symptom of tampering: say "tampered" when the blob is.
	failed := func(err error) error {
		var le *limitError
		if !errors.As(err, &le) {
			if berr := checkBlob(); berr != nil {
				return berr
			}
		}
		return fmt.Errorf("unpack blob %s: %w", desc.Digest, err)
	}
	dr, err := decompress(br)
	if err != nil {
		return rec, failed(err)
	}
	defer dr.Close()
	tarStream := &hashReader{
		r: &capReader{r: dr, left: s.cfg.MaxLayerSize,
			err: limitErrorf("layer is more than %d bytes uncompressed, the limit (max_layer_size)", s.cfg.MaxLayerSize)},
		h: sha256.New(),
	}
	stats, err := unpackTar(ctx, diff, tarStream, unpackOptions{maxEntrySize: s.cfg.MaxEntrySize, maxInodes: s.cfg.MaxLayerInodes})
	if err != nil {
		return rec, failed(err)
	}
	if _, err := io.Copy(io.Discard, tarStream); err != nil { // tar padding, bounded by max_layer_size too
		return rec, failed(err)
	}
	if err := checkBlob(); err != nil {
		return rec, err
	}
	if got := tarStream.digest(); got != diffID {
		return rec, fmt.Errorf("blob %s: uncompressed digest %s, config says %s: %w", desc.Digest, got, diffID, errdefs.ErrUnavailable)
	}

	rec = layerRecord{DiffID: diffID, Short: newShort(), Stats: stats, Digest: desc.Digest.String(), MediaType: string(desc.MediaType), Created: time.Now().UTC()}
	if err := os.Rename(tmp, s.layerDir(diffID)); err != nil {
		return rec, err
	}
	if err := s.ensureLink(rec); err != nil {
		os.RemoveAll(s.layerDir(diffID))
		return rec, err
	}
	s.mu.Lock()
	err = s.st.Put(ctx, store.KindLayers, diffID, rec)
	if err == nil {
		s.layers[diffID] = rec
	}
	s.mu.Unlock()
	if err != nil {
		os.Remove(filepath.Join(s.linksDir(), rec.Short))
		os.RemoveAll(s.layerDir(diffID))
		return rec, err
	}
	logger.V(4).Info("Unpacked layer", "layer", diffID, "bytes", stats.Bytes, "duration", time.Since(start))
	return rec, nil
}
