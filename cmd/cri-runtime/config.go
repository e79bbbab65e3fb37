package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/cri-runtime/cri-runtime/pkg/cri"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/metrics"
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
	Metrics  metrics.Config       `toml:"metrics"`
	Log      LogConfig            `toml:"log"`
}

// LogConfig is the [log] section, the daemon's own.
type LogConfig struct {
	// Verbosity is klog's verbosity (-v): 2 logs one line per lifecycle
	// transition, 4 expected-but-notable events, 6 every request. The -v
	// flag, when given, wins over it at start and on reload.
	Verbosity int `toml:"verbosity"`
}

// maxVerbosity is the highest verbosity anything logs at.
const maxVerbosity = 10

// Validate checks the [log] section.
func (c LogConfig) Validate() error {
	if c.Verbosity < 0 || c.Verbosity > maxVerbosity {
		return fmt.Errorf("verbosity: must be from 0 to %d, got %d: %w", maxVerbosity, c.Verbosity, errdefs.ErrInvalidArgument)
	}
	return nil
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
		Metrics:  metrics.DefaultConfig(),
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
	if err := c.Metrics.Validate(); err != nil {
		return fmt.Errorf("[metrics]: %w", err)
	}
	if err := c.Log.Validate(); err != nil {
		return fmt.Errorf("[log]: %w", err)
	}
	return nil
}

// configSource is where the config comes from: the main file, then the
// *.toml files of the drop-in dir in lexical order. A missing main file or
// dir at its default path means none; one named on the command line must
// exist.
type configSource struct {
	path, dir                 string
	pathExplicit, dirExplicit bool
}

// files lists the files that make up the config, main file first.
func (src configSource) files() ([]string, error) {
	var files []string
	switch _, err := os.Stat(src.path); {
	case err == nil:
		files = append(files, src.path)
	case errors.Is(err, os.ErrNotExist) && !src.pathExplicit:
	default:
		return nil, fmt.Errorf("read config: %w", err)
	}
	if src.dir == "" {
		return files, nil
	}
	ents, err := os.ReadDir(src.dir)
	switch {
	case errors.Is(err, os.ErrNotExist) && !src.dirExplicit:
		return files, nil
	case err != nil:
		return nil, fmt.Errorf("read config dir: %w", err)
	}
	for _, e := range ents { // ReadDir sorts by name
		if strings.HasSuffix(e.Name(), ".toml") && !e.IsDir() {
			files = append(files, filepath.Join(src.dir, e.Name()))
		}
	}
	return files, nil
}

// loadConfig reads the main file and then each drop-in over the defaults,
// refusing unknown keys in any of them, and validates the result. A file
// that sets a table entry of a map (a runtime handler, a mirror) replaces
// that entry whole; other keys are merged one by one. Errors name the file
// and the key. It returns the files it read.
func loadConfig(src configSource) (Config, []string, error) {
	files, err := src.files()
	if err != nil {
		return Config{}, nil, err
	}
	cfg := defaultConfig()
	for _, f := range files {
		if err := decodeFile(f, &cfg); err != nil {
			return cfg, files, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, files, fmt.Errorf("config %s: %w", blame(files), err)
	}
	return cfg, files, nil
}

// decodeFile decodes one file over cfg, strictly.
func decodeFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		return fmt.Errorf("parse config %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return fmt.Errorf("config %s: unknown keys %s: %w", path, strings.Join(keys, ", "), errdefs.ErrInvalidArgument)
	}
	return nil
}

// blame names the file that made the config invalid: the one after the
// last point at which the files read so far validated (a value may be
// valid only with a later file's, so earlier failures are not blamed).
func blame(files []string) string {
	if len(files) == 0 {
		return "(defaults)"
	}
	cfg := defaultConfig()
	lastValid := -1
	for i, f := range files {
		if decodeFile(f, &cfg) != nil {
			break
		}
		if cfg.Validate() == nil {
			lastValid = i
		}
	}
	if lastValid+1 < len(files) {
		return files[lastValid+1]
	}
	return strings.Join(files, " + ")
}

// encodeConfig prints a config in the file format.
func encodeConfig(cfg Config) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# cri-runtime configuration (/etc/cri-runtime/config.toml).\n")
	buf.WriteString("# Every key is optional; these are the defaults. Unknown keys are refused.\n")
	buf.WriteString("# Drop-ins in /etc/cri-runtime/config.d/*.toml apply over this file in lexical order.\n\n")
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		return nil, err
	}
	buf.WriteString(mirrorExample)
	return buf.Bytes(), nil
}

// mirrorExample documents the registry tables, which are empty by default.
const mirrorExample = `
# [registry] config_path: registry hosts dirs in containerd's format, a
# colon-separated list (e.g. "/etc/cri-runtime/certs.d:/etc/containerd/certs.d"):
# <dir>/<host>/hosts.toml, <dir>/_default/hosts.toml. A host's hosts.toml
# wins over its inline mirror below. Reread on SIGHUP (docs/config.md).
#
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
