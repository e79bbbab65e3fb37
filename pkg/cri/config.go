package cri

import (
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/confval"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// RuntimeHandler is one RuntimeClass handler: the OCI runtime binary that
// runs its containers.
type RuntimeHandler struct {
	// BinaryPath is the OCI runtime (runc, crun, …): a path or a name on PATH.
	BinaryPath string `toml:"binary_path"`
	// Root is the runtime's state dir (--root); empty means <state>/<handler>.
	Root string `toml:"root"`
}

// Config is the [cri] section of the config file.
type Config struct {
	// DefaultRuntimeHandler serves pods that name no handler.
	DefaultRuntimeHandler string `toml:"default_runtime_handler"`
	// Runtimes maps RuntimeClass handler names to OCI runtimes.
	Runtimes map[string]RuntimeHandler `toml:"runtimes"`
	// SandboxImage, when set, runs pod sandboxes from this image instead of
	// the pause program that ships with cri-runtime.
	SandboxImage string `toml:"sandbox_image"`
	// StreamingAddress is where exec/attach/port-forward are served.
	StreamingAddress string `toml:"streaming_address"`
	// StreamingPort is the streaming server's port; "0" picks a free one.
	StreamingPort string `toml:"streaming_port"`
	// DrainExecSyncIOTimeout bounds how long an exec's output (ExecSync and
	// streaming exec) is still read after its main process exited. A child
	// it left in the background can hold the output pipes open for ever;
	// once this much time passed, the daemon stops reading and the call
	// returns with the output it has. containerd's key of the same name
	// defaults to 0 (wait for ever); ours must be positive.
	DrainExecSyncIOTimeout Duration `toml:"drain_exec_sync_io_timeout"`
	// Containers configures how container and sandbox specs are generated.
	Containers spec.Config `toml:"containers"`
}

// Duration is a time.Duration written as "1s" in the config file.
type Duration = confval.Duration

var handlerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$`)

// DefaultConfig is the [cri] section that applies when the file says nothing.
func DefaultConfig() Config {
	return Config{
		DefaultRuntimeHandler: "runc",
		Runtimes: map[string]RuntimeHandler{
			"runc": {BinaryPath: "runc"},
			"crun": {BinaryPath: "crun"},
		},
		Containers:       spec.DefaultConfig(),
		StreamingAddress: "127.0.0.1",
		StreamingPort:    "0",
		// The main process's own output is in the pipe when it exits and
		// is read in microseconds; what is still to come after a second
		// is a background child's, which the caller did not wait for.
		DrainExecSyncIOTimeout: Duration(time.Second),
	}
}

// Validate checks the section without touching the machine.
func (c Config) Validate() error {
	if err := c.Containers.Validate(); err != nil {
		return fmt.Errorf("[cri.containers]: %w", err)
	}
	if _, ok := c.Runtimes[c.DefaultRuntimeHandler]; !ok {
		return fmt.Errorf("default_runtime_handler %q is not in [cri.runtimes]: %w", c.DefaultRuntimeHandler, errdefs.ErrInvalidArgument)
	}
	for name, h := range c.Runtimes {
		if !handlerName.MatchString(name) {
			return fmt.Errorf("runtime handler name %q: %w", name, errdefs.ErrInvalidArgument)
		}
		if h.BinaryPath == "" {
			return fmt.Errorf("runtimes.%s.binary_path is empty: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	if c.DrainExecSyncIOTimeout <= 0 {
		return fmt.Errorf("drain_exec_sync_io_timeout %s must be positive: an exec whose background child keeps its output open would never return: %w",
			time.Duration(c.DrainExecSyncIOTimeout), errdefs.ErrInvalidArgument)
	}
	if net.ParseIP(c.StreamingAddress) == nil {
		return fmt.Errorf("streaming_address %q is not an IP address: %w", c.StreamingAddress, errdefs.ErrInvalidArgument)
	}
	return nil
}
