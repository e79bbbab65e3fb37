package runtime

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Config is the [runtime] section of the config file.
type Config struct {
	// ShimBinary is the shim to start for each task: a path, or empty for
	// cri-runtime-shim next to the daemon's binary, then on PATH.
	ShimBinary string `toml:"shim_binary"`
	// ShimDebug makes shims log at debug level into their bundle's shim.log.
	ShimDebug bool `toml:"shim_debug"`
}

// DefaultConfig is the [runtime] section that applies when the file says
// nothing.
func DefaultConfig() Config { return Config{} }

// Validate checks the section without touching the machine.
func (c Config) Validate() error {
	if c.ShimBinary != "" && strings.ContainsRune(c.ShimBinary, '/') && !filepath.IsAbs(c.ShimBinary) {
		return fmt.Errorf("shim_binary %q: a path must be absolute: %w", c.ShimBinary, errdefs.ErrInvalidArgument)
	}
	return nil
}
