package spec

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// CgroupDriver names how cgroupsPath is written for runc.
type CgroupDriver string

// The cgroup drivers.
const (
	// CgroupfsDriver writes cgroupsPath as a path: "<parent>/<id>".
	CgroupfsDriver CgroupDriver = "cgroupfs"
	// SystemdDriver writes cgroupsPath as "<slice>:<prefix>:<id>".
	SystemdDriver CgroupDriver = "systemd"
)

// Validate reports whether d is a known driver.
func (d CgroupDriver) Validate() error {
	switch d {
	case CgroupfsDriver, SystemdDriver:
		return nil
	}
	return fmt.Errorf("cgroup_driver %q (want cgroupfs or systemd): %w", string(d), errdefs.ErrInvalidArgument)
}

// ImageVolumePolicy says what to do with the volumes an image declares.
type ImageVolumePolicy string

// The image volume policies.
const (
	// ImageVolumesIgnore drops image volumes: the path stays part of the rootfs.
	ImageVolumesIgnore ImageVolumePolicy = "ignore"
	// ImageVolumesAnonymous bind-mounts a fresh directory per volume; the
	// facade creates it (ContainerResult.Volumes lists what to create).
	ImageVolumesAnonymous ImageVolumePolicy = "anonymous"
)

// Validate reports whether p is a known policy.
func (p ImageVolumePolicy) Validate() error {
	switch p {
	case ImageVolumesIgnore, ImageVolumesAnonymous:
		return nil
	}
	return fmt.Errorf("image_volumes %q (want ignore or anonymous): %w", string(p), errdefs.ErrInvalidArgument)
}

// SystemdCgroupPrefix is the middle part of a systemd cgroupsPath.
const SystemdCgroupPrefix = "cri-runtime"

// Config holds the daemon-wide settings of spec generation. Every field has
// a default (DefaultConfig); Validate is pure.
type Config struct {
	// DefaultCapabilities is the capability set of an unprivileged container
	// before the CRI add/drop lists apply. Names with or without "CAP_".
	DefaultCapabilities []string `toml:"default_capabilities"`
	// UnsetSeccompProfile is used when a container or sandbox names no
	// seccomp profile at all: "" or "unconfined", or "runtime/default".
	UnsetSeccompProfile string `toml:"unset_seccomp_profile"`
	// DefaultSeccompProfilePath, when set, is a JSON profile (moby format)
	// used for RuntimeDefault instead of the built-in moby default profile.
	DefaultSeccompProfilePath string `toml:"default_seccomp_profile_path"`
	// DisableProcMount ignores the CRI masked_paths/readonly_paths and always
	// applies the defaults (containerd's disable_proc_mount).
	DisableProcMount bool `toml:"disable_proc_mount"`
	// ImageVolumes is the policy for the image config's Volumes.
	ImageVolumes ImageVolumePolicy `toml:"image_volumes"`
	// CgroupDriver decides the form of cgroupsPath.
	CgroupDriver CgroupDriver `toml:"cgroup_driver"`
	// DefaultCgroupParent is used when the kubelet passes no cgroup parent.
	// Empty means "/cri-runtime" (cgroupfs) or "system.slice" (systemd).
	DefaultCgroupParent string `toml:"default_cgroup_parent"`
	// SwapEqualsMemoryLimit sets memory.swap to the memory limit when the
	// CRI gives a limit but no swap limit, so a container gets no swap
	// (cgroup v1 memsw semantics). Turn it off on hosts without memsw.
	SwapEqualsMemoryLimit bool `toml:"swap_equals_memory_limit"`
	// PidsLimit is the pids.max of every container; 0 means unlimited.
	PidsLimit int64 `toml:"pids_limit"`
	// SandboxOOMScoreAdj is the pause process's oom_score_adj (clamped to
	// the daemon's own, see WithOOMScoreAdjFloor).
	SandboxOOMScoreAdj int `toml:"sandbox_oom_score_adj"`
	// PrivilegedWithoutHostDevices keeps host devices out of privileged
	// containers (they still get every capability).
	PrivilegedWithoutHostDevices bool `toml:"privileged_without_host_devices"`
	// ShmSize is the size option of a container's own /dev/shm tmpfs, used
	// only when the sandbox has no shared shm path.
	ShmSize string `toml:"shm_size"`
	// TolerateMissingHugetlbController drops hugepage limits when the host
	// has no hugetlb cgroup controller (containerd's key of the same name).
	// The kubelet sends a limit for every page size the host offers, even
	// where the controller is missing, and runc fails on each of them.
	TolerateMissingHugetlbController bool `toml:"tolerate_missing_hugetlb_controller"`
}

