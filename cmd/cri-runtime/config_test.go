package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
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
	cfg, err := loadConfig(path, true)
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
	for _, want := range []string{"version = 1", "[cri.runtimes.runc]", "[network]", `[registry.mirrors."registry.k8s.io"]`} {
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(path, true)
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
	if _, err := loadConfig(missing, false); err != nil {
		t.Fatalf("missing default config: %v", err)
	}
	if _, err := loadConfig(missing, true); err == nil {
		t.Fatal("a missing config named with --config loaded")
	}
}

func errdefsIs(err, class error) bool { return errdefs.ClassName(err) == errdefs.ClassName(class) }
