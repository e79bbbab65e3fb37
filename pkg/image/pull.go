package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// Auth is the credentials of one pull (the CRI AuthConfig). It is never
// logged.
type Auth struct {
	Username      string
	Password      string
	Auth          string // base64 "username:password"
	IdentityToken string
	RegistryToken string
	// ServerAddress, when set, is the registry these credentials are for;
	// they are then not sent to mirrors of another name.
	ServerAddress string
}

func (a *Auth) empty() bool {
	return a == nil || (a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "")
}

func newTransports() (secure, skipVerify http.RoundTripper) {
	base := func(skip bool) *http.Transport {
		return &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			TLSClientConfig:       &tls.Config{InsecureSkipVerify: skip, MinVersion: tls.VersionTLS12},
		}
	}
	return base(false), base(true)
}

// schemePolicy enforces "plain http only where the config says http://".
// go-containerregistry addresses loopback and RFC 1918 hosts over http on
// its own; a request to such a host that the config did not name with
// http:// is sent over https instead.
type schemePolicy struct {
	next      http.RoundTripper
	allowHTTP map[string]bool
}

func (p schemePolicy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !p.allowHTTP[req.URL.Host] {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	return p.next.RoundTrip(req)
}

// authenticator picks the credentials for host when pulling from domain:
// a config entry of a mirror host wins for that mirror; the request's
// credentials go to the upstream host, and to mirrors when they are not
// bound to a server address; the upstream's config entry is last.
func (s *Service) authenticator(host, domain string, a *Auth) authn.Authenticator {
	if host != domain && s.registry().isServer(host, domain) {
		host = domain // a hosts.toml's server is the upstream under another name
	}
	fromCfg := func(h string) (authn.Authenticator, bool) {
		c, ok := s.registry().cfg.Configs[h]
		if !ok || (c.Username == "" && c.Password == "" && c.Auth == "" && c.IdentityToken == "") {
			return nil, false
		}
		return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password, Auth: c.Auth, IdentityToken: c.IdentityToken}), true
	}
	if host != domain {
		if au, ok := fromCfg(host); ok {
			return au
		}
	}
	if !a.empty() && (host == domain || a.ServerAddress == "") {
		return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
	}
	if host == domain {
		if au, ok := fromCfg(domain); ok {
			return au
		}
	}
	return authn.Anonymous
}

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
