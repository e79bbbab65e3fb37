// Package spec turns CRI v1 container and sandbox configs into OCI runtime
// specs. It is pure: the only I/O is reading what the request points at
// (the rootfs's /etc/passwd and /etc/group, a Localhost seccomp profile,
// device nodes), so every rule is table-tested on a bare specs.Spec.
//
// The work is a list of small SpecOpt functions (containerd's oci.SpecOpts
// style) applied in order by ContainerSpec and SandboxSpec. Every error
// carries an errdefs class; request errors are ErrInvalidArgument and name
// the CRI field. docs/spec.md lists the defaults and the field mapping.
package spec

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// SpecOpt changes one aspect of a spec. Each one works on a bare
// &specs.Spec{} (it creates the sub-structs it needs).
type SpecOpt func(*specs.Spec) error

// ApplyOpts applies opts in order and stops at the first error.
func ApplyOpts(s *specs.Spec, opts ...SpecOpt) error {
	for _, o := range opts {
		if err := o(s); err != nil {
			return err
		}
	}
	return nil
}

// ImageConfig is what spec generation needs of an image (filled by the
// facade from the image store).
type ImageConfig struct {
	// Name is the image reference reported in the image-name annotation.
	Name       string
	User       string
	Env        []string
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	// StopSignal is not part of the OCI spec; the facade uses it.
	StopSignal string
	Volumes    []string
}

// SandboxInfo is what a container spec needs of its running sandbox.
type SandboxInfo struct {
	ID string
	// Config is the sandbox's CRI config: host namespaces, cgroup parent,
	// hostname, metadata for annotations.
	Config *runtimeapi.PodSandboxConfig
	// Pid is the pause process; containers join /proc/<Pid>/ns/*.
	Pid int
	// NetNSPath is the pinned network namespace ("" with host network,
	// or to join the pause's).
	NetNSPath string
	// IPCNSPath and UTSNSPath are the pinned IPC and UTS namespaces of a
	// pod without a pause; "" to join the pause's (or with the host's).
	IPCNSPath, UTSNSPath string
	// Files the sandbox prepared on the host; "" means none.
	ResolvConfPath, HostsPath, HostnamePath string
	// ShmPath is the pod's shared /dev/shm (or "/dev/shm" for host IPC);
	// "" gives the container its own tmpfs.
	ShmPath string
}

// ContainerInput groups the per-container inputs besides the CRI config.
type ContainerInput struct {
	Sandbox SandboxInfo
	Image   ImageConfig
	// Rootfs is the container's root filesystem on the host (the mounted
	// overlay); user names are resolved inside it.
	Rootfs string
	// TargetPID is the pid of the container named by the TARGET pid
	// namespace option; the facade resolves it.
	TargetPID int
	// VolumesDir is where anonymous image volumes live on the host
	// (required with image_volumes = "anonymous" and an image with volumes).
	VolumesDir string
}

// Volume is an anonymous image volume the facade must create (and fill
// from the image's content at ContainerPath) before starting the container.
type Volume struct {
	ContainerPath string
	HostPath      string
}

// ContainerResult is the outcome of ContainerSpec.
type ContainerResult struct {
	Spec *specs.Spec
	// Volumes lists the anonymous image volumes bound into Spec.
	Volumes []Volume
}

// CRIUser returns the effective user for ContainerStatus.user.
func (r *ContainerResult) CRIUser() *runtimeapi.ContainerUser {
	u := r.Spec.Process.User
	groups := make([]int64, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int64(g))
	}
	return &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
		Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: groups,
	}}
}

// SandboxInput groups the per-sandbox inputs besides the CRI config.
type SandboxInput struct {
	// NetNSPath is the pinned network namespace the pause joins; "" with
	// host network, or to let runc create a fresh one.
	NetNSPath string
	// Args is the pause process's argv.
	Args []string
	// Rootfs is the pause root filesystem on the host.
	Rootfs string
}

// Option tunes one call of ContainerSpec or SandboxSpec.
type Option func(*options)

type options struct {
	cfg      Config
	oomFloor int
	devRoot  string // host /dev, a test seam for privileged devices
	// held is what "every capability" means (privileged, add ALL): the
	// capabilities the runtime holds; default all of them.
	held []string
}

// WithConfig sets the daemon-wide configuration (default DefaultConfig()).
func WithConfig(cfg Config) Option { return func(o *options) { o.cfg = cfg } }

// WithOOMScoreAdjFloor clamps every requested oom_score_adj below n up to n.
// Pass the daemon's own /proc/self/oom_score_adj: without CAP_SYS_RESOURCE
// runc cannot lower it and fails with "can't get final child's PID from
// pipe: EOF". The default floor, -1000, clamps nothing.
func WithOOMScoreAdjFloor(n int) Option { return func(o *options) { o.oomFloor = n } }

// WithCapabilityBound limits every capability set to caps, the
// capabilities the daemon itself holds (HeldCapabilities of
// /proc/self/status): a privileged container or "add ALL" gets all of
// caps, and a capability named outside it is FailedPrecondition. Without
// it runc fails with "unable to apply caps: operation not permitted" on a
// host whose root lacks some capability. nil means no bound.
func WithCapabilityBound(caps []string) Option {
	return func(o *options) {
		if caps != nil {
			o.held = sortCaps(caps)
		}
	}
}

func newOptions(opts []Option) (options, error) {
	o := options{cfg: DefaultConfig(), oomFloor: -1000, devRoot: "/dev", held: allCapabilities}
	for _, f := range opts {
		f(&o)
	}
	if err := o.cfg.Validate(); err != nil {
		return o, fmt.Errorf("spec config: %w", err)
	}
	if o.oomFloor < -1000 || o.oomFloor > 1000 {
		return o, fmt.Errorf("oom_score_adj floor %d is outside [-1000, 1000]: %w", o.oomFloor, errdefs.ErrInvalidArgument)
	}
	return o, nil
}

