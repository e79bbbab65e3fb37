package image

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// recover brings the disk and the records back into agreement after a
// crash. Anything half-done is discarded; a later pull redoes it.
func (s *Service) recover(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	for _, d := range []string{s.tmpDir(), s.trashDir()} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("clean %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return err
	}
	// Layers hold what images ship (set-uid files too) and containers/
	// their writable layers: root's only, whatever an older daemon made
	// them. The kernel reaches them with the mounter's credentials, so
	// user-namespaced pods need nothing more.
	for _, d := range []string{s.layersDir(), s.linksDir(), s.containersDir(), s.imageMountsDir(), s.tmpDir(), s.trashDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}

	// Layers: a record without its directory is dropped; a directory
	// without a record (a crash between rename and record) is removed.
	err := s.st.List(ctx, store.KindLayers, func(key string, dec store.Decoder) error {
		var rec layerRecord
		if err := dec(&rec); err != nil {
			return err
		}
		s.layers[key] = rec
		return nil
	})
	if err != nil {
		return fmt.Errorf("load layers: %w", err)
	}
	for id, rec := range s.layers {
		if _, err := os.Stat(filepath.Join(s.layerDir(id), "diff")); err != nil {
			logger.Info("Dropped layer record without files", "layer", id)
			delete(s.layers, id)
			if err := s.st.Delete(ctx, store.KindLayers, id); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			continue
		}
		if err := s.ensureLink(rec); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(s.layersDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, ok := s.layers["sha256:"+e.Name()]; !ok {
			if err := os.RemoveAll(filepath.Join(s.layersDir(), e.Name())); err != nil {
				return err
			}
		}
	}
	shorts := map[string]bool{}
	for _, rec := range s.layers {
		shorts[rec.Short] = true
	}
	links, err := os.ReadDir(s.linksDir())
	if err != nil {
		return err
	}
	for _, e := range links {
		if !shorts[e.Name()] {
			os.Remove(filepath.Join(s.linksDir(), e.Name()))
		}
	}

	// Images: one whose layers are not all present cannot be used; drop it
	// so that the next pull fetches it again.
	err = s.st.List(ctx, store.KindImages, func(key string, dec store.Decoder) error {
		img := new(Image)
		if err := dec(img); err != nil {
			return err
		}
		s.images[key] = img
		return nil
	})
	if err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	for id, img := range s.images {
		for _, d := range img.DiffIDs {
			if _, ok := s.layers[d]; !ok {
				logger.Info("Dropped image with missing layers", "image", id, "layer", d)
				delete(s.images, id)
				if err := s.st.Delete(ctx, store.KindImages, id); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
				break
			}
		}
	}

	if err := s.loadRootfs(ctx); err != nil {
		return err
	}
	if err := s.loadImageMounts(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	trash, err := s.collectLocked(ctx)
	s.mu.Unlock()
	s.emptyTrash(trash)
	return err
}

func (s *Service) ensureLink(rec layerRecord) error {
	link := filepath.Join(s.linksDir(), rec.Short)
	target := filepath.Join("..", "layers", hexOf(rec.DiffID), "diff")
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	os.Remove(link)
	return os.Symlink(target, link)
}

// newShort returns a fresh link name: 10 base32 characters (50 random
// bits) keep each lowerdir entry short, so ~100 layers fit the one page
// the kernel accepts for mount options even under a long root.
func newShort() string {
	var b [7]byte
	rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:10]
}
