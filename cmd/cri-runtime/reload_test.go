package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// fakeRegistry records SetRegistry calls; err makes them fail.
type fakeRegistry struct {
	calls   []image.RegistryConfig
	err     error
	timeout time.Duration // the last SetPullProgressTimeout
}

func (f *fakeRegistry) SetPullProgressTimeout(d time.Duration) { f.timeout = d }

func (f *fakeRegistry) SetRegistry(c image.RegistryConfig) error {
	f.calls = append(f.calls, c)
	return f.err
}

func TestReload(t *testing.T) {
	if flag.Lookup("v") == nil {
		klog.InitFlags(nil)
	}
	defer setVerbosity(0)
	dir := t.TempDir()
	main := filepath.Join(dir, "config.toml")
	dropDir := filepath.Join(dir, "config.d")
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(main, "[log]\nverbosity = 1\n")
	src := configSource{path: main, dir: dropDir}
	cfg, _, err := loadConfig(src)
	if err != nil {
		t.Fatal(err)
	}
	fr := &fakeRegistry{}
	r := &reloader{src: src, running: cfg, images: fr}
	logger, _ := ktesting.NewTestContext(t)

	// A drop-in with a live change (a mirror, the verbosity) and one that
	// needs a restart (the metrics address).
	write(filepath.Join(dropDir, "10-live.toml"), "[log]\nverbosity = 5\n[registry.mirrors.\"quay.io\"]\nendpoints = [\"http://127.0.0.1:5000\"]\n[metrics]\naddress = \"127.0.0.1:9090\"\n[image]\npull_progress_timeout = \"7s\"\n")
	r.reload(logger)
	if fr.timeout != 7*time.Second || time.Duration(r.running.Image.PullProgressTimeout) != 7*time.Second {
		t.Errorf("pull_progress_timeout after reload: service %v, running %v; want 7s", fr.timeout, r.running.Image.PullProgressTimeout)
	}
	if len(fr.calls) != 1 || len(fr.calls[0].Mirrors) != 1 {
		t.Fatalf("SetRegistry calls %+v, want one with the new mirror", fr.calls)
	}
	if got := flag.Lookup("v").Value.String(); got != "5" {
		t.Errorf("verbosity after reload = %s, want 5", got)
	}
	if r.running.Metrics.Address != "" || len(r.running.Registry.Mirrors) != 1 || r.running.Log.Verbosity != 5 {
		t.Errorf("running config: metrics %+v (must stay until a restart), mirrors %+v, log %+v", r.running.Metrics, r.running.Registry.Mirrors, r.running.Log)
	}

	// A bad drop-in: nothing is applied, the registry is not touched.
	write(filepath.Join(dropDir, "20-bad.toml"), "[log]\nverbosity = 2\n[registry]\nconfig_pth = \"/x\"\n")
	before := r.running
	r.reload(logger)
	if len(fr.calls) != 1 {
		t.Errorf("SetRegistry called for a refused reload: %+v", fr.calls)
	}
	if got := flag.Lookup("v").Value.String(); got != "5" {
		t.Errorf("verbosity after a refused reload = %s, want still 5", got)
	}
	if len(changedKeys(before, r.running)) != 0 {
		t.Errorf("running config changed by a refused reload: %v", changedKeys(before, r.running))
	}

	// A hosts dir the image service refuses: nothing else is applied.
	os.Remove(filepath.Join(dropDir, "20-bad.toml"))
	write(filepath.Join(dropDir, "30-v.toml"), "[log]\nverbosity = 3\n")
	fr.err = errors.New("hosts.toml: unknown keys")
	r.reload(logger)
	if got := flag.Lookup("v").Value.String(); got != "5" {
		t.Errorf("verbosity after a reload the registry refused = %s, want still 5", got)
	}

	// With -v on the command line the file's verbosity is not applied.
	fr.err = nil
	r.verbosityFlag = true
	r.reload(logger)
	if got := flag.Lookup("v").Value.String(); got != "5" {
		t.Errorf("verbosity with -v given = %s, want the flag's 5", got)
	}
}
