package image

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Pull fetches ref (normalized as ParseReference does) for the configured
// platform and stores it, unless it is already complete; either way the
// reference becomes a name of the resulting image (a tag moves from the
// image that had it). Concurrent pulls of the same reference with the
// same credentials share one download, and layers are shared across
// pulls by diffID.
func (s *Service) Pull(ctx context.Context, ref string, auth *Auth) (Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	logger := klog.FromContext(ctx).WithValues("image", r.String())
	ctx = klog.NewContext(ctx, logger)
	start := time.Now()
	img, err := s.pulls.do(ctx, s.flightKey(r, auth), func(ctx context.Context) (Image, error) { return s.pull(ctx, r, auth) })
	if err != nil {
		return Image{}, err
	}
	logger.V(2).Info("Pulled image", "imageID", img.ID, "duration", time.Since(start))
	return img.clone(), nil
}

// flightKey is what concurrent pulls share a download by: the reference
// and the credentials. A caller without the credentials of a running pull
// must not join it, or it would get a private image it cannot read (the
// registry is asked for every pull; only a joined flight skips it). The
// credentials enter as an HMAC under a key of this process, so the key
// neither holds nor, if logged, lets anyone test guesses of the secret.
func (s *Service) flightKey(r Reference, a *Auth) string {
	if a.empty() {
		return r.String()
	}
	m := hmac.New(sha256.New, s.authKey[:])
	for _, f := range []string{a.Username, a.Password, a.Auth, a.IdentityToken, a.RegistryToken, a.ServerAddress} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	return r.String() + " auth:" + hex.EncodeToString(m.Sum(nil))
}

func (s *Service) pull(ctx context.Context, r Reference, auth *Auth) (Image, error) {
	logger := klog.FromContext(ctx)
	var ri *remoteImage
	var errs []error
	for _, ep := range s.endpoints(r) {
		var err error
		ri, err = s.resolve(ctx, ep, r, auth)
		if err == nil {
			break
		}
		if errdefs.IsContext(err) {
			return Image{}, err
		}
		logger.V(4).Info("Endpoint could not serve the image", "endpoint", ep.host, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", ep.host, err))
	}
	if ri == nil {
		return Image{}, fmt.Errorf("pull %s: %w", r, classify(errors.Join(errs...)))
	}
	cf := ri.configFile
	layers := ri.manifest.Layers
	if len(cf.RootFS.DiffIDs) != len(layers) {
		return Image{}, fmt.Errorf("pull %s: config lists %d layers, manifest %d: %w", r, len(cf.RootFS.DiffIDs), len(layers), errdefs.ErrFailedPrecondition)
	}
	diffIDs := make([]string, len(layers))
	for i, d := range cf.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}

	// Hold the layers against the GC until the image record names them.
	s.lease(diffIDs)
	defer s.release(diffIDs)

	if err := s.fetchLayers(ctx, ri, diffIDs); err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", r, err)
	}
	size := ri.rawSize + ri.manifest.Config.Size
	for _, l := range layers {
		size += l.Size
	}
	img := Image{
		ID:             ri.manifest.Config.Digest.String(),
		Size:           size,
		Config:         imageConfigOf(cf),
		RawConfig:      ri.configRaw,
		DiffIDs:        diffIDs,
		ChainIDs:       chainIDs(diffIDs),
		Created:        cf.Created.Time,
		PulledAt:       time.Now().UTC(),
		ManifestDigest: mustDigest(ri.img),
	}
	if t := r.tagged(); t != "" {
		img.RepoTags = []string{t}
	}
	img.RepoDigests = []string{r.digested(ri.topDigest)}
	if r.Digest != "" {
		img.PulledByDigest = slices.Clone(img.RepoDigests)
	}
	return s.commit(ctx, img)
}

// commit records img: its names are added to the image of the same ID (or
// it is created), and taken from any other image that had them; an image
// left with no name is removed.
func (s *Service) commit(ctx context.Context, img Image) (Image, error) {
	s.mu.Lock()
	var trash []string
	err := func() error {
		if old, ok := s.images[img.ID]; ok {
			next := old.clone()
			next.RepoTags = union(next.RepoTags, img.RepoTags)
			next.RepoDigests = union(next.RepoDigests, img.RepoDigests)
			next.PulledByDigest = union(next.PulledByDigest, img.PulledByDigest)
			img = next
		}
		if err := s.putImageLocked(ctx, img); err != nil {
			return err
		}
		collect := false
		for id, other := range s.images {
			if id == img.ID {
				continue
			}
			next := other.clone()
			taken := func(n string) bool { return slices.Contains(img.RepoTags, n) || slices.Contains(img.RepoDigests, n) }
			next.RepoTags = slices.DeleteFunc(next.RepoTags, taken)
			next.RepoDigests = slices.DeleteFunc(next.RepoDigests, taken)
			next.PulledByDigest = slices.DeleteFunc(next.PulledByDigest, taken)
			if next.names() == other.names() {
				continue
			}
			var err error
			if next.names() == 0 {
				err, collect = s.deleteImageLocked(ctx, id), true
			} else {
				err = s.putImageLocked(ctx, next)
			}
			if err != nil {
				return err
			}
		}
		if collect {
			var err error
			trash, err = s.collectLocked(ctx)
			return err
		}
		return nil
	}()
	out := img.clone()
	s.mu.Unlock()
	s.emptyTrash(trash)
	return out, err
}

func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// chainIDs: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func chainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = sha256Digest([]byte(out[i-1] + " " + d))
	}
	return out
}

func imageConfigOf(cf *v1.ConfigFile) ImageConfig {
	c := cf.Config
	ic := ImageConfig{
		User:       c.User,
		Env:        c.Env,
		Entrypoint: c.Entrypoint,
		Cmd:        c.Cmd,
		WorkingDir: c.WorkingDir,
		StopSignal: c.StopSignal,
		Labels:     c.Labels,
	}
	for v := range c.Volumes {
		ic.Volumes = append(ic.Volumes, v)
	}
	sort.Strings(ic.Volumes)
	for p := range c.ExposedPorts {
		ic.ExposedPorts = append(ic.ExposedPorts, p)
	}
	sort.Strings(ic.ExposedPorts)
	return ic
}