// DefaultCapabilities is containerd's default capability set.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultConfig returns the defaults: containerd's capability set, no
// seccomp when the CRI names none, image volumes ignored, cgroupfs.
func DefaultConfig() Config {
	return Config{
		DefaultCapabilities:   append([]string(nil), defaultCapabilities...),
		UnsetSeccompProfile:   "",
		ImageVolumes:          ImageVolumesIgnore,
		CgroupDriver:          CgroupfsDriver,
		SwapEqualsMemoryLimit: true,
		SandboxOOMScoreAdj:    -998,
		ShmSize:               "65536k",

		TolerateMissingHugetlbController: true,
	}
}

// Validate checks every field without side effects. Errors are of class
// errdefs.ErrInvalidArgument and name the TOML key.
func (c Config) Validate() error {
	var errs []error
	for i, name := range c.DefaultCapabilities {
		if _, err := normalizeCap(name); err != nil {
			errs = append(errs, fmt.Errorf("default_capabilities[%d]: %w", i, err))
		}
	}
	switch c.UnsetSeccompProfile {
	case "", profileNameUnconfined, profileNameRuntimeDefault, profileNameDockerDefault:
	default:
		errs = append(errs, fmt.Errorf("unset_seccomp_profile %q (want \"\", unconfined or runtime/default): %w",
			c.UnsetSeccompProfile, errdefs.ErrInvalidArgument))
	}
	if p := c.DefaultSeccompProfilePath; p != "" && !filepath.IsAbs(p) {
		errs = append(errs, fmt.Errorf("default_seccomp_profile_path %q is not absolute: %w", p, errdefs.ErrInvalidArgument))
	}
	if err := c.ImageVolumes.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.CgroupDriver.Validate(); err != nil {
		errs = append(errs, err)
	} else if c.DefaultCgroupParent != "" {
		if _, err := cgroupsPath(c.CgroupDriver, c.DefaultCgroupParent, "x"); err != nil {
			errs = append(errs, fmt.Errorf("default_cgroup_parent: %w", err))
		}
	}
	if c.PidsLimit < 0 {
		errs = append(errs, fmt.Errorf("pids_limit %d is negative: %w", c.PidsLimit, errdefs.ErrInvalidArgument))
	}
	if c.SandboxOOMScoreAdj < -1000 || c.SandboxOOMScoreAdj > 1000 {
		errs = append(errs, fmt.Errorf("sandbox_oom_score_adj %d is outside [-1000, 1000]: %w",
			c.SandboxOOMScoreAdj, errdefs.ErrInvalidArgument))
	}
	if strings.ContainsAny(c.ShmSize, ", ") {
		errs = append(errs, fmt.Errorf("shm_size %q: %w", c.ShmSize, errdefs.ErrInvalidArgument))
	}
	return errors.Join(errs...)
}

// cgroupParent returns parent, or the driver's default when it is empty.
func (c Config) cgroupParent(parent string) string {
	if parent != "" {
		return parent
	}
	if c.DefaultCgroupParent != "" {
		return c.DefaultCgroupParent
	}
	if c.CgroupDriver == SystemdDriver {
		return "system.slice"
	}
	return "/cri-runtime"
}

// PodCgroupsPath is the cgroupsPath a task of the pod with id and cgroup
// parent gets (containers use their own id); the pod's cgroup is its
// parent directory.
func PodCgroupsPath(cfg Config, parent, id string) (string, error) {
	return cgroupsPath(cfg.CgroupDriver, cfg.cgroupParent(parent), id)
}

// cgroupsPath forms runc's cgroupsPath the way containerd and CRI-O do:
// "<parent>/<id>" for cgroupfs (parent absolute, as the kubelet passes it),
// "<last slice of parent>:cri-runtime:<id>" for systemd.
func cgroupsPath(driver CgroupDriver, parent, id string) (string, error) {
	switch driver {
	case SystemdDriver:
		base := path.Base(parent)
		if !strings.HasSuffix(base, ".slice") || strings.ContainsAny(parent, ":") {
			return "", fmt.Errorf("cgroup parent %q is not a systemd slice: %w", parent, errdefs.ErrInvalidArgument)
		}
		return base + ":" + SystemdCgroupPrefix + ":" + id, nil
	default:
		if !path.IsAbs(parent) || hasDotDot(parent) {
			return "", fmt.Errorf("cgroup parent %q must be an absolute path without \"..\": %w", parent, errdefs.ErrInvalidArgument)
		}
		return path.Join(parent, id), nil
	}
}

// hasDotDot reports whether p has a ".." element.
func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}
