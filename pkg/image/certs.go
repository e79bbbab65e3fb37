package image

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// loadTLS reads the CA and client files now, so that a missing or broken
// file is reported when the config is loaded rather than at a pull.
func loadTLS(caFiles []string, pairs [][2]string, skipVerify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}
	if len(caFiles) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, f := range caFiles {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("ca: %w: %w", err, errdefs.ErrInvalidArgument)
			}
			if !pool.AppendCertsFromPEM(data) {
				return nil, fmt.Errorf("ca: %s holds no PEM certificate: %w", f, errdefs.ErrInvalidArgument)
			}
		}
		cfg.RootCAs = pool
	}
	for _, p := range pairs {
		certPEM, err := os.ReadFile(p[0])
		if err != nil {
			return nil, fmt.Errorf("client: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		keyPEM := certPEM
		if p[1] != "" {
			if keyPEM, err = os.ReadFile(p[1]); err != nil {
				return nil, fmt.Errorf("client: %w: %w", err, errdefs.ErrInvalidArgument)
			}
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client: %s: %v: %w", p[0], err, errdefs.ErrInvalidArgument)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	return cfg, nil
}

// loadCertFiles reads a Docker-style certs.d host directory: *.crt are
// CAs, *.cert client certificates with the *.key of the same name (or the
// key inside the .cert). They apply to the server, the pulled host.
func loadCertFiles(dir string) (*hostsFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("registry hosts dir: %w", err)
	}
	var caFiles []string
	var pairs [][2]string
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".crt"):
			caFiles = append(caFiles, name)
		case strings.HasSuffix(e.Name(), ".cert"):
			pair := [2]string{name, ""}
			if key := strings.TrimSuffix(name, ".cert") + ".key"; fileExists(key) {
				pair[1] = key
			}
			pairs = append(pairs, pair)
		}
	}
	f := &hostsFile{path: dir, server: hostEntry{scheme: "https", apiRoot: "/v2", caps: capAll}}
	if len(caFiles) > 0 || len(pairs) > 0 {
		cfg, err := loadTLS(caFiles, pairs, false)
		if err != nil {
			return nil, fmt.Errorf("registry certs dir %s: %w", dir, err)
		}
		f.server.tls = cfg
	}
	return f, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
