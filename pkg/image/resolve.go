package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// remoteImage is what resolving a reference on one endpoint gives.
type remoteImage struct {
	// blobTransport authenticates blob GETs once per pull; the layers are
	// fetched with it directly rather than through remote.Layer, whose
	// reader hashes the blob a second time.
	blobTransport func() (http.RoundTripper, error)
	repo          name.Repository
	topDigest     string // what the reference resolved to (maybe an index)
	img           v1.Image
	manifest      *v1.Manifest
	rawSize       int64
	configRaw     []byte
	configFile    *v1.ConfigFile
}

func mustDigest(img v1.Image) string {
	d, err := img.Digest()
	if err != nil {
		return ""
	}
	return d.String()
}

func (s *Service) resolve(ctx context.Context, ep endpoint, r Reference, auth *Auth) (*remoteImage, error) {
	var nopts []name.Option
	if ep.insecure {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(ep.host+"/"+r.Path, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	var nref name.Reference = repo.Tag(r.Tag)
	if r.Digest != "" {
		nref = repo.Digest(r.Digest)
	}
	puller, err := remote.NewPuller(
		remote.WithContext(ctx),
		remote.WithTransport(s.roundTripper(ep)),
		remote.WithAuth(s.authenticator(ep.host, r.Domain, auth)),
		remote.WithPlatform(v1.Platform{OS: s.platform.os, Architecture: s.platform.arch, Variant: s.platform.variant}),
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 3}),
	)
	if err != nil {
		return nil, err
	}
	desc, err := puller.Get(ctx, nref)
	if err != nil {
		return nil, err
	}
	switch desc.MediaType {
	case types.OCIImageIndex, types.DockerManifestList, types.OCIManifestSchema1, types.DockerManifestSchema2:
	default:
		return nil, fmt.Errorf("manifest media type %q is not supported: %w", desc.MediaType, errdefs.ErrNotImplemented)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	// Bound what the manifest makes us fetch and start before any of it.
	if n := len(m.Layers); n > maxLayers {
		return nil, limitErrorf("image has %d layers, the limit is %d", n, maxLayers)
	}
	// A compressed blob is not larger than its content, but for a few
	// bytes per block of incompressible data: a layer blob over
	// max_layer_size (and 1/64 of slack) cannot hold a layer within it.
	// Refused here, its bytes are not even downloaded.
	maxBlob := s.cfg.MaxLayerSize
	if maxBlob <= math.MaxInt64-maxBlob/64 {
		maxBlob += maxBlob / 64
	}
	for _, l := range m.Layers {
		if l.Size > maxBlob {
			return nil, limitErrorf("layer blob %s is %d bytes, more than a layer within max_layer_size (%d) can take", l.Digest, l.Size, s.cfg.MaxLayerSize)
		}
	}
	if m.Config.Size < 0 {
		return nil, fmt.Errorf("config blob %s: negative size: %w", m.Config.Digest, errdefs.ErrFailedPrecondition)
	}
	if m.Config.Size > maxConfigSize {
		return nil, limitErrorf("config blob %s is %d bytes, the limit is %d (4 MiB)", m.Config.Digest, m.Config.Size, maxConfigSize)
	}
	rt, au := s.roundTripper(ep), s.authenticator(ep.host, r.Domain, auth)
	ri := &remoteImage{
		blobTransport: sync.OnceValues(func() (http.RoundTripper, error) {
			return transport.NewWithContext(ctx, repo.Registry, au, rt, []string{repo.Scope(transport.PullScope)})
		}),
		repo: repo, topDigest: desc.Digest.String(), img: img, manifest: m, rawSize: int64(len(rawManifest)),
	}
	// Fetched here rather than by img.RawConfigFile, which would read
	// whatever size the manifest claims. The image ID rests on its digest.
	if ri.configRaw, err = ri.readConfig(ctx, m.Config); err != nil {
		return nil, err
	}
	if ri.configFile, err = v1.ParseConfigFile(bytes.NewReader(ri.configRaw)); err != nil {
		return nil, fmt.Errorf("parse image config: %v: %w", err, errdefs.ErrFailedPrecondition)
	}
	return ri, nil
}

// readConfig returns the config blob d, verified against its size and
// digest; its size is already bounded.
func (ri *remoteImage) readConfig(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	if d.Data != nil { // embedded in the manifest (OCI descriptor "data")
		if int64(len(d.Data)) != d.Size || sha256Digest(d.Data) != d.Digest.String() {
			return nil, fmt.Errorf("config blob %s: embedded data does not match its descriptor: %w", d.Digest, errdefs.ErrUnavailable)
		}
		return d.Data, nil
	}
	body, err := ri.openBlob(ctx, d.Digest.String(), d.Size)
	if err != nil {
		return nil, fmt.Errorf("config blob %s: %w", d.Digest, err)
	}
	defer body.Close()
	b, err := io.ReadAll(newVerifiedReader(body, d.Size, d.Digest.String()))
	if err != nil {
		return nil, classify(err)
	}
	return b, nil
}

// classify gives a registry error its class: 404 → NotFound, 401/403 →
// FailedPrecondition (credentials), anything else Unavailable.
func classify(err error) error {
	if err == nil || errdefs.ClassName(err) != "" {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
		}
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
}

// openBlob starts the GET of a blob of the given size; the caller
// verifies what it reads (newVerifiedReader). A Content-Length other than
// size fails before any of the body is read.
func (ri *remoteImage) openBlob(ctx context.Context, digest string, size int64) (io.ReadCloser, error) {
	rt, err := ri.blobTransport()
	if err != nil {
		return nil, classify(err)
	}
	u := url.URL{Scheme: ri.repo.Scheme(), Host: ri.repo.RegistryStr(), Path: "/v2/" + ri.repo.RepositoryStr() + "/blobs/" + digest}
	req, err := http.NewRequestWithContext(withBlobRequest(ctx), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, classify(err)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, classify(err)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != size {
		resp.Body.Close()
		return nil, fmt.Errorf("blob %s: Content-Length %d, its descriptor says %d bytes: %w", digest, resp.ContentLength, size, errdefs.ErrUnavailable)
	}
	return resp.Body, nil
}
