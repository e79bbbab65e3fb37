package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/cri-runtime/cri-runtime/pkg/cri"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/network"
	"github.com/cri-runtime/cri-runtime/pkg/nri"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// configVersion is the version of the config file format this build reads.
const configVersion = 1

// Config is the whole config file. Each package owns its section.
type Config struct {
	Version  int                  `toml:"version"`
	CRI      cri.Config           `toml:"cri"`
	Runtime  runtime.Config       `toml:"runtime"`
	Image    image.Config         `toml:"image"`
	Registry image.RegistryConfig `toml:"registry"`
	Network  network.Config       `toml:"network"`
	NRI      nri.Config           `toml:"nri"`
}

func defaultConfig() Config {
	img := image.DefaultConfig()
	return Config{
		Version:  configVersion,
		CRI:      cri.DefaultConfig(),
		Runtime:  runtime.DefaultConfig(),
		Image:    img,
		Registry: img.Registry,
		Network:  network.DefaultConfig(),
		NRI:      nri.DefaultConfig(),
	}
}

// Validate checks every section.
func (c Config) Validate() error {
	if c.Version != configVersion {
		return fmt.Errorf("config version %d: this build reads version %d: %w", c.Version, configVersion, errdefs.ErrInvalidArgument)
	}
	if err := c.CRI.Validate(); err != nil {
		return fmt.Errorf("[cri]: %w", err)
	}
	if err := c.Runtime.Validate(); err != nil {
		return fmt.Errorf("[runtime]: %w", err)
	}
	img := c.Image
	img.Registry = c.Registry
	if err := img.Validate(); err != nil {
		return fmt.Errorf("[image]/[registry]: %w", err)
	}
	if err := c.Network.Validate(); err != nil {
		return fmt.Errorf("[network]: %w", err)
	}
	if err := c.NRI.Validate(); err != nil {
		return fmt.Errorf("[nri]: %w", err)
	}
	return nil
}

// loadConfig reads path over the defaults and refuses unknown keys. A
// missing file at the default path means "all defaults"; a missing file
// that was named explicitly is an error.
func loadConfig(path string, explicit bool) (Config, error) {
	cfg := defaultConfig()
	data, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err) && !explicit:
		return cfg, cfg.Validate()
	case err != nil:
		return cfg, fmt.Errorf("read config: %w", err)
	}
	// A file that sets a map (runtimes) replaces the default entries only
	// where it names them: decoding merges into the defaults.
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("parse config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return cfg, fmt.Errorf("config %s: unknown keys %s: %w", path, strings.Join(keys, ", "), errdefs.ErrInvalidArgument)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// encodeConfig prints a config in the file format.
func encodeConfig(cfg Config) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# cri-runtime configuration (/etc/cri-runtime/config.toml).\n")
	buf.WriteString("# Every key is optional; these are the defaults. Unknown keys are refused.\n\n")
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		return nil, err
	}
	buf.WriteString(mirrorExample)
	return buf.Bytes(), nil
}

// mirrorExample documents the registry tables, which are empty by default.
const mirrorExample = `
# Registry mirrors, one table per upstream host. Endpoints are tried in
# order, then the upstream host unless fallback = false; http:// is used only
# where an endpoint says so. A mirror keeps the repository path:
# registry.k8s.io/pause:3.10 -> 127.0.0.1:5000/pause:3.10.
#
# [registry.mirrors."registry.k8s.io"]
#   endpoints = ["http://127.0.0.1:5000"]
#   fallback = false
#
# Credentials per registry host:
#
# [registry.configs."registry.example.com"]
#   username = "me"
#   password = "secret"
`
