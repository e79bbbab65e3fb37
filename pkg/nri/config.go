package nri

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/confval"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Duration is a time.Duration written as "10s" in the config file.
type Duration = confval.Duration

// Config is the [nri] section of the config file.
type Config struct {
	// Enable turns NRI on: the daemon listens for plugins on SocketPath
	// and starts the pre-installed ones from PluginPath.
	Enable bool `toml:"enable"`
	// SocketPath is where external plugins connect.
	SocketPath string `toml:"socket_path"`
	// PluginPath holds pre-installed plugins (NN-name executables) that
	// the daemon starts itself.
	PluginPath string `toml:"plugin_path"`
	// PluginConfigPath holds the drop-in configs of pre-installed plugins.
	PluginConfigPath string `toml:"plugin_config_path"`
	// PluginRegistrationTimeout bounds a plugin's registration.
	PluginRegistrationTimeout Duration `toml:"plugin_registration_timeout"`
	// PluginRequestTimeout bounds each request to a plugin, the
	// Synchronize on connect included.
	PluginRequestTimeout Duration `toml:"plugin_request_timeout"`
}

// DefaultConfig is the [nri] section when the file says nothing: off, with
// NRI's own default paths and timeouts.
func DefaultConfig() Config {
	return Config{
		Enable:                    false,
		SocketPath:                "/var/run/nri/nri.sock",
		PluginPath:                "/opt/nri/plugins",
		PluginConfigPath:          "/etc/nri/conf.d",
		PluginRegistrationTimeout: Duration(5 * time.Second),
		PluginRequestTimeout:      Duration(2 * time.Second),
	}
}

// Validate checks the section without touching the machine.
func (c Config) Validate() error {
	for _, p := range []struct{ key, v string }{
		{"socket_path", c.SocketPath}, {"plugin_path", c.PluginPath}, {"plugin_config_path", c.PluginConfigPath},
	} {
		if p.v != "" && !filepath.IsAbs(p.v) {
			return fmt.Errorf("%s %q must be absolute: %w", p.key, p.v, errdefs.ErrInvalidArgument)
		}
	}
	if c.Enable && c.SocketPath == "" {
		return fmt.Errorf("socket_path is empty: %w", errdefs.ErrInvalidArgument)
	}
	if c.PluginRegistrationTimeout <= 0 || c.PluginRequestTimeout <= 0 {
		return fmt.Errorf("plugin_registration_timeout and plugin_request_timeout must be positive: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}
