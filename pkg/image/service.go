// Package image pulls images from OCI registries, keeps their layers
// unpacked for overlayfs, and prepares per-container overlay root file
// systems.
//
// It speaks images, not CRI: pkg/cri builds the CRI image service on top
// of it. It imports only pkg/store and pkg/errdefs of cri-runtime. See
// docs/image.md for the layout on disk, the pull pipeline and the GC rules.
package image

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// Service is the image service. Its methods are safe for concurrent use.
type Service struct {
	root      string
	st        *store.Store
	cfg       Config
	platform  platform
	transport http.RoundTripper // nil: the service's own

	secure, skipVerify http.RoundTripper
	// reg is the registry config in force (registry.go); SetRegistry swaps it.
	reg     atomic.Pointer[registryState]
	onBytes func(int64) // WithRegistryBytes
	// progressTimeout is pull_progress_timeout in force (SetPullProgressTimeout).
	progressTimeout atomic.Int64

	ctx    context.Context // ended by Close: cancels running pulls
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pulls      *flight[Image]
	layerPulls *flight[layerRecord]
	authKey    [32]byte // HMAC key for the credentials in pull flight keys

	// mu guards the caches below and orders every write of image, layer
	// and rootfs records with the layer GC. It is never held across
	// network I/O or an unpack.
	mu     sync.Mutex
	images map[string]*Image       // by ID
	layers map[string]layerRecord  // by diffID
	rootfs map[string]rootfsRecord // by container ID
	// imageMounts are read-only views of images (image volumes), by mount ID.
	imageMounts map[string]imageMountRecord
	leases      map[string]int // diffIDs a running pull depends on
}

// layerRecord is the store.KindLayers record of one unpacked layer, keyed
// by its diffID. It is written only after the layer's directory is
// complete and in place.
type layerRecord struct {
	DiffID string      `json:"diffID"`
	Short  string      `json:"short"` // name of its link in <root>/l
	Stats  unpackStats `json:"stats"`
	// Digest and MediaType of the blob it was unpacked from (informative:
	// another blob with the same uncompressed content is the same layer).
	Digest    string    `json:"digest"`
	MediaType string    `json:"mediaType"`
	Created   time.Time `json:"created"`
}

// Option configures New.
type Option func(*Service)

// WithTransport sends all registry traffic through rt instead of the
// service's own transport (tests: counting proxies, a dialer that refuses
// anything but loopback). The http:// policy and auth still apply on top.
func WithTransport(rt http.RoundTripper) Option { return func(s *Service) { s.transport = rt } }

// New opens the image service rooted at root (created if missing) over the
// metadata store st. It removes what an interrupted pull or removal left
// behind, drops records whose files are gone, and collects unused layers.
func New(root string, st *store.Store, cfg Config, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("image root %q is not absolute: %w", root, errdefs.ErrInvalidArgument)
	}
	p, _ := parsePlatform(cfg.Platform)
	s := &Service{
		root:     filepath.Clean(root),
		st:       st,
		cfg:      cfg,
		platform: p,
		images:   map[string]*Image{},
		layers:   map[string]layerRecord{},
		rootfs:   map[string]rootfsRecord{},
		leases:   map[string]int{},

		imageMounts: map[string]imageMountRecord{},
	}
	for _, o := range opts {
		o(s)
	}
	rand.Read(s.authKey[:])
	s.secure, s.skipVerify = newTransports()
	s.progressTimeout.Store(int64(cfg.PullProgressTimeout))
	if err := s.SetRegistry(cfg.Registry); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.pulls = newFlight[Image](s.ctx, &s.wg)
	s.layerPulls = newFlight[layerRecord](s.ctx, &s.wg)
	if err := s.recover(context.Background()); err != nil {
		s.cancel()
		return nil, err
	}
	return s, nil
}

// Close cancels running pulls and waits for them. The store stays open:
// it belongs to the caller.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Service) layersDir() string { return filepath.Join(s.root, "layers") }
func (s *Service) layerDir(diffID string) string {
	return filepath.Join(s.root, "layers", hexOf(diffID))
}
func (s *Service) linksDir() string      { return filepath.Join(s.root, "l") }
func (s *Service) containersDir() string { return filepath.Join(s.root, "containers") }
func (s *Service) tmpDir() string        { return filepath.Join(s.root, "tmp") }
func (s *Service) trashDir() string      { return filepath.Join(s.root, "trash") }

func hexOf(d string) string { return strings.TrimPrefix(d, "sha256:") }

// Get finds an image by ID ("sha256:<hex>" or the bare hex), by
// normalized name ("busybox" = "docker.io/library/busybox:latest"), by
// name@digest, or by a unique ID prefix of at least 4 hex digits.
func (s *Service) Get(ctx context.Context, ref string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, _, err := s.lookupLocked(ref)
	if err != nil {
		return Image{}, err
	}
	return img.clone(), nil
}

