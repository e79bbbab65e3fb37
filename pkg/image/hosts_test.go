package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// writeHosts lays out files (path relative to root → content) and returns root.
func writeHosts(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// describe renders endpoints as "scheme://host/apiRoot" for comparison.
func describe(eps []endpoint) string {
	var out []string
	for _, ep := range eps {
		scheme := "https"
		if ep.insecure {
			scheme = "http"
		}
		root := "/v2"
		if ep.via != nil {
			root = ep.via.apiRoot
		}
		out = append(out, scheme+"://"+ep.host+root)
	}
	return strings.Join(out, " ")
}

func TestHostsEndpoints(t *testing.T) {
	digest := "sha256:" + strings.Repeat("a", 64)
	no := false
	for _, tc := range []struct {
		name    string
		files   map[string]string
		mirrors map[string]Mirror
		ref     Reference
		want    string
	}{
		{
			name: "hosts in file order, then the server",
			files: map[string]string{"docker.io/hosts.toml": `
server = "https://registry-1.docker.io"
[host."https://z-mirror.example.com"]
  capabilities = ["pull", "resolve"]
[host."http://a-mirror.example.com:5000"]
  capabilities = ["pull", "resolve"]
`},
			ref:  Reference{Domain: "docker.io", Path: "library/busybox", Tag: "latest"},
			want: "https://z-mirror.example.com/v2 http://a-mirror.example.com:5000/v2 https://registry-1.docker.io/v2",
		},
		{
			name:  "no server: the pulled host over https",
			files: map[string]string{"quay.io/hosts.toml": `[host."https://m.example.com"]` + "\n"},
			ref:   Reference{Domain: "quay.io", Path: "a/b", Tag: "t"},
			want:  "https://m.example.com/v2 https://quay.io/v2",
		},
		{
			name: "a pull-only host serves digests, not tags",
			files: map[string]string{"quay.io/hosts.toml": `
[host."https://blobs.example.com"]
  capabilities = ["pull"]
`},
			ref:  Reference{Domain: "quay.io", Path: "a/b", Tag: "t"},
			want: "https://quay.io/v2",
		},
		{
			name: "a pull-only host serves a digest",
			files: map[string]string{"quay.io/hosts.toml": `
[host."https://blobs.example.com"]
  capabilities = ["pull"]
`},
			ref:  Reference{Domain: "quay.io", Path: "a/b", Digest: digest},
			want: "https://blobs.example.com/v2 https://quay.io/v2",
		},
		{
			name: "push-only hosts are skipped",
			files: map[string]string{"quay.io/hosts.toml": `
[host."https://push.example.com"]
  capabilities = ["push"]
`},
			ref:  Reference{Domain: "quay.io", Path: "a/b", Tag: "t"},
			want: "https://quay.io/v2",
		},
		{
			name: "a path is the API root's parent; override_path makes it the root",
			files: map[string]string{"quay.io/hosts.toml": `
[host."https://m.example.com/cache"]
[host."https://n.example.com/api/v2"]
[host."https://o.example.com/raw"]
  override_path = true
`},
			ref:  Reference{Domain: "quay.io", Path: "a/b", Tag: "t"},
			want: "https://m.example.com/cache/v2 https://n.example.com/api/v2 https://o.example.com/raw https://quay.io/v2",
		},
		{
			name:  "a server without a scheme is https",
			files: map[string]string{"r.example.com/hosts.toml": `server = "r2.example.com"` + "\n"},
			ref:   Reference{Domain: "r.example.com", Path: "a", Tag: "t"},
			want:  "https://r2.example.com/v2",
		},
		{
			name:  "host_port_ directory",
			files: map[string]string{"127.0.0.1_5000_/hosts.toml": `server = "http://127.0.0.1:5000"` + "\n"},
			ref:   Reference{Domain: "127.0.0.1:5000", Path: "a", Tag: "t"},
			want:  "http://127.0.0.1:5000/v2",
		},
		{
			name:  "host:port directory",
			files: map[string]string{"127.0.0.1:5000/hosts.toml": `server = "http://127.0.0.1:5000"` + "\n"},
			ref:   Reference{Domain: "127.0.0.1:5000", Path: "a", Tag: "t"},
			want:  "http://127.0.0.1:5000/v2",
		},
		{
			name:  "_default applies to a host without its own",
			files: map[string]string{"_default/hosts.toml": `[host."https://all.example.com"]` + "\n"},
			ref:   Reference{Domain: "ghcr.io", Path: "a", Tag: "t"},
			want:  "https://all.example.com/v2 https://ghcr.io/v2",
		},
		{
			name:    "an inline mirror wins over _default",
			files:   map[string]string{"_default/hosts.toml": `[host."https://all.example.com"]` + "\n"},
			mirrors: map[string]Mirror{"ghcr.io": {Endpoints: []string{"http://127.0.0.1:5000"}, Fallback: &no}},
			ref:     Reference{Domain: "ghcr.io", Path: "a", Tag: "t"},
			want:    "http://127.0.0.1:5000/v2",
		},
		{
			name:    "a host's hosts.toml wins over its inline mirror",
			files:   map[string]string{"ghcr.io/hosts.toml": `[host."https://own.example.com"]` + "\n"},
			mirrors: map[string]Mirror{"ghcr.io": {Endpoints: []string{"http://127.0.0.1:5000"}, Fallback: &no}},
			ref:     Reference{Domain: "ghcr.io", Path: "a", Tag: "t"},
			want:    "https://own.example.com/v2 https://ghcr.io/v2",
		},
		{
			name:  "a host dir without hosts.toml is the pulled host (Docker layout)",
			files: map[string]string{"ghcr.io/README": "x", "_default/hosts.toml": `[host."https://all.example.com"]` + "\n"},
			ref:   Reference{Domain: "ghcr.io", Path: "a", Tag: "t"},
			want:  "https://ghcr.io/v2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := RegistryConfig{Mirrors: tc.mirrors, ConfigPath: writeHosts(t, tc.files)}
			s := &Service{}
			if err := s.SetRegistry(cfg); err != nil {
				t.Fatal(err)
			}
			if got := describe(s.endpoints(tc.ref)); got != tc.want {
				t.Errorf("endpoints:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestHostsFileHeadersAndCaps(t *testing.T) {
	root := writeHosts(t, map[string]string{"docker.io/hosts.toml": `
capabilities = ["pull", "resolve"]
[header]
  x-server = "s"
[host."https://m.example.com"]
  capabilities = ["PULL", "Resolve"]
  dial_timeout = "3s"
  [host."https://m.example.com".header]
    x-one = "1"
    x-many = ["a", "b"]
`})
	d, err := loadHostsDirs(root)
	if err != nil {
		t.Fatal(err)
	}
	f := d.files["docker.io"]
	if f == nil || len(f.hosts) != 1 {
		t.Fatalf("files = %+v", d.files)
	}
	h := f.hosts[0]
	if h.caps != capPull|capResolve || h.dialTimeout.Seconds() != 3 {
		t.Errorf("host = %+v", h)
	}
	if h.header.Get("X-One") != "1" || strings.Join(h.header.Values("X-Many"), ",") != "a,b" {
		t.Errorf("header = %v", h.header)
	}
	if f.server.caps&capPush != 0 || f.server.header.Get("X-Server") != "s" {
		t.Errorf("server = %+v", f.server)
	}
}

func TestHostsFileErrorsNameFileAndKey(t *testing.T) {
	pki := testutil.NewPKI(t)
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"unknown top-level key", "sever = \"https://x\"\n", []string{"hosts.toml", "unknown keys sever"}},
		{"unknown host key", "[host.\"https://m\"]\ncapabilites = [\"pull\"]\n", []string{`host."https://m".capabilites`}},
		{"unknown capability", "[host.\"https://m\"]\ncapabilities = [\"pul\"]\n", []string{`host."https://m"`, "capabilities", `"pul"`}},
		{"ftp host", "[host.\"ftp://m\"]\n", []string{`host."ftp://m"`}},
		{"missing CA file", "ca = \"nope.pem\"\n", []string{"ca:", "nope.pem"}},
		{"CA that is no PEM", "[host.\"https://m\"]\nca = \"" + pki.ClientKey + "\"\n", []string{`host."https://m"`, "ca:", "holds no PEM certificate"}},
		{"client pair of three", "[host.\"https://m\"]\nclient = [[\"a\", \"b\", \"c\"]]\n", []string{"client[0]", "[cert, key]"}},
		{"client cert without key", "[host.\"https://m\"]\nclient = \"" + pki.ClientCert + "\"\n", []string{"client:", "client.cert"}},
		{"bad header", "[host.\"https://m\".header]\nx = 1\n", []string{`header."x"`}},
		{"bad dial timeout", "dial_timeout = \"soon\"\n", []string{"dial_timeout"}},
		{"nothing can resolve", "capabilities = [\"pull\"]\n[host.\"https://m\"]\ncapabilities = [\"pull\"]\n", []string{"pull and the resolve"}},
		{"not toml", "[host\n", []string{"hosts.toml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := writeHosts(t, map[string]string{"docker.io/hosts.toml": tc.body})
			err := CheckHostsDirs(root)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			for _, w := range append(tc.want, filepath.Join(root, "docker.io", "hosts.toml")) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestHostsDirsRootsAndTLSFiles(t *testing.T) {
	pki := testutil.NewPKI(t)
	first := writeHosts(t, map[string]string{
		"docker.io/hosts.toml": `server = "https://first.example.com"` + "\n",
	})
	second := writeHosts(t, map[string]string{
		"docker.io/hosts.toml": `server = "https://second.example.com"` + "\n",
		"quay.io/hosts.toml": `
[host."https://q.example.com"]
  ca = ["` + pki.CA + `"]
  client = [["` + pki.ClientCert + `", "` + pki.ClientKey + `"]]
  skip_verify = false
`,
	})
	// A Docker-style dir: CA and a client pair, no hosts.toml.
	docker := writeHosts(t, nil)
	dir := filepath.Join(docker, "ghcr.io")
	for src, dst := range map[string]string{pki.CA: "ca.crt", pki.ClientCert: "client.cert", pki.ClientKey: "client.key"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d, err := loadHostsDirs(strings.Join([]string{first, filepath.Join(first, "missing"), second, docker}, ":"))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.files["docker.io"].server.host; got != "first.example.com" {
		t.Errorf("docker.io server = %s, want the first root's", got)
	}
	q := d.files["quay.io"].hosts[0]
	if q.tls == nil || q.tls.RootCAs == nil || len(q.tls.Certificates) != 1 || q.tls.InsecureSkipVerify {
		t.Errorf("quay.io TLS = %+v", q.tls)
	}
	g := d.files["ghcr.io"].server
	if g.tls == nil || g.tls.RootCAs == nil || len(g.tls.Certificates) != 1 {
		t.Errorf("Docker-style ghcr.io TLS = %+v", g.tls)
	}
}

func TestConfigPathMustBeAbsolute(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"", true},
		{"/etc/cri-runtime/certs.d", true},
		{"/etc/cri-runtime/certs.d:/etc/containerd/certs.d", true},
		{"certs.d", false},
		{"/etc/a:rel", false},
	} {
		err := RegistryConfig{ConfigPath: tc.path}.Validate()
		if (err == nil) != tc.ok || (err != nil && !errdefs.IsInvalidArgument(err)) {
			t.Errorf("config_path %q: err = %v, want ok=%v", tc.path, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "registry.config_path") {
			t.Errorf("error %q does not name the key", err)
		}
	}
}

// TestHostsServerGetsUpstreamCredentials: a hosts.toml's server is the
// upstream under another name: the pull's credentials go to it even when
// bound to the upstream's name, while a mirror host gets them only
// unbound.
func TestHostsServerGetsUpstreamCredentials(t *testing.T) {
	root := writeHosts(t, map[string]string{"docker.io/hosts.toml": `
server = "https://registry-1.docker.io"
[host."https://mirror.example.com"]
`})
	s := &Service{}
	if err := s.SetRegistry(RegistryConfig{ConfigPath: root}); err != nil {
		t.Fatal(err)
	}
	bound := &Auth{Username: "u", Password: "p", ServerAddress: "docker.io"}
	user := func(host string) string {
		cfg, err := s.authenticator(host, "docker.io", bound).Authorization()
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Username
	}
	if got := user("registry-1.docker.io"); got != "u" {
		t.Errorf("the server got user %q, want the pull's", got)
	}
	if got := user("mirror.example.com"); got != "" {
		t.Errorf("a mirror got user %q for credentials bound to docker.io", got)
	}
}
