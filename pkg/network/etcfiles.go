package network

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// HostResolvConf is the host's resolver config, copied into sandboxes that
// have no DNSConfig.
const HostResolvConf = "/etc/resolv.conf"

// ResolvConf renders a resolv.conf from a CRI DNSConfig. Every server must
// be an IP address; entries must not contain white space. The result is
// nil when all three lists are empty: the caller copies the host's file
// instead (WriteResolvConf does).
func ResolvConf(servers, searches, options []string) ([]byte, error) {
	if len(servers) == 0 && len(searches) == 0 && len(options) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	for _, s := range servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("dns server %q is not an IP address: %w", s, errdefs.ErrInvalidArgument)
		}
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if err := checkWords("dns search domain", searches); err != nil {
		return nil, err
	}
	if err := checkWords("dns option", options); err != nil {
		return nil, err
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes(), nil
}

// WriteResolvConf writes the sandbox's resolv.conf at path: rendered from
// dns when it has any entry, else a copy of hostResolvConf (HostResolvConf
// when empty).
func WriteResolvConf(path string, dns *DNS, hostResolvConf string) error {
	var data []byte
	if dns != nil {
		var err error
		if data, err = ResolvConf(dns.Servers, dns.Searches, dns.Options); err != nil {
			return err
		}
	}
	if data == nil {
		if hostResolvConf == "" {
			hostResolvConf = HostResolvConf
		}
		var err error
		if data, err = os.ReadFile(hostResolvConf); err != nil {
			return fmt.Errorf("read host resolv.conf: %w", err)
		}
	}
	return writeFileAtomic(path, data, 0o644)
}

// Hosts renders a sandbox's /etc/hosts: the localhost lines, then each IP
// mapped to hostname.
func Hosts(hostname string, ips []netip.Addr) ([]byte, error) {
	if err := checkHostname(hostname); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n")
	for _, ip := range ips {
		if !ip.IsValid() {
			continue
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip.Unmap(), hostname)
	}
	return b.Bytes(), nil
}

// WriteHosts writes Hosts(hostname, ips) at path.
func WriteHosts(path, hostname string, ips []netip.Addr) error {
	data, err := Hosts(hostname, ips)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o644)
}

// Hostname renders /etc/hostname.
func Hostname(hostname string) ([]byte, error) {
	if err := checkHostname(hostname); err != nil {
		return nil, err
	}
	return []byte(hostname + "\n"), nil
}

// WriteHostname writes Hostname(hostname) at path.
func WriteHostname(path, hostname string) error {
	data, err := Hostname(hostname)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o644)
}

func checkHostname(h string) error {
	if h == "" {
		return fmt.Errorf("hostname is empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(h) > 253 {
		return fmt.Errorf("hostname is longer than 253 bytes: %w", errdefs.ErrInvalidArgument)
	}
	if strings.ContainsFunc(h, isSpaceOrControl) {
		return fmt.Errorf("hostname %q contains white space: %w", h, errdefs.ErrInvalidArgument)
	}
	return nil
}

func checkWords(what string, words []string) error {
	for _, w := range words {
		if w == "" || strings.ContainsFunc(w, isSpaceOrControl) {
			return fmt.Errorf("%s %q is empty or contains white space: %w", what, w, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// writeFileAtomic writes data to a temp file beside path and renames it
// over path, so that a reader (a container bind-mounting it) never sees a
// partial file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, perm)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}
