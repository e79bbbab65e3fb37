package spec

import (
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestSeccompFor(t *testing.T) {
	tests := []struct {
		name       string
		p          *runtimeapi.SecurityProfile
		legacy     string
		privileged bool
		want       SeccompKind
		wantPath   string
		wantErr    bool
	}{
		{"nothing", nil, "", false, SeccompUnset, "", false},
		{"field default", &runtimeapi.SecurityProfile{}, "", false, SeccompRuntimeDefault, "", false},
		{"field wins over legacy", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, "runtime/default", false, SeccompUnconfined, "", false},
		{"field localhost", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/p.json"}, "", false, SeccompLocalhost, "/p.json", false},
		{"field unknown", &runtimeapi.SecurityProfile{ProfileType: 9}, "", false, SeccompUnset, "", true},
		{"legacy unconfined", nil, "unconfined", false, SeccompUnconfined, "", false},
		{"legacy runtime/default", nil, "runtime/default", false, SeccompRuntimeDefault, "", false},
		{"legacy docker/default", nil, "docker/default", false, SeccompRuntimeDefault, "", false},
		{"legacy localhost", nil, "localhost//var/p.json", false, SeccompLocalhost, "/var/p.json", false},
		{"legacy unknown", nil, "strict", false, SeccompUnset, "", true},
		{"privileged", &runtimeapi.SecurityProfile{}, "", true, SeccompUnconfined, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := seccompFor(tc.p, tc.legacy, tc.privileged)
			if (c.err != nil) != tc.wantErr || c.Kind != tc.want || c.Path != tc.wantPath {
				t.Errorf("choice = %+v, want kind %d path %q err %v", c, tc.want, tc.wantPath, tc.wantErr)
			}
		})
	}
}

func TestWithSeccomp(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	writeFiles(t, dir, map[string]string{
		"good.json": `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}`,
		"bad.json":  `{"defaultAction":`,
	})
	unsetDefault := DefaultConfig()
	unsetDefault.UnsetSeccompProfile = "runtime/default"
	customDefault := DefaultConfig()
	customDefault.DefaultSeccompProfilePath = good
	missingDefault := DefaultConfig()
	missingDefault.DefaultSeccompProfilePath = filepath.Join(dir, "none.json")
	tests := []struct {
		name       string
		choice     SeccompChoice
		cfg        Config
		wantAction specs.LinuxSeccompAction // "" = no seccomp
		wantErr    error
	}{
		{"unset is unconfined", SeccompChoice{}, DefaultConfig(), "", nil},
		{"unset with runtime/default config", SeccompChoice{}, unsetDefault, specs.ActErrno, nil},
		{"unconfined", SeccompChoice{Kind: SeccompUnconfined}, DefaultConfig(), "", nil},
		{"runtime default is moby's", SeccompChoice{Kind: SeccompRuntimeDefault}, DefaultConfig(), specs.ActErrno, nil},
		{"custom default", SeccompChoice{Kind: SeccompRuntimeDefault}, customDefault, specs.ActErrno, nil},
		{"custom default missing", SeccompChoice{Kind: SeccompRuntimeDefault}, missingDefault, "", errdefs.ErrFailedPrecondition},
		{"localhost", SeccompChoice{Kind: SeccompLocalhost, Path: good}, DefaultConfig(), specs.ActErrno, nil},
		{"localhost missing", SeccompChoice{Kind: SeccompLocalhost, Path: filepath.Join(dir, "none.json")}, DefaultConfig(), "", errInvalid},
		{"localhost invalid", SeccompChoice{Kind: SeccompLocalhost, Path: filepath.Join(dir, "bad.json")}, DefaultConfig(), "", errInvalid},
		{"localhost relative", SeccompChoice{Kind: SeccompLocalhost, Path: "good.json"}, DefaultConfig(), "", errInvalid},
		{"localhost directory", SeccompChoice{Kind: SeccompLocalhost, Path: dir}, DefaultConfig(), "", errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithSeccomp(tc.choice, tc.cfg))
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			switch {
			case tc.wantAction == "" && s.Linux.Seccomp != nil:
				t.Errorf("seccomp = %+v, want none", s.Linux.Seccomp)
			case tc.wantAction != "" && (s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != tc.wantAction || len(s.Linux.Seccomp.Syscalls) == 0):
				t.Errorf("seccomp = %+v, want default action %s", s.Linux.Seccomp, tc.wantAction)
			}
		})
	}
}

// The moby profile allows e.g. ptrace-ish syscalls only with the matching
// capability, so it must be built after the capabilities.
func TestSeccompFollowsCapabilities(t *testing.T) {
	count := func(caps []string) int {
		s := &specs.Spec{}
		checkErr(t, ApplyOpts(s, WithCapabilityList(caps), WithSeccomp(SeccompChoice{Kind: SeccompRuntimeDefault}, DefaultConfig())), nil)
		n := 0
		for _, sc := range s.Linux.Seccomp.Syscalls {
			n += len(sc.Names)
		}
		return n
	}
	if plain, admin := count(nil), count([]string{"SYS_ADMIN"}); admin <= plain {
		t.Errorf("allowed syscalls with CAP_SYS_ADMIN %d <= without %d", admin, plain)
	}
}
