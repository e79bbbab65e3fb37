package image

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// closedAddr is a loopback address nothing listens on: a server entry
// that fails at once, so that no test pull falls back anywhere real.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func smallImage(t *testing.T, content string) v1.Image {
	return imageOf(t, "amd64", v1.Config{Cmd: []string{"true"}}, true, layerOf(t, true, file("hello", content)))
}

func TestPullOverTLSWithPrivateCAAndClientCert(t *testing.T) {
	requireRoot(t)
	pki := testutil.NewPKI(t)
	addr := testutil.StartTLSRegistry(t, pki)
	img := smallImage(t, "over tls")
	ref, err := name.ParseReference(addr + "/private/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(&http.Transport{TLSClientConfig: pki.ClientTLS(t)})); err != nil {
		t.Fatalf("push over TLS: %v", err)
	}
	wantID, _ := img.ConfigName()

	for _, tc := range []struct {
		name  string
		hosts string
		ok    bool
	}{
		{"CA and client pair", fmt.Sprintf("server = \"https://%s\"\nca = %q\nclient = [[%q, %q]]\n", addr, pki.CA, pki.ClientCert, pki.ClientKey), true},
		{"CA and client pair in a host entry", fmt.Sprintf("server = \"https://%s\"\n[host.\"https://%s\"]\nca = [%q]\nclient = [[%q, %q]]\n", closedAddr(t), addr, pki.CA, pki.ClientCert, pki.ClientKey), true},
		{"no client certificate", fmt.Sprintf("server = \"https://%s\"\nca = %q\n", addr, pki.CA), false},
		{"a client certificate of another CA", fmt.Sprintf("server = \"https://%s\"\nca = %q\nclient = [[%q, %q]]\n", addr, pki.CA, pki.OtherClientCert, pki.OtherClientKey), false},
		{"the system CAs only", fmt.Sprintf("server = \"https://%s\"\nclient = [[%q, %q]]\n", addr, pki.ClientCert, pki.ClientKey), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			dir := writeHosts(t, map[string]string{"private.test/hosts.toml": tc.hosts})
			cfg := DefaultConfig()
			cfg.Platform = "linux/amd64"
			cfg.Registry.ConfigPath = dir
			var n atomic.Int64
			e := newService(t, t.TempDir(), cfg, WithRegistryBytes(func(b int64) { n.Add(b) }))
			got, err := e.svc.Pull(ctx, "private.test/private/app:v1", nil)
			if !tc.ok {
				if !errdefs.IsUnavailable(err) {
					t.Fatalf("pull = %v, want Unavailable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != wantID.String() {
				t.Errorf("ID = %s, want %s", got.ID, wantID)
			}
			if n.Load() < got.Size/2 {
				t.Errorf("counted %d bytes from the registry for an image of %d", n.Load(), got.Size)
			}
		})
	}
}

// TestHostsHeaderAndAPIRoot: a mirror that serves the registry API under
// /cache/v2 and only to requests with its header.
func TestHostsHeaderAndAPIRoot(t *testing.T) {
	f := newFixture(t)
	target, _ := url.Parse("http://" + f.addr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/cache")
		if !ok || r.Header.Get("X-Mirror-Token") != "let-me-in" || len(r.Header.Values("X-Many")) != 2 {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		seen.Add(1)
		r.URL.Path = rest
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	hosts := fmt.Sprintf(`server = "http://%s"
[host."%s/cache"]
  capabilities = ["pull", "resolve"]
  [host."%s/cache".header]
    x-mirror-token = "let-me-in"
    x-many = ["a", "b"]
`, closedAddr(t), srv.URL, srv.URL)
	cfg := DefaultConfig()
	cfg.Platform = "linux/amd64"
	cfg.Registry.ConfigPath = writeHosts(t, map[string]string{"docker.io/hosts.toml": hosts})
	_, ctx := ktesting.NewTestContext(t)
	e := newService(t, t.TempDir(), cfg, WithTransport(loopbackOnly()))
	img, err := e.svc.Pull(ctx, "oci/single:v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != f.id(t, "oci") || seen.Load() == 0 {
		t.Errorf("ID = %s (want %s); %d requests through the mirror", img.ID, f.id(t, "oci"), seen.Load())
	}
}

// TestSetRegistrySwapsLive: a mirror added to a hosts dir is used once
// SetRegistry rereads it; a broken hosts file is refused and the config
// in force stays.
func TestSetRegistrySwapsLive(t *testing.T) {
	f := newFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	dir := writeHosts(t, map[string]string{"live.test/hosts.toml": fmt.Sprintf("server = \"http://%s\"\n", closedAddr(t))})
	cfg := DefaultConfig()
	cfg.Platform = "linux/amd64"
	cfg.Registry.ConfigPath = dir
	e := newService(t, t.TempDir(), cfg, WithTransport(loopbackOnly()))
	if _, err := e.svc.Pull(ctx, "live.test/oci/single:v1", nil); !errdefs.IsUnavailable(err) {
		t.Fatalf("pull before the mirror = %v, want Unavailable", err)
	}

	hostsFile := filepath.Join(dir, "live.test", "hosts.toml")
	mirror := fmt.Sprintf("server = \"http://%s\"\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", closedAddr(t), f.addr)
	if err := os.WriteFile(hostsFile, []byte(mirror), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Pull(ctx, "live.test/oci/single:v1", nil); !errdefs.IsUnavailable(err) {
		t.Fatalf("pull after editing hosts.toml but before SetRegistry = %v, want Unavailable (read at reload only)", err)
	}
	if err := e.svc.SetRegistry(cfg.Registry); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Pull(ctx, "live.test/oci/single:v1", nil); err != nil {
		t.Fatalf("pull through the new mirror: %v", err)
	}

	if err := os.WriteFile(hostsFile, []byte("[host.\"http://x\"]\ncapabilites = [\"pull\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := e.svc.SetRegistry(cfg.Registry)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), hostsFile) || !strings.Contains(err.Error(), "capabilites") {
		t.Fatalf("SetRegistry with a broken hosts.toml = %v, want InvalidArgument naming the file and key", err)
	}
	if err := e.svc.Remove(ctx, "live.test/oci/single:v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Pull(ctx, "live.test/oci/single:v1", nil); err != nil {
		t.Fatalf("pull after a refused reload (the mirror must stay): %v", err)
	}
}
