package host

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
)

func TestKernelVersion(t *testing.T) {
	tests := []struct {
		release      string
		major, minor int
		ok           bool
	}{
		{"6.18.44-fc-v657", 6, 18, true},
		{"5.12.0", 5, 12, true},
		{"5.19-rc1", 5, 19, true},
		{"4.19.0-25-amd64", 4, 19, true},
		{"6", 0, 0, false},
		{"x.y", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.release, func(t *testing.T) {
			major, minor, ok := kernelVersion(tc.release)
			if major != tc.major || minor != tc.minor || ok != tc.ok {
				t.Errorf("got %d.%d %v, want %d.%d %v", major, minor, ok, tc.major, tc.minor, tc.ok)
			}
		})
	}
}

func TestParseFeatures(t *testing.T) {
	// Trimmed from `runc features` of runc 1.5.3.
	const runc = `{"ociVersionMin":"1.0.0","mountOptions":["bind","rbind","ro","rro","rshared"],
		"linux":{"namespaces":["cgroup","ipc","mount","network","pid","time","user","uts"],
		"mountExtensions":{"idmap":{"enabled":true}}}}`
	noRRO := strings.Replace(runc, `"rro",`, "", 1)
	noIDMap := strings.Replace(runc, `"enabled":true`, `"enabled":false`, 1)
	noUser := strings.Replace(runc, `"user",`, "", 1)
	noExt := `{"mountOptions":["rro"],"linux":{"namespaces":["user"]}}`
	tests := []struct {
		name      string
		out       string
		release   string
		probe     error
		rro, user bool
	}{
		{"runc 1.5 on 6.18", runc, "6.18.44-fc-v657", nil, true, true},
		{"no rro option", noRRO, "6.18.0", nil, false, true},
		{"kernel without mount_setattr", runc, "5.10.0", nil, false, false},
		{"kernel without idmapped overlay layers", runc, "5.15.0", nil, true, false},
		{"idmap disabled", noIDMap, "6.18.0", nil, true, false},
		{"no user namespace", noUser, "6.18.0", nil, true, false},
		{"no mount extensions (runc 1.1)", noExt, "6.18.0", nil, true, false},
		{"live probe failed", runc, "6.18.0", errors.New("EINVAL"), true, false},
		{"not JSON (crun 1.8: unknown command)", "unknown command features", "6.18.0", nil, false, false},
		{"empty object", "{}", "6.18.0", nil, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := parseFeatures([]byte(tc.out), tc.release, tc.probe)
			if f.RecursiveReadOnly != tc.rro || f.UserNamespaces != tc.user {
				t.Errorf("rro %v userns %v (missing %q), want rro %v userns %v", f.RecursiveReadOnly, f.UserNamespaces, f.Why, tc.rro, tc.user)
			}
			if (!f.RecursiveReadOnly || !f.UserNamespaces) && len(f.Why) == 0 {
				t.Error("a missing feature must say why")
			}
		})
	}
}

func TestCapabilitiesMatchesProc(t *testing.T) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	want, err := spec.HeldCapabilities(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := Capabilities(); !slices.Equal(got, want) {
		t.Errorf("Capabilities() = %q, want %q", got, want)
	}
}

// TestProbeIDMappedOverlay runs the real probe: a user namespace from a
// stopped helper, idmapped lowers, an overlay on top.
func TestProbeIDMappedOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: idmapped mounts and user namespaces with arbitrary mappings")
	}
	dir := t.TempDir()
	if err := probeIDMappedOverlay(dir); err != nil {
		t.Skipf("this kernel or filesystem cannot idmap overlay layers: %v", err)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the probe left %v behind", left)
	}
}

func TestTraversable(t *testing.T) {
	dir := t.TempDir()
	inner := dir + "/a/b"
	if err := os.MkdirAll(inner, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := Traversable(inner); err != nil && !strings.Contains(err.Error(), "/tmp") {
		t.Fatalf("Traversable(%s) = %v", inner, err)
	}
	if err := os.Chmod(dir+"/a", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Traversable(inner); err == nil || !strings.Contains(err.Error(), dir+"/a ") {
		t.Errorf("Traversable with a 0700 parent = %v, want it named", err)
	}
	if err := Traversable(dir + "/missing"); err == nil {
		t.Error("a missing dir is Traversable")
	}
}
