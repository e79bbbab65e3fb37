package cri

import (
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// FuzzValidateRequests feeds random bytes, read as proto-encoded
// PodSandboxConfig and ContainerConfig, through the request validation
// RunPodSandbox and CreateContainer do before anything touches the host.
// It wants: no panic; every refusal of class InvalidArgument (the class
// the facade maps to codes.InvalidArgument); accepted names that cannot
// act as a path; and an accepted log path that stays inside its log
// directory. The seed corpus (testdata/fuzz/FuzzValidateRequests) runs in
// plain go test.
func FuzzValidateRequests(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		sb, err := proto.Marshal(seed.sb)
		if err != nil {
			f.Fatal(err)
		}
		c, err := proto.Marshal(seed.c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sb, c)
	}
	f.Fuzz(func(t *testing.T, sbData, cData []byte) {
		sb := &runtimeapi.PodSandboxConfig{}
		if proto.Unmarshal(sbData, sb) != nil {
			sb = nil // the facade never sees undecodable bytes; nil is a real input
		}
		c := &runtimeapi.ContainerConfig{}
		if proto.Unmarshal(cData, c) != nil {
			c = nil
		}
		classOK := func(what string, err error) {
			t.Helper()
			if err != nil && !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%s: error of class %s, want InvalidArgument: %v", what, errdefs.ClassName(err), err)
			}
		}
		sbErr := validateSandboxConfig(sb)
		classOK("validateSandboxConfig", sbErr)
		if sbErr == nil {
			md := sb.GetMetadata()
			for _, n := range []string{md.GetName(), md.GetNamespace(), md.GetUid()} {
				checkAcceptedName(t, n)
			}
			if d := sb.GetLogDirectory(); d != "" && !filepath.IsAbs(d) {
				t.Fatalf("accepted a relative log directory %q", d)
			}
		}
		cErr := validateContainerConfig(c)
		classOK("validateContainerConfig", cErr)
		if cErr == nil {
			checkAcceptedName(t, c.GetMetadata().GetName())
		}
		for _, n := range []string{c.GetMetadata().GetName(), sb.GetMetadata().GetName(), sb.GetHostname()} {
			err := validateName("name", n)
			classOK("validateName", err)
			if err == nil {
				checkAcceptedName(t, n)
			}
		}
		// containerLogPath on whatever directory was sent, validated or not.
		dir, rel := sb.GetLogDirectory(), c.GetLogPath()
		p, err := containerLogPath(dir, rel)
		classOK("containerLogPath", err)
		if err == nil && p != "" {
			base := filepath.Clean(dir)
			if !strings.HasPrefix(p, strings.TrimSuffix(base, "/")+"/") || p == base {
				t.Fatalf("log path %q (dir %q, log_path %q) escapes its directory", p, dir, rel)
			}
			if r, err := filepath.Rel(base, p); err != nil || r == ".." || strings.HasPrefix(r, "../") {
				t.Fatalf("log path %q is not below %q (%q, %v)", p, base, r, err)
			}
		}
	})
}

// checkAcceptedName fails when an accepted metadata name could act as a
// path or is out of bounds.
func checkAcceptedName(t *testing.T, n string) {
	t.Helper()
	if n == "" || len(n) > maxNameLen || strings.ContainsAny(n, "/\x00") || n == "." || strings.Contains(n, "..") {
		t.Fatalf("accepted name %q", n)
	}
}

type fuzzSeed struct {
	sb *runtimeapi.PodSandboxConfig
	c  *runtimeapi.ContainerConfig
}

// fuzzSeeds are the interesting shapes: a valid pair, traversal in names
// and log paths, NULs, absolute and relative directories, a huge name.
func fuzzSeeds() []fuzzSeed {
	md := func(name string) *runtimeapi.PodSandboxMetadata {
		return &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "ns", Uid: "uid"}
	}
	ctr := func(name, log string) *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: "busybox"}, LogPath: log}
	}
	return []fuzzSeed{
		{&runtimeapi.PodSandboxConfig{Metadata: md("web"), LogDirectory: "/var/log/pods/ns_web_uid", Hostname: "web"}, ctr("app", "app/0.log")},
		{&runtimeapi.PodSandboxConfig{Metadata: md("a/../b"), LogDirectory: "/var/log/pods/x"}, ctr("..", "../../../etc/evil.log")},
		{&runtimeapi.PodSandboxConfig{Metadata: md("n\x00ul"), LogDirectory: "relative/dir"}, ctr("c", "/etc/evil.log")},
		{&runtimeapi.PodSandboxConfig{Metadata: md("ok"), LogDirectory: "/"}, ctr("c", "a/../../x")},
		{&runtimeapi.PodSandboxConfig{Metadata: md("ok"), LogDirectory: "/var/log/pods/p/"}, ctr("c", ".")},
		{&runtimeapi.PodSandboxConfig{Metadata: md(strings.Repeat("x", 300)), Hostname: "-bad-"}, ctr(strings.Repeat("y", 254), "x.log")},
		{&runtimeapi.PodSandboxConfig{Metadata: md("dns"), DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"not-an-ip"}, Options: []string{"ndots:5\nnameserver 6.6.6.6"}}}, &runtimeapi.ContainerConfig{}},
		{&runtimeapi.PodSandboxConfig{}, nil},
	}
}
