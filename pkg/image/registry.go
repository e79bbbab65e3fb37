package image

import (
	"net/http"
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
