package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// maxDevicesPerDir bounds the walk of a device directory.
const maxDevicesPerDir = 4096

// errNotDevice marks a path that is neither a char nor a block device.
var errNotDevice = errors.New("not a device")

// deviceFromPath stats a host device node (without following a final
// symlink) and describes it at containerPath.
func deviceFromPath(hostPath, containerPath string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(hostPath, &st); err != nil {
		return specs.LinuxDevice{}, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errNotDevice
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     containerPath,
		Type:     typ,
		Major:    int64(unix.Major(uint64(st.Rdev))),
		Minor:    int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

// devicesFromDir walks a host directory of devices (as containerd does for
// a device directory), mapping hostDir to containerDir.
func devicesFromDir(hostDir, containerDir string, skip func(rel string, d fs.DirEntry) bool) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	seen := 0
	err := filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if seen++; seen > maxDevicesPerDir {
			return fmt.Errorf("more than %d entries under %s: %w", maxDevicesPerDir, hostDir, errdefs.ErrInvalidArgument)
		}
		rel, _ := filepath.Rel(hostDir, p)
		if skip != nil && rel != "." && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || d.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		dev, err := deviceFromPath(p, path.Join(containerDir, filepath.ToSlash(rel)))
		if err != nil {
			return nil // vanished or changed under us: skip it
		}
		out = append(out, dev)
		return nil
	})
	return out, err
}

// checkPermissions accepts a non-empty subset of "rwm"; "" means "rwm".
func checkPermissions(field, p string) (string, error) {
	if p == "" {
		return "rwm", nil
	}
	for _, c := range p {
		if !strings.ContainsRune("rwm", c) {
			return "", fmt.Errorf("%s %q (want letters of rwm): %w", field, p, errdefs.ErrInvalidArgument)
		}
	}
	return p, nil
}

// criDevices resolves container.devices[i] to device nodes.
func criDevices(i int, d *runtimeapi.Device) ([]specs.LinuxDevice, string, error) {
	field := fmt.Sprintf("container.devices[%d]", i)
	if err := checkPath(field+".container_path", d.GetContainerPath()); err != nil {
		return nil, "", err
	}
	if err := checkHostPath(field+".host_path", d.GetHostPath()); err != nil {
		return nil, "", err
	}
	perms, err := checkPermissions(field+".permissions", d.GetPermissions())
	if err != nil {
		return nil, "", err
	}
	host, ctr := path.Clean(d.GetHostPath()), path.Clean(d.GetContainerPath())
	fi, err := os.Stat(host)
	if err != nil {
		return nil, "", fmt.Errorf("%s.host_path %q: %w: %w", field, host, err, errdefs.ErrInvalidArgument)
	}
	if fi.IsDir() {
		devs, err := devicesFromDir(host, ctr, nil)
		if err != nil {
			return nil, "", fmt.Errorf("%s.host_path %q: %w", field, host, classOr(err, errdefs.ErrInvalidArgument))
		}
		return devs, perms, nil
	}
	real, err := filepath.EvalSymlinks(host)
	if err == nil {
		var dev specs.LinuxDevice
		if dev, err = deviceFromPath(real, ctr); err == nil {
			return []specs.LinuxDevice{dev}, perms, nil
		}
	}
	return nil, "", fmt.Errorf("%s.host_path %q: %w: %w", field, host, err, errdefs.ErrInvalidArgument)
}

// classOr keeps err's class when it has one and adds class otherwise.
func classOr(err, class error) error {
	if errdefs.ClassName(err) != "" {
		return err
	}
	return fmt.Errorf("%w: %w", err, class)
}

// WithDevices adds the CRI devices to linux.devices and allows each in
// the device cgroup with its permissions.
func WithDevices(devices []*runtimeapi.Device) SpecOpt {
	return func(s *specs.Spec) error {
		ensureResources(s)
		for i, d := range devices {
			devs, perms, err := criDevices(i, d)
			if err != nil {
				return err
			}
			for _, dev := range devs {
				major, minor := dev.Major, dev.Minor
				s.Linux.Devices = append(s.Linux.Devices, dev)
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
					Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: perms,
				})
			}
		}
		return nil
	}
}

// skipHostDev leaves out what runc sets up itself or what is not a device
// of the host (containerd's HostDevices rules).
func skipHostDev(rel string, d fs.DirEntry) bool {
	if d.IsDir() {
		switch rel {
		case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
			return true
		}
		return false
	}
	return rel == "console"
}

// hostDevices lists every device node under devRoot.
func hostDevices(devRoot string) ([]specs.LinuxDevice, error) {
	devs, err := devicesFromDir(devRoot, "/dev", skipHostDev)
	if err != nil {
		return nil, fmt.Errorf("list host devices: %w", classOr(err, errdefs.ErrInternal))
	}
	return devs, nil
}
