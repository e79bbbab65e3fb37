package image

import (
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestRegistryConfigTOMLShape(t *testing.T) {
	var root struct {
		Registry RegistryConfig `toml:"registry"`
	}
	md, err := toml.Decode(`
[registry.mirrors."registry.k8s.io"]
endpoints = ["http://127.0.0.1:5000"]
fallback = false

[registry.mirrors."docker.io"]
endpoints = ["https://mirror.example.com"]

[registry.configs."mirror.example.com"]
username = "u"
password = "p"
insecure_skip_verify = true
`, &root)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Undecoded()) != 0 {
		t.Fatalf("undecoded keys: %v", md.Undecoded())
	}
	cfg := DefaultConfig()
	cfg.Registry = root.Registry
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := &Service{cfg: cfg}
	if err := s.SetRegistry(cfg.Registry); err != nil {
		t.Fatal(err)
	}
	if eps := s.endpoints(Reference{Domain: "registry.k8s.io"}); len(eps) != 1 || eps[0] != (endpoint{host: "127.0.0.1:5000", insecure: true}) {
		t.Errorf("registry.k8s.io endpoints = %+v", eps)
	}
	if eps := s.endpoints(Reference{Domain: "docker.io"}); len(eps) != 2 || eps[0].host != "mirror.example.com" || eps[0].insecure || eps[1].host != "docker.io" {
		t.Errorf("docker.io endpoints = %+v (want the mirror, then fallback upstream)", eps)
	}
	if eps := s.endpoints(Reference{Domain: "quay.io"}); len(eps) != 1 || eps[0] != (endpoint{host: "quay.io"}) {
		t.Errorf("quay.io endpoints = %+v", eps)
	}
	if !cfg.Registry.Configs["mirror.example.com"].InsecureSkipVerify {
		t.Error("insecure_skip_verify not decoded")
	}
}

func TestConfigValidate(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"zero downloads", func(c *Config) { c.MaxConcurrentDownloads = 0 }, false},
		{"zero entry size", func(c *Config) { c.MaxEntrySize = 0 }, false},
		{"zero layer size", func(c *Config) { c.MaxLayerSize = 0 }, false},
		{"zero layer inodes", func(c *Config) { c.MaxLayerInodes = 0 }, false},
		{"negative progress timeout", func(c *Config) { c.PullProgressTimeout = -1 }, false},
		{"progress timeout off", func(c *Config) { c.PullProgressTimeout = 0 }, true},
		{"bad platform", func(c *Config) { c.Platform = "amd64" }, false},
		{"variant", func(c *Config) { c.Platform = "linux/arm/v7" }, true},
		{"ftp endpoint", func(c *Config) { c.Registry.Mirrors = map[string]Mirror{"docker.io": {Endpoints: []string{"ftp://x"}}} }, false},
		{"endpoint path", func(c *Config) {
			c.Registry.Mirrors = map[string]Mirror{"docker.io": {Endpoints: []string{"https://x/foo"}}}
		}, false},
		{"endpoint /v2", func(c *Config) {
			c.Registry.Mirrors = map[string]Mirror{"docker.io": {Endpoints: []string{"https://x/v2"}}}
		}, true},
		{"nothing to pull from", func(c *Config) { c.Registry.Mirrors = map[string]Mirror{"docker.io": {Fallback: &no}} }, false},
		{"bad host key", func(c *Config) { c.Registry.Configs = map[string]RegistryHostConfig{"https://x": {}} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if (err == nil) != tc.ok || (err != nil && !errdefs.IsInvalidArgument(err)) {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	d := "sha256:" + "ab12000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest"},
		{"user/app", "docker.io/user/app:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/library/busybox", "docker.io/library/busybox:latest"},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"},
		{"localhost/app", "localhost/app:latest"},
		{"127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t"},
		{"busybox@" + d, "docker.io/library/busybox@" + d},
		{"busybox:1@" + d, "docker.io/library/busybox:1@" + d},
	} {
		r, err := ParseReference(tc.in)
		if err != nil || r.String() != tc.want {
			t.Errorf("ParseReference(%q) = %q, %v; want %q", tc.in, r.String(), err, tc.want)
		}
	}
	for _, bad := range []string{"", "UPPER", "a//b", "busybox@sha256:short", "busybox:", "-x", "a/b:c:d"} {
		if _, err := ParseReference(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseReference(%q) err = %v, want InvalidArgument", bad, err)
		}
	}
}

func TestParseUser(t *testing.T) {
	for _, tc := range []struct {
		in   string
		uid  int64
		has  bool
		name string
	}{
		{"", 0, false, ""},
		{"1000", 1000, true, ""},
		{"0:0", 0, true, ""},
		{"nobody", 0, false, "nobody"},
		{"www:www", 0, false, "www"},
	} {
		uid, name := ParseUser(tc.in)
		if (uid != nil) != tc.has || (uid != nil && *uid != tc.uid) || name != tc.name {
			t.Errorf("ParseUser(%q) = %v, %q", tc.in, uid, name)
		}
	}
}

func TestChainIDs(t *testing.T) {
	a, b := sha256Digest([]byte("a")), sha256Digest([]byte("b"))
	got := chainIDs([]string{a, b})
	if got[0] != a || got[1] != sha256Digest([]byte(a+" "+b)) {
		t.Errorf("chainIDs = %v", got)
	}
}

func TestImageConfigTOML(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{`pull_progress_timeout = "30s"`, 30 * time.Second, true},
		{`pull_progress_timeout = "0"`, 0, true},
		{`pull_progress_timeout = "5 minutes"`, 0, false},
		{`pull_progress_timeout = 300`, 0, false}, // no bare numbers of seconds
	} {
		root := struct {
			Image Config `toml:"image"`
		}{DefaultConfig()}
		md, err := toml.Decode("[image]\n"+tc.in+"\nmax_layer_size = 1024\nmax_layer_inodes = 10\n", &root)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.in, err)
			continue
		}
		if !tc.ok {
			continue
		}
		if len(md.Undecoded()) != 0 || time.Duration(root.Image.PullProgressTimeout) != tc.want ||
			root.Image.MaxLayerSize != 1024 || root.Image.MaxLayerInodes != 10 {
			t.Errorf("%s: decoded %+v, undecoded %v", tc.in, root.Image, md.Undecoded())
		}
	}
	if got := DefaultConfig().PullProgressTimeout; time.Duration(got) != 5*time.Minute {
		t.Errorf("default pull_progress_timeout = %s, want 5m", time.Duration(got))
	}
}
