package image

import (
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/confval"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Config is the [image] section of the daemon's config file.
type Config struct {
	// MaxConcurrentDownloads bounds the layers one pull fetches (and
	// unpacks) at the same time.
	MaxConcurrentDownloads int `toml:"max_concurrent_downloads"`
	// MaxEntrySize is the largest file, in bytes, a layer may hold. A tar
	// header that declares more fails the pull before anything is written.
	MaxEntrySize int64 `toml:"max_entry_size"`
	// MaxLayerSize is the largest uncompressed size, in bytes, of one
	// layer: its tar stream, what the diffID hashes. The unpack stops at
	// the first byte past it (a zstd blob can expand ~32000:1).
	MaxLayerSize int64 `toml:"max_layer_size"`
	// MaxLayerInodes is the most files, directories, links, devices and
	// whiteouts one layer may create. The unpack stops at the first past it.
	MaxLayerInodes int64 `toml:"max_layer_inodes"`
	// PullProgressTimeout aborts a pull when a registry request has
	// waited that long for its response or for the next byte of its body.
	// Zero disables it.
	PullProgressTimeout Duration `toml:"pull_progress_timeout"`
	// Platform is the os/arch[/variant] picked from an image index.
	Platform string `toml:"platform"`
	// Registry is decoded by the root config from its own [registry]
	// section (so the file reads [registry.mirrors."docker.io"]) and set
	// here by the daemon; it is not part of [image].
	Registry RegistryConfig `toml:"-"`
}

// RegistryConfig is the [registry] section: mirrors and per-host settings.
type RegistryConfig struct {
	// Mirrors maps an upstream registry host ("docker.io",
	// "registry.k8s.io", "127.0.0.1:5000") to the endpoints that serve it.
	Mirrors map[string]Mirror `toml:"mirrors"`
	// Configs maps a registry host (upstream or mirror) to its credentials
	// and TLS settings.
	Configs map[string]RegistryHostConfig `toml:"configs"`
	// ConfigPath is a colon-separated list of registry hosts directories
	// in containerd's format (<dir>/<host>/hosts.toml, <dir>/_default;
	// hosts.go). A host's hosts.toml wins over an inline mirror of it.
	ConfigPath string `toml:"config_path"`
}

// Mirror lists the endpoints tried, in order, before the upstream host.
type Mirror struct {
	// Endpoints are "https://host[:port]" or "http://host[:port]"; plain
	// http is used for exactly the endpoints written with http://.
	Endpoints []string `toml:"endpoints"`
	// Fallback: when false, the upstream host is never contacted for this
	// registry. Unset means true.
	Fallback *bool `toml:"fallback"`
}

// RegistryHostConfig holds the credentials and TLS settings of one host.
// Credentials given with a pull request take precedence for the upstream
// host; these are used when the request carries none, and always for a
// mirror host that has an entry here.
type RegistryHostConfig struct {
	Username      string `toml:"username"`
	Password      string `toml:"password"`
	Auth          string `toml:"auth"`
	IdentityToken string `toml:"identity_token"`
	// InsecureSkipVerify turns off TLS certificate verification for this
	// host. It does not allow plain http; an http:// endpoint does that.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// Duration is a time.Duration written as "5m" in the config file.
type Duration = confval.Duration

// DefaultConfig returns the defaults used when the config file says nothing.
func DefaultConfig() Config {
	return Config{
		MaxConcurrentDownloads: 8,
		MaxEntrySize:           64 << 30,
		MaxLayerSize:           64 << 30,
		MaxLayerInodes:         1 << 20,
		PullProgressTimeout:    Duration(5 * time.Minute), // as containerd and CRI-O
		Platform:               "linux/" + runtime.GOARCH,
	}
}

// Validate checks c without touching the file system or the network.
// Errors are of class errdefs.ErrInvalidArgument and name the TOML key.
func (c Config) Validate() error {
	if c.MaxConcurrentDownloads < 1 {
		return fmt.Errorf("max_concurrent_downloads: must be at least 1, got %d: %w", c.MaxConcurrentDownloads, errdefs.ErrInvalidArgument)
	}
	if c.MaxEntrySize < 1 {
		return fmt.Errorf("max_entry_size: must be positive, got %d: %w", c.MaxEntrySize, errdefs.ErrInvalidArgument)
	}
	if c.MaxLayerSize < 1 {
		return fmt.Errorf("max_layer_size: must be positive, got %d: %w", c.MaxLayerSize, errdefs.ErrInvalidArgument)
	}
	if c.MaxLayerInodes < 1 {
		return fmt.Errorf("max_layer_inodes: must be positive, got %d: %w", c.MaxLayerInodes, errdefs.ErrInvalidArgument)
	}
	if c.PullProgressTimeout < 0 {
		return fmt.Errorf("pull_progress_timeout: must not be negative, got %s: %w", time.Duration(c.PullProgressTimeout), errdefs.ErrInvalidArgument)
	}
	if _, err := parsePlatform(c.Platform); err != nil {
		return fmt.Errorf("platform: %w", err)
	}
	return c.Registry.Validate()
}

// Validate checks the mirrors and host configs; keys are named as in the
// file ("registry.mirrors.\"docker.io\".endpoints[0]").
func (r RegistryConfig) Validate() error {
	for host, m := range r.Mirrors {
		if err := validateHost(host); err != nil {
			return fmt.Errorf("registry.mirrors.%q: %w", host, err)
		}
		for i, ep := range m.Endpoints {
			if _, err := parseEndpoint(ep); err != nil {
				return fmt.Errorf("registry.mirrors.%q.endpoints[%d]: %w", host, i, err)
			}
		}
		if len(m.Endpoints) == 0 && !m.fallback() {
			return fmt.Errorf("registry.mirrors.%q: no endpoints and fallback = false leaves nothing to pull from: %w", host, errdefs.ErrInvalidArgument)
		}
	}
	for host := range r.Configs {
		if err := validateHost(host); err != nil {
			return fmt.Errorf("registry.configs.%q: %w", host, err)
		}
	}
	if r.ConfigPath != "" {
		for _, dir := range filepath.SplitList(r.ConfigPath) {
			if !filepath.IsAbs(dir) {
				return fmt.Errorf("registry.config_path: %q is not an absolute path: %w", dir, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

func (m Mirror) fallback() bool { return m.Fallback == nil || *m.Fallback }

func validateHost(host string) error {
	if host == "" || strings.ContainsAny(host, "/ @") {
		return fmt.Errorf("%q is not a registry host[:port]: %w", host, errdefs.ErrInvalidArgument)
	}
	return nil
}

// endpoint is one place to pull from.
type endpoint struct {
	host     string // host[:port] as the registry API is addressed
	insecure bool   // plain http
	// via is the hosts.toml entry it comes from (its TLS, headers and API
	// root); nil for an inline mirror or the upstream host.
	via *hostEntry
}

func parseEndpoint(s string) (endpoint, error) {
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, fmt.Errorf("%q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return endpoint{}, fmt.Errorf("%q: scheme must be http or https: %w", s, errdefs.ErrInvalidArgument)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("%q: want scheme://host[:port]: %w", s, errdefs.ErrInvalidArgument)
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && p != "/v2" {
		return endpoint{}, fmt.Errorf("%q: a path other than /v2 is not supported: %w", s, errdefs.ErrInvalidArgument)
	}
	return endpoint{host: u.Host, insecure: u.Scheme == "http"}, nil
}

// platform is os/arch[/variant].
type platform struct{ os, arch, variant string }

func parsePlatform(s string) (platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, fmt.Errorf("%q is not os/arch[/variant]: %w", s, errdefs.ErrInvalidArgument)
	}
	p := platform{os: parts[0], arch: parts[1]}
	if len(parts) == 3 {
		p.variant = parts[2]
	}
	return p, nil
}
