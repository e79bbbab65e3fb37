package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Image mounts (image volumes, KEP-4639): a read-only view of an image's
// root file system. With two or more layers it is an overlay with only
// lower directories, which overlayfs makes read-only by itself; a single
// layer is a read-only bind of its directory (overlayfs needs two lowers
// when it has no upper). Like a rootfs, a mount holds its layers until
// RemoveImageMount, even if the image is removed meanwhile.

// imageMountRecord is kept as <root>/imagemounts/<id>.json. The file is
// the record: there is nothing else on disk to get out of step with it.
type imageMountRecord struct {
	MountID string    `json:"mountID"`
	ImageID string    `json:"imageID"`
	DiffIDs []string  `json:"diffIDs"` // bottom first, as in the image
	Created time.Time `json:"created"`
}

func (s *Service) imageMountsDir() string { return filepath.Join(s.root, "imagemounts") }
func (s *Service) imageMountFile(id string) string {
	return filepath.Join(s.imageMountsDir(), id+".json")
}

// loadImageMounts reads the image mount records at New; a record that
// cannot be read (a crash while writing it leaves only a .tmp) is removed.
func (s *Service) loadImageMounts(ctx context.Context) error {
	entries, err := os.ReadDir(s.imageMountsDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(s.imageMountsDir(), e.Name())
		id, ok := strings.CutSuffix(e.Name(), ".json")
		var rec imageMountRecord
		if ok {
			raw, rerr := os.ReadFile(p)
			if rerr == nil {
				rerr = json.Unmarshal(raw, &rec)
			}
			ok = rerr == nil && rec.MountID == id
		}
		if !ok {
			klog.FromContext(ctx).Info("Removed incomplete image mount record", "path", p)
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			continue
		}
		s.imageMounts[id] = rec
	}
	return nil
}

// ImageMount records a read-only view of the image imageRef (an ID or any
// reference Get accepts) under mountID and returns the mounts that make
// it; the caller mounts them (Mount.Mount). Asking again for an existing
// mountID (after a daemon restart) returns the same mounts; asking for it
// over another image is ErrAlreadyExists. An absent image is ErrNotFound.
func (s *Service) ImageMount(ctx context.Context, mountID, imageRef string) ([]Mount, error) {
	if !containerIDRE.MatchString(mountID) {
		return nil, fmt.Errorf("image mount ID %q: %w", mountID, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.imageMounts[mountID]; ok {
		if img, _, err := s.lookupLocked(imageRef); err == nil && img.ID != rec.ImageID {
			return nil, fmt.Errorf("image mount %s exists over image %s: %w", mountID, rec.ImageID, errdefs.ErrAlreadyExists)
		}
		return s.viewMountsLocked(rec)
	}
	img, _, err := s.lookupLocked(imageRef)
	if err != nil {
		return nil, err
	}
	rec := imageMountRecord{MountID: mountID, ImageID: img.ID, DiffIDs: slices.Clone(img.DiffIDs), Created: time.Now().UTC()}
	mounts, err := s.viewMountsLocked(rec)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	tmp := s.imageMountFile(mountID) + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return nil, fmt.Errorf("record image mount %s: %w", mountID, err)
	}
	if err := os.Rename(tmp, s.imageMountFile(mountID)); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("record image mount %s: %w", mountID, err)
	}
	s.imageMounts[mountID] = rec
	klog.FromContext(ctx).V(2).Info("Prepared image mount", "mountID", mountID, "image", img.ID)
	return mounts, nil
}

// viewMountsLocked builds the read-only mounts of rec. Caller holds s.mu.
func (s *Service) viewMountsLocked(rec imageMountRecord) ([]Mount, error) {
	switch len(rec.DiffIDs) {
	case 0:
		return nil, fmt.Errorf("image %s has no layers: %w", rec.ImageID, errdefs.ErrFailedPrecondition)
	case 1:
		if _, ok := s.layers[rec.DiffIDs[0]]; !ok {
			return nil, fmt.Errorf("layer %s of image %s: %w", rec.DiffIDs[0], rec.ImageID, errdefs.ErrNotFound)
		}
		return []Mount{{Type: "bind", Source: filepath.Join(s.layerDir(rec.DiffIDs[0]), "diff"), Options: []string{"bind", "ro"}}}, nil
	}
	lowers, err := s.lowerDirsLocked(rec.ImageID, rec.DiffIDs)
	if err != nil {
		return nil, err
	}
	return overlayMount(lowers, "ro")
}

// ImageMounts lists the IDs of the recorded image mounts, sorted (for the
// caller's start-up sweep of mounts nothing owns any more).
func (s *Service) ImageMounts(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.imageMounts))
	for id := range s.imageMounts {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

// RemoveImageMount forgets the image mount mountID and releases its layers
// (deleted if nothing else uses them). The caller unmounts first.
// Removing an absent image mount succeeds.
func (s *Service) RemoveImageMount(ctx context.Context, mountID string) error {
	if !containerIDRE.MatchString(mountID) {
		return fmt.Errorf("image mount ID %q: %w", mountID, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	err := os.Remove(s.imageMountFile(mountID))
	if os.IsNotExist(err) {
		err = nil
	}
	var trash []string
	if err == nil {
		delete(s.imageMounts, mountID)
		trash, err = s.collectLocked(ctx)
	}
	s.mu.Unlock()
	s.emptyTrash(trash)
	if err != nil {
		return fmt.Errorf("remove image mount %s: %w", mountID, err)
	}
	klog.FromContext(ctx).V(2).Info("Removed image mount", "mountID", mountID)
	return nil
}
