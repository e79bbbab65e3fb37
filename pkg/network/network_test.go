package network

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{"default", DefaultConfig(), ""},
		{"empty conf_dir", mod(func(c *Config) { c.ConfDir = "" }), "conf_dir"},
		{"relative conf_dir", mod(func(c *Config) { c.ConfDir = "etc/cni" }), "conf_dir"},
		{"root cache_dir", mod(func(c *Config) { c.CacheDir = "/" }), "cache_dir"},
		{"empty netns_dir", mod(func(c *Config) { c.NetNSDir = "" }), "netns_dir"},
		{"no bin_dirs", mod(func(c *Config) { c.BinDirs = nil }), "bin_dirs"},
		{"relative bin dir", mod(func(c *Config) { c.BinDirs = []string{"/usr/lib/cni", "bin"} }), "bin_dirs[1]"},
		{"one bin dir", mod(func(c *Config) { c.BinDirs = []string{"/opt/cni/bin"} }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want InvalidArgument naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	tests := []struct {
		name                       string
		servers, searches, options []string
		want                       string
		wantNil                    bool
		wantErr                    bool
	}{
		{name: "empty means copy the host's", wantNil: true},
		{
			name:     "full",
			servers:  []string{"10.96.0.10", "fd00::a"},
			searches: []string{"default.svc.cluster.local", "svc.cluster.local"},
			options:  []string{"ndots:5", "edns0"},
			want: "nameserver 10.96.0.10\nnameserver fd00::a\n" +
				"search default.svc.cluster.local svc.cluster.local\noptions ndots:5 edns0\n",
		},
		{name: "only options", options: []string{"ndots:2"}, want: "options ndots:2\n"},
		{name: "only searches", searches: []string{"example.com"}, want: "search example.com\n"},
		{name: "server not an ip", servers: []string{"dns.example.com"}, wantErr: true},
		{name: "search with space", searches: []string{"a b"}, wantErr: true},
		{name: "empty option", options: []string{""}, wantErr: true},
		{name: "newline injection", options: []string{"ndots:1\nnameserver 1.2.3.4"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolvConf(tt.servers, tt.searches, tt.options)
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ResolvConf() error = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantNil {
				if got != nil {
					t.Fatalf("ResolvConf() = %q, want nil", got)
				}
				return
			}
			if string(got) != tt.want {
				t.Fatalf("ResolvConf() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestWriteResolvConf(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "host-resolv.conf")
	if err := os.WriteFile(host, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dns  *DNS
		want string
	}{
		{"nil copies host", nil, "nameserver 192.0.2.53\n"},
		{"empty copies host", &DNS{}, "nameserver 192.0.2.53\n"},
		{"given", &DNS{Servers: []string{"10.0.0.10"}}, "nameserver 10.0.0.10\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "resolv.conf")
			if err := WriteResolvConf(p, tt.dns, host); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if err := WriteResolvConf(filepath.Join(dir, "x"), nil, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("WriteResolvConf with a missing host file succeeded")
	}
}

func TestHosts(t *testing.T) {
	const localhost = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	tests := []struct {
		name     string
		hostname string
		ips      []netip.Addr
		want     string
		wantErr  bool
	}{
		{name: "no ips", hostname: "web-0", want: localhost},
		{
			name:     "dual stack",
			hostname: "web-0",
			ips:      []netip.Addr{netip.MustParseAddr("10.99.0.5"), netip.MustParseAddr("fd00::5")},
			want:     localhost + "10.99.0.5\tweb-0\nfd00::5\tweb-0\n",
		},
		{
			name:     "mapped v4 and invalid skipped",
			hostname: "h",
			ips:      []netip.Addr{netip.MustParseAddr("::ffff:10.1.2.3"), {}},
			want:     localhost + "10.1.2.3\th\n",
		},
		{name: "empty hostname", hostname: "", wantErr: true},
		{name: "hostname with space", hostname: "a b", wantErr: true},
		{name: "hostname too long", hostname: strings.Repeat("a", 254), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Hosts(tt.hostname, tt.ips)
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("Hosts() error = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Hosts() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestWriteHostsAndHostname(t *testing.T) {
	dir := t.TempDir()
	if err := WriteHostname(filepath.Join(dir, "hostname"), "pod-a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "hostname")); string(got) != "pod-a\n" {
		t.Fatalf("hostname = %q", got)
	}
	if err := WriteHostname(filepath.Join(dir, "hostname"), "bad\nname"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("WriteHostname(bad) = %v, want InvalidArgument", err)
	}
	if err := WriteHosts(filepath.Join(dir, "hosts"), "pod-a", []netip.Addr{netip.MustParseAddr("10.99.1.2")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "hosts")); !bytes.HasSuffix(got, []byte("10.99.1.2\tpod-a\n")) {
		t.Fatalf("hosts = %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temp files left behind: %v", entries)
	}
}

func TestSortIPv4First(t *testing.T) {
	p := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	tests := []struct {
		name    string
		in, out []netip.Addr
	}{
		{"empty", nil, nil},
		{"v4 already first", p("10.0.0.1", "fd00::1"), p("10.0.0.1", "fd00::1")},
		{"v6 first", p("fd00::1", "fd00::2", "10.0.0.1", "10.0.0.2"), p("10.0.0.1", "fd00::1", "fd00::2", "10.0.0.2")},
		{"only v6", p("fd00::1", "fd00::2"), p("fd00::1", "fd00::2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sortIPv4First(tt.in)
			if !reflect.DeepEqual(tt.in, tt.out) {
				t.Fatalf("got %v, want %v", tt.in, tt.out)
			}
		})
	}
}

func TestConvertResultKeepsSandboxSide(t *testing.T) {
	idx := func(i int) *int { return &i }
	cidr := func(s string) net.IPNet {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return *n
	}
	raw := &types100.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*types100.Interface{
			{Name: "cri0", Mac: "aa:aa:aa:aa:aa:aa"},
			{Name: "veth1", Mac: "bb:bb:bb:bb:bb:bb"},
			{Name: "eth0", Mac: "cc:cc:cc:cc:cc:cc", Sandbox: "/run/netns/x"},
		},
		IPs: []*types100.IPConfig{
			{Interface: idx(0), Address: cidr("10.99.0.1/16")},
			{Interface: idx(2), Address: cidr("fd00::7/64")},
			{Interface: idx(2), Address: cidr("10.99.0.7/16")},
		},
	}
	got, err := convertResult(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := &Result{
		IPs:        []netip.Addr{netip.MustParseAddr("10.99.0.7"), netip.MustParseAddr("fd00::7")},
		Interfaces: []Interface{{Name: "eth0", MAC: "cc:cc:cc:cc:cc:cc"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("convertResult() = %+v, want %+v", got, want)
	}
	if got.PrimaryIP() != "10.99.0.7" {
		t.Fatalf("PrimaryIP() = %q", got.PrimaryIP())
	}
}

func TestDefaultConfListMatchesHackFile(t *testing.T) {
	data, err := os.ReadFile("../../hack/cni/" + DefaultConfName)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != DefaultConfList {
		t.Fatalf("hack/cni/%s differs from DefaultConfList; regenerate it", DefaultConfName)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Network.Type)
	}
	if list.Name != "cri-runtime" || !reflect.DeepEqual(types, []string{"bridge", "portmap", "loopback"}) {
		t.Fatalf("default network %q with plugins %v", list.Name, types)
	}
}

func TestWriteDefaultConfig(t *testing.T) {
	t.Run("empty dir gets the default", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "net.d")
		if err := WriteDefaultConfig(dir); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, DefaultConfName))
		if err != nil || string(got) != DefaultConfList {
			t.Fatalf("read back: %v", err)
		}
		if err := WriteDefaultConfig(dir); err != nil { // idempotent
			t.Fatal(err)
		}
	})
	t.Run("existing config is kept", func(t *testing.T) {
		dir := t.TempDir()
		mine := filepath.Join(dir, "99-mine.conf")
		if err := os.WriteFile(mine, []byte(`{"cniVersion":"1.0.0","name":"mine","type":"bridge"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteDefaultConfig(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, DefaultConfName)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("default written next to an existing config: %v", err)
		}
	})
}

// TestReadyReloads needs no root: Ready only looks at files.
func TestReadyReloads(t *testing.T) {
	confDir, binDir := t.TempDir(), t.TempDir()
	m, err := New(Config{
		ConfDir:  confDir,
		BinDirs:  []string{binDir},
		CacheDir: filepath.Join(t.TempDir(), "cache"),
		NetNSDir: filepath.Join(t.TempDir(), "netns"),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Ready()
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "no network config") {
		t.Fatalf("Ready() on an empty dir = %v, want FailedPrecondition saying no network config", err)
	}

	// A broken first file is reported, not skipped.
	if err := os.WriteFile(filepath.Join(confDir, "05-broken.conflist"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "05-broken.conflist") {
		t.Fatalf("Ready() with a broken config = %v", err)
	}
	if err := os.Remove(filepath.Join(confDir, "05-broken.conflist")); err != nil {
		t.Fatal(err)
	}

	if err := WriteDefaultConfig(confDir); err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), `"bridge"`) {
		t.Fatalf("Ready() with plugins missing = %v, want one naming the bridge plugin", err)
	}
	for _, p := range []string{"bridge", "portmap", "loopback"} {
		if err := os.WriteFile(filepath.Join(binDir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("Ready() after the config appeared = %v", err)
	}
	if name, err := m.NetworkName(); err != nil || name != "cri-runtime" {
		t.Fatalf("NetworkName() = %q, %v", name, err)
	}

	// An earlier file in name order takes over; an in-place edit reloads.
	other := filepath.Join(confDir, "01-other.conflist")
	if err := os.WriteFile(other, []byte(`{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if name, _ := m.NetworkName(); name != "other" {
		t.Fatalf("NetworkName() = %q after 01-other appeared", name)
	}
	if err := os.WriteFile(other, []byte(`{"cniVersion":"1.0.0","name":"other2","plugins":[{"type":"bridge"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if name, _ := m.NetworkName(); name != "other2" {
		t.Fatalf("NetworkName() = %q after an in-place edit", name)
	}

	for _, f := range []string{other, filepath.Join(confDir, DefaultConfName)} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Ready(); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("Ready() after the dir was emptied = %v", err)
	}
}

func TestSetPodCIDR(t *testing.T) {
	m, err := New(Config{ConfDir: "/nonexistent", BinDirs: []string{"/nonexistent"},
		CacheDir: filepath.Join(t.TempDir(), "c"), NetNSDir: "/run/x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPodCIDR("10.244.1.0/24,fd00:10:244:1::/64"); err != nil {
		t.Fatal(err)
	}
	rt := m.runtimeConf(SetupRequest{ID: "a"}, "")
	want := [][]map[string]interface{}{{{"subnet": "10.244.1.0/24"}}, {{"subnet": "fd00:10:244:1::/64"}}}
	if !reflect.DeepEqual(rt.CapabilityArgs["ipRanges"], want) {
		t.Fatalf("ipRanges = %v", rt.CapabilityArgs["ipRanges"])
	}
	if err := m.SetPodCIDR("not-a-cidr"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("SetPodCIDR(bad) = %v", err)
	}
}

func TestSetupRequestValidate(t *testing.T) {
	tests := []struct {
		name string
		req  SetupRequest
		ok   bool
	}{
		{"ok", SetupRequest{ID: "a", NetNS: "/run/netns/a"}, true},
		{"no id", SetupRequest{NetNS: "/x"}, false},
		{"no netns", SetupRequest{ID: "a"}, false},
		{"bad protocol", SetupRequest{ID: "a", NetNS: "/x", PortMappings: []PortMapping{{ContainerPort: 80, HostPort: 80, Protocol: "icmp"}}}, false},
		{"upper protocol ok", SetupRequest{ID: "a", NetNS: "/x", PortMappings: []PortMapping{{ContainerPort: 80, HostPort: 80, Protocol: "TCP"}}}, true},
		{"port zero", SetupRequest{ID: "a", NetNS: "/x", PortMappings: []PortMapping{{ContainerPort: 0, HostPort: 80}}}, false},
		{"bad host ip", SetupRequest{ID: "a", NetNS: "/x", PortMappings: []PortMapping{{ContainerPort: 80, HostPort: 80, HostIP: "x"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.validate(true)
			if tt.ok != (err == nil) || (err != nil && !errdefs.IsInvalidArgument(err)) {
				t.Fatalf("validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