// List returns every image, ordered by ID.
func (s *Service) List(ctx context.Context) ([]Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Image, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, img.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

var (
	fullID   = regexp.MustCompile(`^(?:sha256:)?([a-f0-9]{64})$`)
	idPrefix = regexp.MustCompile(`^(?:sha256:)?([a-f0-9]{4,63})$`)
)

// lookupLocked resolves ref to an image and, when ref was a name, that
// name in its normalized form ("" for an ID). Caller holds s.mu.
func (s *Service) lookupLocked(ref string) (*Image, string, error) {
	if m := fullID.FindStringSubmatch(ref); m != nil {
		if img, ok := s.images["sha256:"+m[1]]; ok {
			return img, "", nil
		}
	}
	if r, err := ParseReference(ref); err == nil {
		name := r.tagged()
		if r.Digest != "" {
			name = r.digested(r.Digest)
		}
		for _, img := range s.images {
			if slices.Contains(img.RepoTags, name) || slices.Contains(img.RepoDigests, name) {
				return img, name, nil
			}
		}
	}
	if m := idPrefix.FindStringSubmatch(ref); m != nil {
		var found *Image
		for id, img := range s.images {
			if strings.HasPrefix(hexOf(id), m[1]) {
				if found != nil {
					return nil, "", fmt.Errorf("image ID prefix %q is ambiguous: %w", ref, errdefs.ErrInvalidArgument)
				}
				found = img
			}
		}
		if found != nil {
			return found, "", nil
		}
	}
	return nil, "", fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

// Remove removes a name or an image, as the CRI's RemoveImage means it:
//
//   - by tag (name:tag): that tag goes, and with the last tag of its
//     repository the name@digest a pull by tag added there; when it was
//     the image's last tag the image goes, unless a pull asked for it by
//     digest (PulledByDigest). Such a digest name records where the image
//     came from; it is not a reason to keep it (containerd removes the
//     image; in CRI-O digest names are not names);
//   - by digest (name@digest) or ID (or ID prefix): the image goes with
//     all its names.
//
// Layers that no image, no container rootfs and no image mount uses any
// more are deleted. An absent image is ErrNotFound.
func (s *Service) Remove(ctx context.Context, ref string) error {
	logger := klog.FromContext(ctx)
	s.mu.Lock()
	img, name, err := s.lookupLocked(ref)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	next := img.clone()
	byTag := name != "" && !strings.Contains(name, "@")
	if byTag {
		next.RepoTags = slices.DeleteFunc(next.RepoTags, func(n string) bool { return n == name })
		// The repository's last tag takes the digest name its pull added.
		repo := repoOf(name)
		if !slices.ContainsFunc(next.RepoTags, func(n string) bool { return repoOf(n) == repo }) {
			next.RepoDigests = slices.DeleteFunc(next.RepoDigests, func(n string) bool {
				return repoOf(n) == repo && !slices.Contains(next.PulledByDigest, n)
			})
		}
	}
	if !byTag || len(next.RepoTags)+len(next.PulledByDigest) == 0 {
		err = s.deleteImageLocked(ctx, img.ID)
	} else {
		err = s.putImageLocked(ctx, next)
	}
	var trash []string
	if err == nil {
		trash, err = s.collectLocked(ctx)
	}
	s.mu.Unlock()
	s.emptyTrash(trash)
	if err != nil {
		return fmt.Errorf("remove image %q: %w", ref, err)
	}
	logger.V(2).Info("Removed image", "image", ref, "imageID", img.ID)
	return nil
}

// repoOf is the repository of a normalized name:tag or name@digest.
func repoOf(name string) string {
	if r, _, ok := strings.Cut(name, "@"); ok {
		return r
	}
	return name[:strings.LastIndexByte(name, ':')]
}

// Pin marks the image ref resolves to as pinned (or not).
func (s *Service) Pin(ctx context.Context, ref string, pinned bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, _, err := s.lookupLocked(ref)
	if err != nil {
		return err
	}
	next := img.clone()
	next.Pinned = pinned
	return s.putImageLocked(ctx, next)
}

// putImageLocked persists img, then publishes it. Caller holds s.mu.
func (s *Service) putImageLocked(ctx context.Context, img Image) error {
	if err := s.st.Put(ctx, store.KindImages, img.ID, img); err != nil {
		return err
	}
	s.images[img.ID] = &img
	return nil
}

func (s *Service) deleteImageLocked(ctx context.Context, id string) error {
	if err := s.st.Delete(ctx, store.KindImages, id); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	delete(s.images, id)
	return nil
}

// FsInfo reports what the unpacked layers use, for ImageFsInfo: bytes of
// file content and inodes, summed from what each unpack counted (no
// directory walk), and the directory they live in.
func (s *Service) FsInfo(ctx context.Context) (usedBytes, inodesUsed uint64, mountpoint string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.layers {
		usedBytes += uint64(rec.Stats.Bytes)
		inodesUsed += uint64(rec.Stats.Inodes)
	}
	return usedBytes, inodesUsed, s.layersDir(), nil
}
