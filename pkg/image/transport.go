package image

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

func newTransports() (secure, skipVerify http.RoundTripper) {
	base := func(skip bool) *http.Transport {
		return &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			TLSClientConfig:       &tls.Config{InsecureSkipVerify: skip, MinVersion: tls.VersionTLS12},
		}
	}
	return base(false), base(true)
}

// schemePolicy enforces "plain http only where the config says http://".
// go-containerregistry addresses loopback and RFC 1918 hosts over http on
// its own; a request to such a host that the config did not name with
// http:// is sent over https instead.
type schemePolicy struct {
	next      http.RoundTripper
	allowHTTP map[string]bool
}

func (p schemePolicy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !p.allowHTTP[req.URL.Host] {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	return p.next.RoundTrip(req)
}

// roundTripper is the transport of one endpoint: its hosts.toml entry's
// own TLS when it has one, else the service's (skipping verification where
// [registry.configs] says insecure_skip_verify), with the entry's headers
// and API root, the http:// policy, and the byte count on top.
func (s *Service) roundTripper(ep endpoint) http.RoundTripper {
	next := s.transport
	if next == nil {
		switch {
		case ep.via != nil && ep.via.rt != nil:
			next = ep.via.rt
		case s.registry().cfg.Configs[ep.host].InsecureSkipVerify:
			next = s.skipVerify
		default:
			next = s.secure
		}
	}
	if ep.via != nil && (len(ep.via.header) > 0 || ep.via.apiRoot != "/v2") {
		next = hostRewrite{next: next, host: ep.host, apiRoot: ep.via.apiRoot, header: ep.via.header}
	}
	next = schemePolicy{next: next, allowHTTP: map[string]bool{ep.host: ep.insecure}}
	if d := time.Duration(s.progressTimeout.Load()); d > 0 {
		next = progressTransport{next: next, timeout: d}
	}
	next = capTransport{next: next}
	if s.onBytes != nil {
		next = countingRoundTripper{next: next, add: s.onBytes}
	}
	return next
}

// hostRewrite sends a hosts.toml entry's headers with every request made
// for it (token requests included, as containerd does), and moves the
// registry API from /v2 to the entry's API root on its host.
type hostRewrite struct {
	next    http.RoundTripper
	host    string
	apiRoot string
	header  http.Header
}

func (h hostRewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, vs := range h.header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if h.apiRoot != "/v2" && req.URL.Host == h.host {
		if rest, ok := strings.CutPrefix(req.URL.Path, "/v2"); ok && (rest == "" || rest[0] == '/') {
			req.URL.Path = h.apiRoot + rest
			req.URL.RawPath = ""
		}
	}
	return h.next.RoundTrip(req)
}

// countingRoundTripper reports the bytes of every response body read
// from a registry (the image_pull_bytes metric).
type countingRoundTripper struct {
	next http.RoundTripper
	add  func(int64)
}

func (c countingRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil && resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, add: c.add}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	add func(int64)
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.add(int64(n))
	}
	return n, err
}
