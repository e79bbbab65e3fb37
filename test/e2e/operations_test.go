package e2e

// Operating the daemon as one operates containerd or CRI-O: metrics turned
// on by a drop-in, registry hosts dirs reread on SIGHUP, a bad drop-in
// refused, a pull over TLS with a private CA and a client certificate.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// dropIn writes a file into the daemon's --config-dir, removed (and the
// daemon told with SIGHUP) when the test ends.
func dropIn(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(env.configDir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
	return p
}

func daemonLog() string {
	data, _ := os.ReadFile(filepath.Join(env.artifacts, "daemon.log"))
	return string(data)
}

// sighup sends SIGHUP and returns the daemon's one line about the reload:
// "Reloaded config" or "Refused config reload".
func sighup(t *testing.T) string {
	t.Helper()
	requireEnv(t)
	off := len(daemonLog())
	if err := env.daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, line := range strings.Split(daemonLog()[off:], "\n") {
			if strings.Contains(line, `"Reloaded config"`) || strings.Contains(line, `"Refused config reload`) {
				return line
			}
		}
	}
	t.Fatalf("no reload line in the daemon's log within 15s of SIGHUP:\n%s", tail(daemonLog()[off:], 20))
	return ""
}

// reloadOK sends SIGHUP and fails unless the reload was accepted.
func reloadOK(t *testing.T) {
	t.Helper()
	if line := sighup(t); !strings.Contains(line, `"Reloaded config"`) {
		t.Fatalf("reload refused: %s", line)
	}
}

func removeImage(t *testing.T, ref string) {
	t.Helper()
	if _, err := env.img.RemoveImage(context.Background(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		t.Fatalf("RemoveImage %s: %v", ref, err)
	}
}

func pull(ref string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := env.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	return err
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestMetricsFromDropIn: a drop-in turns metrics on (a restart applies
// it); /metrics then shows the RunPodSandbox histogram after a pod ran,
// the pod start latency once a container of it started, and the gauges.
func TestMetricsFromDropIn(t *testing.T) {
	requireEnv(t)
	addr := freeLoopback(t)
	dropIn(t, "50-metrics.toml", fmt.Sprintf("[metrics]\naddress = %q\n", addr))
	restartDaemon(t, syscall.SIGTERM, 0)
	t.Cleanup(func() {
		os.Remove(filepath.Join(env.configDir, "50-metrics.toml"))
		restartDaemon(t, syscall.SIGTERM, 0)
	})
	pullImage(t, e2eBusybox)
	p := runPod(t, "metrics")
	p.container(t, "sleeper", sh("sleep 1000"), true)

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{
		`cri_runtime_cri_request_duration_seconds_count{code="OK",method="RunPodSandbox"} 1`,
		`cri_runtime_cri_request_duration_seconds_count{code="OK",method="StartContainer"} 1`,
		`cri_runtime_pod_start_duration_seconds_count 1`,
		`cri_runtime_image_pulls_total 1`,
		`cri_runtime_containers{state="running"} 1`,
		`cri_runtime_pod_sandboxes{state="ready"} 1`,
		`cri_runtime_restore_duration_seconds `,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), "\n"+want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// mirrorRef is the e2e busybox under a registry name no DNS knows: only a
// hosts.toml can make it pullable (from the local registry, which serves
// it as e2e-test-images/busybox).
const mirrorRef = "mirror-reload.e2e.test/e2e-test-images/busybox:1.29-2"

// TestHostsDirMirrorAfterSIGHUP: a mirror added to a hosts dir is used
// after SIGHUP, without a restart; then a bad drop-in on SIGHUP is
// refused, naming its file and key, and the old config stays in force.
func TestHostsDirMirrorAfterSIGHUP(t *testing.T) {
	requireEnv(t)
	pid := env.daemon.Process.Pid
	if err := pull(mirrorRef); err == nil {
		t.Fatalf("pulled %s before any mirror was configured", mirrorRef)
	}

	hostsDir := filepath.Join(env.tmp, "certs.d")
	hostFile := filepath.Join(hostsDir, "mirror-reload.e2e.test", "hosts.toml")
	if err := os.MkdirAll(filepath.Dir(hostFile), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(hostsDir) })
	dropIn(t, "40-hosts.toml", fmt.Sprintf("[registry]\nconfig_path = %q\n", hostsDir))
	hosts := fmt.Sprintf("server = \"https://mirror-reload.e2e.test\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", registryAddr)
	if err := os.WriteFile(hostFile, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := env.img.RemoveImage(context.Background(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: mirrorRef}}); err != nil {
			t.Errorf("RemoveImage: %v", err)
		}
		os.Remove(filepath.Join(env.configDir, "40-hosts.toml"))
		os.Remove(filepath.Join(env.configDir, "99-bad.toml"))
		reloadOK(t)
	})
	reloadOK(t)
	if err := pull(mirrorRef); err != nil {
		t.Fatalf("pull through the hosts.toml mirror after SIGHUP: %v", err)
	}
	if env.daemon.Process.Pid != pid {
		t.Fatal("the daemon was restarted")
	}

	// A bad drop-in that would also drop the hosts dir: refused as a whole.
	bad := dropIn(t, "99-bad.toml", "[registry]\nconfig_path = \"\"\nmirors = 1\n")
	line := sighup(t)
	if !strings.Contains(line, `"Refused config reload`) || !strings.Contains(line, bad) || !strings.Contains(line, "registry.mirors") {
		t.Fatalf("the bad drop-in was not refused naming its file and key: %s", line)
	}
	removeImage(t, mirrorRef)
	if err := pull(mirrorRef); err != nil {
		t.Fatalf("pull after a refused reload (the hosts dir must stay in force): %v", err)
	}
	if _, err := env.rt.Version(context.Background(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("the daemon does not answer after a refused reload: %v", err)
	}
}

// pki is a private CA, a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "EC PRIVATE KEY", der)
	}
	serial := int64(0)
	sign := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, by *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, by)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, der
	}
	caKey := key()
	ca, caDER := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "e2e CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, &caKey.PublicKey, caKey)
	sKey, cKey := key(), key()
	_, sDER := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &sKey.PublicKey, caKey)
	_, cDER := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "e2e client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, &cKey.PublicKey, caKey)
	return pki{
		ca:         write("ca.crt", "CERTIFICATE", caDER),
		serverCert: write("server.crt", "CERTIFICATE", sDER),
		serverKey:  writeKey("server.key", sKey),
		clientCert: write("client.cert", "CERTIFICATE", cDER),
		clientKey:  writeKey("client.key", cKey),
	}
}

