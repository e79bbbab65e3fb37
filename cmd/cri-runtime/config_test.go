package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/cri"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

func TestDefaultConfigRoundTrips(t *testing.T) {
	out, err := encodeConfig(defaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadConfig(configSource{path: path, pathExplicit: true})
	if err != nil {
		t.Fatalf("the printed default config does not load: %v\n%s", err, out)
	}
	again, err := encodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(out) {
		t.Fatalf("default config changed across a round trip:\n%s\n---\n%s", out, again)
	}
	for _, want := range []string{"version = 1", "[cri.runtimes.runc]", "[network]", `[registry.mirrors."registry.k8s.io"]`,
		"[metrics]\n  address = \"\"\n  pprof = false", "[log]\n  verbosity = 0", `config_path = ""`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("config default lacks %q", want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		file     string
		wantErr  error
		wantKeys []string
		check    func(t *testing.T, c Config)
	}{
		{name: "empty file is the defaults", file: "", check: func(t *testing.T, c Config) {
			if c.CRI.DefaultRuntimeHandler != "runc" || c.Version != 1 {
				t.Fatalf("defaults not applied: %+v", c.CRI)
			}
		}},
		{name: "mirrors", file: "version = 1\n[registry.mirrors.\"docker.io\"]\nendpoints = [\"http://127.0.0.1:5000\"]\nfallback = false\n", check: func(t *testing.T, c Config) {
			m, ok := c.Registry.Mirrors["docker.io"]
			if !ok || len(m.Endpoints) != 1 || m.Fallback == nil || *m.Fallback {
				t.Fatalf("mirror not decoded: %+v", c.Registry.Mirrors)
			}
		}},
		{name: "extra handler keeps the defaults", file: "[cri.runtimes.kata]\nbinary_path = \"/usr/bin/kata\"\n", check: func(t *testing.T, c Config) {
			if _, ok := c.CRI.Runtimes["runc"]; !ok {
				t.Fatal("runc handler lost")
			}
			if c.CRI.Runtimes["kata"].BinaryPath != "/usr/bin/kata" {
				t.Fatal("kata handler not decoded")
			}
		}},
		{name: "unknown key refused", file: "[cri]\nstreaming_adress = \"127.0.0.1\"\n", wantErr: errdefs.ErrInvalidArgument, wantKeys: []string{"cri.streaming_adress"}},
		{name: "unknown section refused", file: "[cri.nonsense]\nx = 1\n", wantErr: errdefs.ErrInvalidArgument},
		{name: "wrong version refused", file: "version = 2\n", wantErr: errdefs.ErrInvalidArgument},
		{name: "default handler must exist", file: "[cri]\ndefault_runtime_handler = \"nope\"\n", wantErr: errdefs.ErrInvalidArgument},
		{name: "drain timeout", file: "[cri]\ndrain_exec_sync_io_timeout = \"250ms\"\n", check: func(t *testing.T, c Config) {
			if time.Duration(c.CRI.DrainExecSyncIOTimeout) != 250*time.Millisecond {
				t.Fatalf("drain_exec_sync_io_timeout decoded as %v", time.Duration(c.CRI.DrainExecSyncIOTimeout))
			}
		}},
		{name: "zero drain timeout refused", file: "[cri]\ndrain_exec_sync_io_timeout = \"0s\"\n", wantErr: errdefs.ErrInvalidArgument, wantKeys: []string{"drain_exec_sync_io_timeout"}},
		{name: "relative shim path refused", file: "[runtime]\nshim_binary = \"bin/shim\"\n", wantErr: errdefs.ErrInvalidArgument},
		{name: "metrics", file: "[metrics]\naddress = \"127.0.0.1:9090\"\npprof = true\n", check: func(t *testing.T, c Config) {
			if c.Metrics.Address != "127.0.0.1:9090" || !c.Metrics.Pprof {
				t.Fatalf("metrics not decoded: %+v", c.Metrics)
			}
		}},
		{name: "bad metrics address", file: "[metrics]\naddress = \"9090\"\n", wantErr: errdefs.ErrInvalidArgument, wantKeys: []string{"[metrics]", "address"}},
		{name: "verbosity", file: "[log]\nverbosity = 4\n", check: func(t *testing.T, c Config) {
			if c.Log.Verbosity != 4 {
				t.Fatalf("verbosity not decoded: %+v", c.Log)
			}
		}},
		{name: "verbosity out of range", file: "[log]\nverbosity = 11\n", wantErr: errdefs.ErrInvalidArgument, wantKeys: []string{"[log]", "verbosity"}},
		{name: "relative config_path", file: "[registry]\nconfig_path = \"certs.d\"\n", wantErr: errdefs.ErrInvalidArgument, wantKeys: []string{"registry.config_path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, _, err := loadConfig(configSource{path: path, pathExplicit: true})
			if tc.wantErr != nil {
				if err == nil || !errdefsIs(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				for _, k := range tc.wantKeys {
					if !strings.Contains(err.Error(), k) {
						t.Fatalf("error %q does not name %q", err, k)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestMissingConfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	if _, _, err := loadConfig(configSource{path: missing}); err != nil {
		t.Fatalf("missing default config: %v", err)
	}
	if _, _, err := loadConfig(configSource{path: missing, pathExplicit: true}); err == nil {
		t.Fatal("a missing config named with --config loaded")
	}
	if _, _, err := loadConfig(configSource{path: missing, dir: missing}); err != nil {
		t.Fatalf("missing default config dir: %v", err)
	}
	if _, _, err := loadConfig(configSource{path: missing, dir: missing, dirExplicit: true}); err == nil {
		t.Fatal("a missing config dir named with --config-dir loaded")
	}
}

func errdefsIs(err, class error) bool { return errdefs.ClassName(err) == errdefs.ClassName(class) }

// writeFiles writes name → content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDropIns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		main     string
		dropIns  map[string]string
		wantErr  []string // substrings: the file and the key
		wantFile int      // how many files were read
		check    func(t *testing.T, c Config)
	}{
		{
			name: "applied in lexical order over the main file",
			main: "[log]\nverbosity = 1\n[image]\nmax_concurrent_downloads = 2\n",
			dropIns: map[string]string{
				"20-b.toml":  "[log]\nverbosity = 3\n",
				"10-a.toml":  "[log]\nverbosity = 2\n[metrics]\naddress = \"127.0.0.1:9090\"\n",
				"README":     "not toml, not read",
				"x.toml.bak": "[nonsense]\n",
			},
			wantFile: 3,
			check: func(t *testing.T, c Config) {
				if c.Log.Verbosity != 3 || c.Metrics.Address != "127.0.0.1:9090" || c.Image.MaxConcurrentDownloads != 2 {
					t.Fatalf("merged config: log %+v, metrics %+v, image %+v", c.Log, c.Metrics, c.Image)
				}
			},
		},
		{
			name: "a drop-in adds a mirror and keeps the main file's",
			main: "[registry.mirrors.\"docker.io\"]\nendpoints = [\"http://127.0.0.1:5000\"]\n",
			dropIns: map[string]string{
				"mirror.toml": "[registry.mirrors.\"quay.io\"]\nendpoints = [\"http://127.0.0.1:5001\"]\n",
			},
			wantFile: 2,
			check: func(t *testing.T, c Config) {
				if len(c.Registry.Mirrors) != 2 {
					t.Fatalf("mirrors %+v", c.Registry.Mirrors)
				}
			},
		},
		{
			name:    "an unknown key in a drop-in names the drop-in",
			dropIns: map[string]string{"10-ok.toml": "[log]\nverbosity = 2\n", "20-typo.toml": "[metrics]\nadress = \"x\"\n"},
			wantErr: []string{"20-typo.toml", "metrics.adress"},
		},
		{
			name:    "a drop-in that does not parse names the drop-in",
			dropIns: map[string]string{"broken.toml": "[metrics\n"},
			wantErr: []string{"broken.toml"},
		},
		{
			name:    "an invalid value names the drop-in that set it",
			main:    "[log]\nverbosity = 2\n",
			dropIns: map[string]string{"10-ok.toml": "[log]\nverbosity = 3\n", "20-bad.toml": "[metrics]\npprof = true\n", "30-ok.toml": "[log]\nverbosity = 4\n"},
			wantErr: []string{"20-bad.toml", "[metrics]: pprof"},
		},
		{
			name: "a value valid only with a later drop-in is not blamed on the earlier file",
			main: "[cri]\ndefault_runtime_handler = \"kata\"\n",
			dropIns: map[string]string{
				"10-kata.toml": "[cri.runtimes.kata]\nbinary_path = \"/usr/bin/kata\"\n",
				"20-bad.toml":  "[log]\nverbosity = -1\n",
			},
			wantErr: []string{"20-bad.toml", "[log]: verbosity"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			main := filepath.Join(dir, "config.toml")
			if err := os.WriteFile(main, []byte(tc.main), 0o644); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, filepath.Join(dir, "config.d"), tc.dropIns)
			cfg, files, err := loadConfig(configSource{path: main, dir: filepath.Join(dir, "config.d")})
			if tc.wantErr != nil {
				if !errdefsIs(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want InvalidArgument", err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != tc.wantFile || files[0] != main {
				t.Errorf("files read %v, want the main file and %d drop-ins", files, tc.wantFile-1)
			}
			tc.check(t, cfg)
		})
	}
}

func TestChangedKeys(t *testing.T) {
	a := defaultConfig()
	b := defaultConfig()
	b.Log.Verbosity = 4
	b.Metrics.Address = "127.0.0.1:9090"
	b.Registry.ConfigPath = "/etc/cri-runtime/certs.d"
	b.Registry.Mirrors = map[string]image.Mirror{"docker.io": {Endpoints: []string{"http://127.0.0.1:5000"}}}
	b.CRI.Runtimes = map[string]cri.RuntimeHandler{}
	for k, v := range a.CRI.Runtimes {
		b.CRI.Runtimes[k] = v
	}
	delete(b.CRI.Runtimes, "crun")
	got := changedKeys(a, b)
	want := []string{"cri.runtimes.crun.binary_path", "cri.runtimes.crun.root", "log.verbosity", "metrics.address", "registry.config_path", `registry.mirrors."docker.io".endpoints`}
	if !slices.Equal(got, want) {
		t.Errorf("changedKeys = %v\nwant %v", got, want)
	}
	live, restart := partition(got)
	if !slices.Equal(live, []string{"log.verbosity", "registry.config_path", `registry.mirrors."docker.io".endpoints`}) {
		t.Errorf("live = %v", live)
	}
	if !slices.Equal(restart, []string{"cri.runtimes.crun.binary_path", "cri.runtimes.crun.root", "metrics.address"}) {
		t.Errorf("restart = %v", restart)
	}
	if got := changedKeys(a, defaultConfig()); len(got) != 0 {
		t.Errorf("changedKeys of equal configs = %v", got)
	}
}
