package testutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// PKI is a private CA with a server certificate for 127.0.0.1 and a client
// certificate, all as PEM files in one dir.
type PKI struct {
	Dir        string
	CA         string // the CA certificate
	ServerCert string // for IP 127.0.0.1
	ServerKey  string
	ClientCert string // signed by the CA, for client auth
	ClientKey  string
	// OtherClientCert/Key are signed by another CA: a server that checks
	// client certificates against CA refuses them.
	OtherClientCert string
	OtherClientKey  string
}

// NewPKI makes a PKI in a temp dir of t.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{Dir: dir}
	write := func(name string, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	sign := func(tmpl *x509.Certificate, parent *x509.Certificate, pub any, parentKey *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, der
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k := newKey()
		c, der := sign(&x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, &k.PublicKey, k)
		return c, k, der
	}
	ca, caKey, caDER := newCA("cri-runtime test CA")
	p.CA = write("ca.crt", "CERTIFICATE", caDER)

	sk := newKey()
	_, sDER := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &sk.PublicKey, caKey)
	p.ServerCert = write("server.crt", "CERTIFICATE", sDER)
	p.ServerKey = write("server.key", "EC PRIVATE KEY", keyDER(sk))

	ck := newKey()
	_, cDER := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "cri-runtime test client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, &ck.PublicKey, caKey)
	p.ClientCert = write("client.cert", "CERTIFICATE", cDER)
	p.ClientKey = write("client.key", "EC PRIVATE KEY", keyDER(ck))

	other, otherKey, _ := newCA("another CA")
	ok := newKey()
	_, oDER := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "stranger"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, other, &ok.PublicKey, otherKey)
	p.OtherClientCert = write("other.cert", "CERTIFICATE", oDER)
	p.OtherClientKey = write("other.key", "EC PRIVATE KEY", keyDER(ok))
	return p
}

// ClientTLS is a TLS config that trusts the CA and presents the client
// certificate.
func (p *PKI) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// StartTLSRegistry is StartRegistry serving https with p's server
// certificate and requiring a client certificate signed by p's CA. It
// returns "127.0.0.1:<port>".
func StartTLSRegistry(t testing.TB, p *PKI) string {
	t.Helper()
	if _, err := os.Stat(RegistryBin); err != nil {
		t.Skipf("needs %s (apt-get install docker-registry; hack/install-test-tools.sh does)", RegistryBin)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"+
		"storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"+
		"http:\n  addr: %s\n  tls:\n    certificate: %s\n    key: %s\n    clientcas:\n      - %s\n",
		filepath.Join(dir, "data"), addr, p.ServerCert, p.ServerKey, p.CA)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(RegistryBin, "serve", cfgPath)
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
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: p.ClientTLS(t)}}
	defer client.CloseIdleConnections()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
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
