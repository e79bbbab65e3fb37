// Package network gives pod sandboxes their network: pinned network
// namespaces, CNI ADD/CHECK/DEL through libcni with a per-sandbox cache that
// makes teardown exact and idempotent, the default CNI config, and the
// generation of a sandbox's /etc/resolv.conf, /etc/hosts and /etc/hostname.
//
// It imports only pkg/errdefs of cri-runtime. See docs/network.md.
package network

import (
	"fmt"
	"path/filepath"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Config is the [network] section of the daemon's config file.
type Config struct {
	// ConfDir holds the CNI network configs; the first .conflist, .conf or
	// .json file in name order is the pod network.
	ConfDir string `toml:"conf_dir"`
	// BinDirs are searched, in order, for CNI plugin binaries.
	BinDirs []string `toml:"bin_dirs"`
	// CacheDir is libcni's cache: the config, args and result of every
	// ADD, per sandbox, so that DEL undoes exactly what ADD did even after
	// the config changed or the daemon restarted. It is on persistent disk
	// because host-local's reservations (/var/lib/cni/networks) are too:
	// after a reboot the cached DEL still releases them.
	CacheDir string `toml:"cache_dir"`
	// NetNSDir is where sandboxes' network namespaces are pinned. It is on
	// tmpfs: namespaces do not survive a reboot.
	NetNSDir string `toml:"netns_dir"`
}

// DefaultConfig returns the defaults used when the config file says nothing.
func DefaultConfig() Config {
	return Config{
		ConfDir:  "/etc/cni/net.d",
		BinDirs:  []string{"/usr/lib/cni", "/opt/cni/bin"},
		CacheDir: "/var/lib/cri-runtime/cni",
		NetNSDir: "/run/cri-runtime/netns",
	}
}

// Validate checks c without touching the file system. Errors are of class
// errdefs.ErrInvalidArgument and name the TOML key.
func (c Config) Validate() error {
	for _, d := range []struct{ key, path string }{
		{"conf_dir", c.ConfDir},
		{"cache_dir", c.CacheDir},
		{"netns_dir", c.NetNSDir},
	} {
		if err := validateDir(d.key, d.path); err != nil {
			return err
		}
	}
	if len(c.BinDirs) == 0 {
		return fmt.Errorf("bin_dirs: at least one directory is required: %w", errdefs.ErrInvalidArgument)
	}
	for i, d := range c.BinDirs {
		if err := validateDir(fmt.Sprintf("bin_dirs[%d]", i), d); err != nil {
			return err
		}
	}
	return nil
}

func validateDir(key, path string) error {
	switch {
	case path == "":
		return fmt.Errorf("%s: must not be empty: %w", key, errdefs.ErrInvalidArgument)
	case !filepath.IsAbs(path):
		return fmt.Errorf("%s: %q is not an absolute path: %w", key, path, errdefs.ErrInvalidArgument)
	case filepath.Clean(path) == "/":
		return fmt.Errorf("%s: must not be the root directory: %w", key, errdefs.ErrInvalidArgument)
	}
	return nil
}
