package metrics

import (
	"fmt"
	"net"
	"strconv"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Config is the [metrics] section of the daemon's config file.
type Config struct {
	// Address is the host:port /metrics is served on ("127.0.0.1:9090");
	// "" (the default) serves nothing and builds no metric at all.
	Address string `toml:"address"`
	// Pprof adds Go's /debug/pprof/ handlers on the same listener.
	Pprof bool `toml:"pprof"`
}

// DefaultConfig is metrics off.
func DefaultConfig() Config { return Config{} }

// Enabled reports whether metrics are served.
func (c Config) Enabled() bool { return c.Address != "" }

// Validate checks c without binding anything. Errors are of class
// errdefs.ErrInvalidArgument and name the key.
func (c Config) Validate() error {
	if c.Address == "" {
		if c.Pprof {
			return fmt.Errorf("pprof: needs an address to serve on (metrics.address is empty): %w", errdefs.ErrInvalidArgument)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(c.Address)
	if err != nil {
		return fmt.Errorf("address: %q is not host:port: %w", c.Address, errdefs.ErrInvalidArgument)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("address: %q: port must be a number from 0 to 65535: %w", c.Address, errdefs.ErrInvalidArgument)
	}
	return nil
}
