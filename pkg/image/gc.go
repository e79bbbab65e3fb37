package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// collectLocked deletes the records of layers that no image, no container
// rootfs, no image mount and no running pull uses, and moves their directories to the
// trash; the caller empties the trash after releasing s.mu.
func (s *Service) collectLocked(ctx context.Context) ([]string, error) {
	used := map[string]bool{}
	for _, img := range s.images {
		for _, d := range img.DiffIDs {
			used[d] = true
		}
	}
	for _, rec := range s.rootfs {
		for _, d := range rec.DiffIDs {
			used[d] = true
		}
	}
	for _, rec := range s.imageMounts {
		for _, d := range rec.DiffIDs {
			used[d] = true
		}
	}
	for d := range s.leases {
		used[d] = true
	}
	var trash []string
	var errs []error
	for id, rec := range s.layers {
		if used[id] {
			continue
		}
		if err := s.st.Delete(ctx, store.KindLayers, id); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		delete(s.layers, id)
		os.Remove(filepath.Join(s.linksDir(), rec.Short))
		t := filepath.Join(s.trashDir(), hexOf(id)+"-"+newShort())
		if err := os.Rename(s.layerDir(id), t); err != nil {
			errs = append(errs, err)
			continue
		}
		trash = append(trash, t)
		klog.FromContext(ctx).V(4).Info("Collected unused layer", "layer", id)
	}
	return trash, errors.Join(errs...)
}

func (s *Service) emptyTrash(paths []string) {
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			// New empties the trash anyway.
			klog.Background().V(4).Info("Could not remove layer files", "path", p, "err", err)
		}
	}
}

func (s *Service) lease(ids []string) {
	s.mu.Lock()
	for _, d := range ids {
		s.leases[d]++
	}
	s.mu.Unlock()
}

func (s *Service) release(ids []string) {
	s.mu.Lock()
	for _, d := range ids {
		if s.leases[d]--; s.leases[d] <= 0 {
			delete(s.leases, d)
		}
	}
	s.mu.Unlock()
}
