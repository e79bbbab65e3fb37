package spec

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

const defaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// mergeArgs merges the CRI command/args with the image's entrypoint/cmd the
// way Docker and the kubelet expect:
//
//	command set           → command + args (the image cmd is dropped)
//	only args set         → entrypoint + args
//	neither               → entrypoint + cmd
func mergeArgs(command, args []string, img ImageConfig) []string {
	var out []string
	switch {
	case len(command) > 0:
		out = append(out, command...)
		out = append(out, args...)
	case len(args) > 0:
		out = append(out, img.Entrypoint...)
		out = append(out, args...)
	default:
		out = append(out, img.Entrypoint...)
		out = append(out, img.Cmd...)
	}
	return out
}

// WithProcessArgs sets process.args from the CRI command/args and the image.
func WithProcessArgs(command, args []string, img ImageConfig) SpecOpt {
	return func(s *specs.Spec) error {
		argv := mergeArgs(command, args, img)
		if len(argv) == 0 {
			return fmt.Errorf("container.command: no command specified and the image has no entrypoint or cmd: %w", errdefs.ErrInvalidArgument)
		}
		for i, a := range argv {
			if strings.ContainsRune(a, 0) {
				return fmt.Errorf("container.command/args: argument %d contains a NUL byte: %w", i, errdefs.ErrInvalidArgument)
			}
		}
		ensureProcess(s)
		s.Process.Args = argv
		return nil
	}
}

// WithTTY allocates a terminal and sets TERM=xterm (which the CRI env may
// override when applied after).
func WithTTY(tty bool) SpecOpt {
	return func(s *specs.Spec) error {
		if !tty {
			return nil
		}
		ensureProcess(s)
		s.Process.Terminal = true
		s.Process.Env = replaceOrAppendEnv(s.Process.Env, "TERM=xterm")
		return nil
	}
}

// containerEnv lists, in increasing precedence: the default PATH, HOSTNAME,
// the image's env, the CRI envs.
func containerEnv(cfg *runtimeapi.ContainerConfig, in ContainerInput) []string {
	env := []string{defaultPathEnv}
	if h := in.Sandbox.Config.GetHostname(); h != "" {
		env = append(env, "HOSTNAME="+h)
	}
	env = append(env, in.Image.Env...)
	for _, kv := range cfg.GetEnvs() {
		env = append(env, kv.GetKey()+"="+string(kv.GetValue()))
	}
	return env
}

// WithEnv merges env into process.env: a later entry replaces an earlier
// one with the same key, in place.
func WithEnv(env []string) SpecOpt {
	return func(s *specs.Spec) error {
		ensureProcess(s)
		for i, e := range env {
			key, _, _ := strings.Cut(e, "=")
			if key == "" || strings.ContainsRune(e, 0) {
				return fmt.Errorf("container.envs: entry %d %q has an empty key or a NUL byte: %w", i, e, errdefs.ErrInvalidArgument)
			}
			s.Process.Env = replaceOrAppendEnv(s.Process.Env, e)
		}
		return nil
	}
}

func replaceOrAppendEnv(env []string, e string) []string {
	key, _, _ := strings.Cut(e, "=")
	for i, old := range env {
		if k, _, _ := strings.Cut(old, "="); k == key {
			env[i] = e
			return env
		}
	}
	return append(env, e)
}

// WithWorkingDir sets process.cwd: the CRI working_dir, else the image's,
// else "/". A relative CRI working_dir is refused; a relative image one is
// taken from "/".
func WithWorkingDir(criDir, imageDir string) SpecOpt {
	return func(s *specs.Spec) error {
		ensureProcess(s)
		switch {
		case criDir != "":
			if !path.IsAbs(criDir) || strings.ContainsRune(criDir, 0) {
				return fmt.Errorf("container.working_dir %q is not absolute: %w", criDir, errdefs.ErrInvalidArgument)
			}
			s.Process.Cwd = path.Clean(criDir)
		case imageDir != "":
			s.Process.Cwd = path.Join("/", imageDir)
		default:
			s.Process.Cwd = "/"
		}
		return nil
	}
}

// WithReadonlyRootfs sets root.readonly.
func WithReadonlyRootfs(ro bool) SpecOpt {
	return func(s *specs.Spec) error {
		if s.Root == nil {
			s.Root = &specs.Root{}
		}
		s.Root.Readonly = ro
		return nil
	}
}

// WithNoNewPrivileges sets process.noNewPrivileges.
func WithNoNewPrivileges(on bool) SpecOpt {
	return func(s *specs.Spec) error {
		ensureProcess(s)
		s.Process.NoNewPrivileges = on
		return nil
	}
}

// The annotations runtimes and tools read (containerd's names).
const (
	AnnotationContainerType    = "io.kubernetes.cri.container-type"
	AnnotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	AnnotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnotationContainerName    = "io.kubernetes.cri.container-name"
	AnnotationImageName        = "io.kubernetes.cri.image-name"
	ContainerTypeSandbox       = "sandbox"
	ContainerTypeContainer     = "container"
)

// blockedAnnotationPrefix marks CRI annotations not copied into the spec:
// crun changes behavior on "run.oci.*" annotations, which a pod author
// must not be able to set.
const blockedAnnotationPrefix = "run.oci."

// WithAnnotations merges annotations into the spec's.
func WithAnnotations(annotations map[string]string) SpecOpt {
	return func(s *specs.Spec) error {
		if s.Annotations == nil {
			s.Annotations = make(map[string]string, len(annotations))
		}
		for k, v := range annotations {
			s.Annotations[k] = v
		}
		return nil
	}
}

// copyCRIAnnotations copies user annotations, minus the blocked prefix.
func copyCRIAnnotations(dst, src map[string]string) {
	for k, v := range src {
		if strings.HasPrefix(k, blockedAnnotationPrefix) {
			continue
		}
		dst[k] = v
	}
}

func containerAnnotations(id string, cfg *runtimeapi.ContainerConfig, in ContainerInput) map[string]string {
	a := map[string]string{}
	copyCRIAnnotations(a, in.Sandbox.Config.GetAnnotations())
	copyCRIAnnotations(a, cfg.GetAnnotations())
	md := in.Sandbox.Config.GetMetadata()
	a[AnnotationContainerType] = ContainerTypeContainer
	a[AnnotationSandboxID] = in.Sandbox.ID
	a[AnnotationSandboxName] = md.GetName()
	a[AnnotationSandboxNamespace] = md.GetNamespace()
	a[AnnotationSandboxUID] = md.GetUid()
	a[AnnotationContainerName] = cfg.GetMetadata().GetName()
	image := in.Image.Name
	if image == "" {
		image = cfg.GetImage().GetImage()
	}
	a[AnnotationImageName] = image
	return a
}

func sandboxAnnotations(id string, cfg *runtimeapi.PodSandboxConfig) map[string]string {
	a := map[string]string{}
	copyCRIAnnotations(a, cfg.GetAnnotations())
	md := cfg.GetMetadata()
	a[AnnotationContainerType] = ContainerTypeSandbox
	a[AnnotationSandboxID] = id
	a[AnnotationSandboxName] = md.GetName()
	a[AnnotationSandboxNamespace] = md.GetNamespace()
	a[AnnotationSandboxUID] = md.GetUid()
	return a
}

func ensureProcess(s *specs.Spec) {
	if s.Process == nil {
		s.Process = &specs.Process{Cwd: "/"}
	}
}

func ensureLinux(s *specs.Spec) {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
}

func ensureResources(s *specs.Spec) {
	ensureLinux(s)
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
}
