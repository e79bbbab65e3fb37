package cri

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestValidateSandboxConfig(t *testing.T) {
	good := func() *runtimeapi.PodSandboxConfig {
		return &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"},
			Hostname:     "p",
			LogDirectory: "/var/log/pods/ns_p_u",
			DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}, Options: []string{"ndots:5"}},
		}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig
		wantErr bool
	}{
		{"valid", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { return c }, false},
		{"no log dir", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { c.LogDirectory = ""; return c }, false},
		{"no hostname", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { c.Hostname = ""; return c }, false},
		{"nil config", func(*runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { return nil }, true},
		{"nil metadata", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { c.Metadata = nil; return c }, true},
		{"no name", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { c.Metadata.Name = ""; return c }, true},
		{"no namespace", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { c.Metadata.Namespace = ""; return c }, true},
		{"no uid", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { c.Metadata.Uid = ""; return c }, true},
		{"relative log dir", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.LogDirectory = "var/log"
			return c
		}, true},
		{"dotdot log dir", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.LogDirectory = "/var/../etc"
			return c
		}, true},
		{"hostname with space", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { c.Hostname = "a b"; return c }, true},
		{"dns server not an ip", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.DnsConfig.Servers = []string{"dns.example"}
			return c
		}, true},
		{"dns option with space", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.DnsConfig.Options = []string{"a b"}
			return c
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateSandboxConfig(tc.mutate(good()))
			if tc.wantErr != (err != nil) || (err != nil && !errdefs.IsInvalidArgument(err)) {
				t.Fatalf("validateSandboxConfig = %v, want error %v (InvalidArgument)", err, tc.wantErr)
			}
		})
	}
}

func TestSetupRequest(t *testing.T) {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"},
		PortMappings: []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"},
			{ContainerPort: 80},
		},
		DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}},
	}
	req := setupRequest("id", "/run/netns/id", cfg)
	if req.ID != "id" || req.NetNS != "/run/netns/id" || req.Name != "p" || req.Namespace != "ns" || req.UID != "u" {
		t.Errorf("request = %+v", req)
	}
	if len(req.PortMappings) != 2 || req.PortMappings[0].Protocol != "UDP" || req.PortMappings[0].HostPort != 5353 ||
		req.PortMappings[0].HostIP != "127.0.0.1" || req.PortMappings[1].Protocol != "TCP" {
		t.Errorf("port mappings = %+v", req.PortMappings)
	}
	if req.DNS == nil || req.DNS.Servers[0] != "10.0.0.10" {
		t.Errorf("dns = %+v", req.DNS)
	}
}