// startTLSRegistry runs docker-registry on a free loopback port serving
// https with p's server certificate, requiring a client certificate of
// p's CA, as a pull-through cache of the local test registry. It is
// stopped by PID when the test ends.
func startTLSRegistry(t *testing.T, p pki, dir string) string {
	t.Helper()
	addr := freeLoopback(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"+
		"storage:\n  filesystem:\n    rootdirectory: %s\n"+
		"http:\n  addr: %s\n  tls:\n    certificate: %s\n    key: %s\n    clientcas:\n      - %s\n"+
		"proxy:\n  remoteurl: http://%s\n",
		filepath.Join(dir, "data"), addr, p.serverCert, p.serverKey, p.ca, registryAddr)
	cfgPath := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	caPEM, _ := os.ReadFile(p.ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 2 * time.Second, Transport: tr}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := client.Get("https://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
	}
	t.Fatalf("TLS registry did not come up on %s:\n%s", addr, logs.String())
	return ""
}

// TestPullOverTLSWithClientCert: a registry serving TLS with a private CA
// and requiring client certificates is pulled from through a hosts.toml
// naming the CA and the client pair; without the client pair the pull
// fails.
func TestPullOverTLSWithClientCert(t *testing.T) {
	requireEnv(t)
	dir := t.TempDir()
	p := newPKI(t, dir)
	addr := startTLSRegistry(t, p, dir)
	const ref = "private.e2e.test/e2e-test-images/busybox:1.29-2"

	hostsDir := filepath.Join(dir, "certs.d")
	hostFile := filepath.Join(hostsDir, "private.e2e.test", "hosts.toml")
	if err := os.MkdirAll(filepath.Dir(hostFile), 0o755); err != nil {
		t.Fatal(err)
	}
	writeHosts := func(client bool) {
		t.Helper()
		body := fmt.Sprintf("server = \"https://%s\"\nca = %q\n", addr, p.ca)
		if client {
			body += fmt.Sprintf("client = [[%q, %q]]\n", p.clientCert, p.clientKey)
		}
		if err := os.WriteFile(hostFile, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dropIn(t, "40-tls.toml", fmt.Sprintf("[registry]\nconfig_path = %q\n", hostsDir))
	t.Cleanup(func() {
		os.Remove(filepath.Join(env.configDir, "40-tls.toml"))
		reloadOK(t)
	})

	writeHosts(false)
	reloadOK(t)
	// Refused by the TLS registry itself (not by DNS for the made-up name).
	err := pull(ref)
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), addr) {
		t.Fatalf("pull without a client certificate = %v, want Unavailable from %s", err, addr)
	}

	writeHosts(true)
	reloadOK(t)
	if err := pull(ref); err != nil {
		t.Fatalf("pull over TLS with the CA and a client certificate: %v", err)
	}
	st, err := env.img.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil || st.GetImage() == nil {
		t.Fatalf("ImageStatus after the TLS pull: %v, %v", st, err)
	}
	removeImage(t, ref)
}