// newSpec returns the skeleton every spec starts from.
func newSpec(rootfs string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{Cwd: "/"},
		Linux: &specs.Linux{Resources: &specs.LinuxResources{
			// Deny every device; runc adds its default allow list, and
			// WithDevices/WithPrivileged add the rest.
			Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		}},
	}
}

// ContainerSpec generates the OCI spec of a container of sandbox
// in.Sandbox. Errors are InvalidArgument naming the CRI field, or
// FailedPrecondition when the sandbox or target is not running.
func ContainerSpec(id string, cfg *runtimeapi.ContainerConfig, in ContainerInput, opts ...Option) (*ContainerResult, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("container id is empty: %w", errdefs.ErrInvalidArgument)
	}
	sc := cfg.GetLinux().GetSecurityContext()
	if sc.GetPrivileged() && !in.Sandbox.Config.GetLinux().GetSecurityContext().GetPrivileged() {
		return nil, fmt.Errorf("container.linux.security_context.privileged: the sandbox is not privileged: %w", errdefs.ErrInvalidArgument)
	}
	volumes, err := imageVolumes(o.cfg.ImageVolumes, in.Image.Volumes, in.VolumesDir, cfg.GetMounts())
	if err != nil {
		return nil, err
	}
	s := newSpec(in.Rootfs)
	err = ApplyOpts(s,
		WithProcessArgs(cfg.GetCommand(), cfg.GetArgs(), in.Image),
		WithTTY(cfg.GetTty()),
		WithEnv(containerEnv(cfg, in)),
		WithWorkingDir(cfg.GetWorkingDir(), in.Image.WorkingDir),
		WithReadonlyRootfs(sc.GetReadonlyRootfs()),
		WithContainerUser(in.Rootfs, sc, in.Image.User),
		WithDefaultMounts(in.Sandbox.ShmPath, o.cfg.ShmSize),
		WithUsernsSysfs(in.Sandbox.Config),
		WithSandboxFileMounts(in.Sandbox, sc.GetReadonlyRootfs()),
		WithMounts(append(slices.Clone(cfg.GetMounts()), volumeMounts(volumes)...)),
		WithDevices(cfg.GetDevices()),
		withPrivilegedOrCapabilities(sc, o),
		WithSeccomp(seccompFor(sc.GetSeccomp(), sc.GetSeccompProfilePath(), sc.GetPrivileged()), o.cfg),
		WithNoNewPrivileges(sc.GetNoNewPrivs()),
		WithMaskedPaths(sc, o.cfg.DisableProcMount),
		WithContainerNamespaces(sc.GetNamespaceOptions(), in.Sandbox, in.TargetPID),
		WithResources(cfg.GetLinux().GetResources(), o.cfg),
		WithOOMScoreAdj(cfg.GetLinux().GetResources().GetOomScoreAdj(), o.oomFloor),
		WithCgroupsPath(o.cfg, in.Sandbox.Config.GetLinux().GetCgroupParent(), id),
		WithAnnotations(containerAnnotations(id, cfg, in)),
	)
	if err != nil {
		return nil, err
	}
	return &ContainerResult{Spec: s, Volumes: volumes}, nil
}

// withPrivilegedOrCapabilities grants everything to a privileged container
// and applies the add/drop lists to the default set otherwise.
func withPrivilegedOrCapabilities(sc *runtimeapi.LinuxContainerSecurityContext, o options) SpecOpt {
	if sc.GetPrivileged() {
		return privileged(o.held, !o.cfg.PrivilegedWithoutHostDevices, o.devRoot)
	}
	return capabilities(o.held, o.cfg.DefaultCapabilities, sc.GetCapabilities())
}

// SandboxSpec generates the OCI spec of the pause process of a sandbox: its
// own namespaces, a read-only rootfs, no capabilities, no new privileges,
// the pod's sysctls and oom_score_adj.
func SandboxSpec(id string, cfg *runtimeapi.PodSandboxConfig, in SandboxInput, opts ...Option) (*specs.Spec, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("sandbox id is empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(in.Args) == 0 {
		return nil, fmt.Errorf("sandbox pause args are empty: %w", errdefs.ErrInvalidArgument)
	}
	sc := cfg.GetLinux().GetSecurityContext()
	s := newSpec(in.Rootfs)
	s.Process.Args = append([]string(nil), in.Args...)
	err = ApplyOpts(s,
		WithEnv([]string{defaultPathEnv}),
		WithReadonlyRootfs(true),
		WithSandboxUser(in.Rootfs, sc),
		WithDefaultMounts("", o.cfg.ShmSize),
		WithUsernsSysfs(cfg),
		WithCapabilityList(nil),
		WithSeccomp(seccompFor(sc.GetSeccomp(), sc.GetSeccompProfilePath(), sc.GetPrivileged()), o.cfg),
		WithNoNewPrivileges(true),
		WithMaskedPaths(nil, true),
		WithSandboxNamespaces(sc.GetNamespaceOptions(), in.NetNSPath, cfg.GetHostname()),
		WithSysctls(cfg.GetLinux().GetSysctls(), sc.GetNamespaceOptions()),
		WithSandboxCPUShares(),
		WithOOMScoreAdj(int64(o.cfg.SandboxOOMScoreAdj), o.oomFloor),
		WithCgroupsPath(o.cfg, cfg.GetLinux().GetCgroupParent(), id),
		WithAnnotations(sandboxAnnotations(id, cfg)),
	)
	if err != nil {
		return nil, err
	}
	return s, nil
}
