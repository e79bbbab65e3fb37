package image

import (
	"net"
	"net/http"
	"slices"
	"time"
)

// WithRegistryBytes has fn called with the size of every piece of a
// response body read from a registry (manifests, configs and layers), for
// the daemon's pull metrics. fn must be cheap and safe for concurrent use.
func WithRegistryBytes(fn func(n int64)) Option { return func(s *Service) { s.onBytes = fn } }

// registry is the registry config in force.
func (s *Service) registry() *registryState { return s.reg.Load() }

// SetRegistry replaces the registry config in force ([registry]: mirrors,
// credentials, config_path) with cfg, reading the hosts dirs it names and
// every certificate and key they name. On any error the config in force
// stays. Pulls already running keep the endpoints they started with.
func (s *Service) SetRegistry(cfg RegistryConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	st, err := newRegistryState(cfg, s.baseTransport())
	if err != nil {
		return err
	}
	if old := s.reg.Swap(st); old != nil {
		old.closeIdle() // running pulls keep their connections
	}
	return nil
}

// baseTransport is what a hosts.toml entry with its own TLS or dial
// settings starts from: the service's own transport, so that it keeps
// its timeouts and pooling.
func (s *Service) baseTransport() *http.Transport {
	if t, ok := s.secure.(*http.Transport); ok {
		return t
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSHandshakeTimeout = 10 * time.Second
	return t
}

// SetPullProgressTimeout replaces [image] pull_progress_timeout for pulls
// that start from now on (0: off). Running pulls keep theirs.
func (s *Service) SetPullProgressTimeout(d time.Duration) { s.progressTimeout.Store(int64(d)) }

// registryState is the registry config in force: [registry] and what its
// config_path holds, with a transport per host entry that needs its own.
// It is replaced whole on reload (SetRegistry), never changed.
type registryState struct {
	cfg   RegistryConfig
	hosts *hostsDirs
}

// newRegistryState loads cfg's hosts dirs and builds the transports of the
// entries with their own TLS or dial settings from base.
func newRegistryState(cfg RegistryConfig, base *http.Transport) (*registryState, error) {
	hosts, err := loadHostsDirs(cfg.ConfigPath)
	if err != nil {
		return nil, err
	}
	build := func(e *hostEntry) {
		if e.tls == nil && e.dialTimeout == 0 {
			return
		}
		tr := base.Clone()
		if e.tls != nil {
			tr.TLSClientConfig = e.tls.Clone()
		}
		if e.dialTimeout > 0 {
			tr.DialContext = (&net.Dialer{Timeout: e.dialTimeout, KeepAlive: 30 * time.Second}).DialContext
		}
		e.rt = tr
	}
	for _, f := range append(mapValues(hosts.files), hosts.def) {
		if f == nil {
			continue
		}
		for i := range f.hosts {
			build(&f.hosts[i])
		}
		build(&f.server)
	}
	return &registryState{cfg: cfg, hosts: hosts}, nil
}

// closeIdle closes the idle connections of the entries' own transports,
// once a reload has replaced them.
func (r *registryState) closeIdle() {
	for _, f := range append(mapValues(r.hosts.files), r.hosts.def) {
		if f == nil {
			continue
		}
		for _, e := range append(slices.Clone(f.hosts), f.server) {
			if t, ok := e.rt.(*http.Transport); ok {
				t.CloseIdleConnections()
			}
		}
	}
}

func mapValues(m map[string]*hostsFile) []*hostsFile {
	out := make([]*hostsFile, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	return out
}
