package spec

import (
	"os"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestWithDevices(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"plain": "x"})
	link := filepath.Join(dir, "null-link")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		d         *runtimeapi.Device
		wantPath  string
		wantPerms string
		wantErr   error
	}{
		{"null", &runtimeapi.Device{ContainerPath: "/dev/xnull", HostPath: "/dev/null", Permissions: "mrw"}, "/dev/xnull", "mrw", nil},
		{"empty perms mean rwm", &runtimeapi.Device{ContainerPath: "/dev/xnull", HostPath: "/dev/null"}, "/dev/xnull", "rwm", nil},
		{"symlink to a device", &runtimeapi.Device{ContainerPath: "/dev/n", HostPath: link, Permissions: "r"}, "/dev/n", "r", nil},
		{"bad perms", &runtimeapi.Device{ContainerPath: "/dev/x", HostPath: "/dev/null", Permissions: "rwx"}, "", "", errInvalid},
		{"missing", &runtimeapi.Device{ContainerPath: "/dev/x", HostPath: "/dev/does-not-exist"}, "", "", errInvalid},
		{"not a device", &runtimeapi.Device{ContainerPath: "/dev/x", HostPath: filepath.Join(dir, "plain")}, "", "", errInvalid},
		{"relative container path", &runtimeapi.Device{ContainerPath: "dev/x", HostPath: "/dev/null"}, "", "", errInvalid},
		{"relative host path", &runtimeapi.Device{ContainerPath: "/dev/x", HostPath: "null"}, "", "", errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := apply(t, WithDevices([]*runtimeapi.Device{tc.d}))
			if !checkErr(t, err, tc.wantErr) {
				return
			}
			if len(s.Linux.Devices) != 1 {
				t.Fatalf("devices = %+v", s.Linux.Devices)
			}
			d, r := s.Linux.Devices[0], s.Linux.Resources.Devices[0]
			if d.Path != tc.wantPath || d.Type != "c" || d.Major != 1 || d.Minor != 3 {
				t.Errorf("device = %+v", d)
			}
			if !r.Allow || r.Type != "c" || *r.Major != 1 || *r.Minor != 3 || r.Access != tc.wantPerms {
				t.Errorf("cgroup rule = %+v", r)
			}
		})
	}
}

func TestDeviceDirectory(t *testing.T) {
	s, err := apply(t, WithDevices([]*runtimeapi.Device{{ContainerPath: "/dev/host", HostPath: "/dev", Permissions: "r"}}))
	checkErr(t, err, nil)
	found := false
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/host/null" {
			found = true
		}
	}
	if !found {
		t.Errorf("/dev/host/null not among %d devices", len(s.Linux.Devices))
	}
}
