package spec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// The legacy seccomp_profile_path values.
const (
	profileNameUnconfined     = "unconfined"
	profileNameRuntimeDefault = "runtime/default"
	profileNameDockerDefault  = "docker/default"
	profileLocalhostPrefix    = "localhost/"
)

// maxProfileSize bounds a seccomp profile file.
const maxProfileSize = 1 << 20

// SeccompKind is the outcome of profile selection.
type SeccompKind int

// The seccomp kinds.
const (
	// SeccompUnset: the CRI named no profile; Config.UnsetSeccompProfile decides.
	SeccompUnset SeccompKind = iota
	SeccompUnconfined
	SeccompRuntimeDefault
	SeccompLocalhost
)

// SeccompChoice is a selected profile: a kind, and a path for Localhost.
type SeccompChoice struct {
	Kind  SeccompKind
	Path  string
	Field string // the CRI field it came from, for errors
	err   error  // a malformed request, reported when applied
}

// seccompFor selects the profile: privileged → unconfined; the seccomp
// field when set; else the deprecated seccomp_profile_path ("unconfined",
// "runtime/default", "docker/default", "localhost/<abs path>"); else unset.
func seccompFor(p *runtimeapi.SecurityProfile, legacy string, privileged bool) SeccompChoice {
	const field = "linux.security_context"
	if privileged {
		return SeccompChoice{Kind: SeccompUnconfined}
	}
	if p != nil {
		f := field + ".seccomp"
		switch p.GetProfileType() {
		case runtimeapi.SecurityProfile_RuntimeDefault:
			return SeccompChoice{Kind: SeccompRuntimeDefault, Field: f}
		case runtimeapi.SecurityProfile_Unconfined:
			return SeccompChoice{Kind: SeccompUnconfined, Field: f}
		case runtimeapi.SecurityProfile_Localhost:
			return SeccompChoice{Kind: SeccompLocalhost, Path: p.GetLocalhostRef(), Field: f + ".localhost_ref"}
		}
		return SeccompChoice{Field: f, err: fmt.Errorf("%s.profile_type %d is unknown: %w", f, p.GetProfileType(), errdefs.ErrInvalidArgument)}
	}
	f := field + ".seccomp_profile_path"
	switch {
	case legacy == "":
		return SeccompChoice{Kind: SeccompUnset}
	case legacy == profileNameUnconfined:
		return SeccompChoice{Kind: SeccompUnconfined, Field: f}
	case legacy == profileNameRuntimeDefault, legacy == profileNameDockerDefault:
		return SeccompChoice{Kind: SeccompRuntimeDefault, Field: f}
	case strings.HasPrefix(legacy, profileLocalhostPrefix):
		return SeccompChoice{Kind: SeccompLocalhost, Path: strings.TrimPrefix(legacy, profileLocalhostPrefix), Field: f}
	}
	return SeccompChoice{Field: f, err: fmt.Errorf("%s %q is unknown: %w", f, legacy, errdefs.ErrInvalidArgument)}
}

// WithSeccomp sets linux.seccomp from choice. It must run after the
// capabilities are set: the moby profile allows some syscalls only with
// a capability in the bounding set.
func WithSeccomp(choice SeccompChoice, cfg Config) SpecOpt {
	return func(s *specs.Spec) error {
		if choice.err != nil {
			return choice.err
		}
		kind := choice.Kind
		if kind == SeccompUnset {
			kind = SeccompUnconfined
			if cfg.UnsetSeccompProfile == profileNameRuntimeDefault || cfg.UnsetSeccompProfile == profileNameDockerDefault {
				kind = SeccompRuntimeDefault
			}
		}
		ensureLinux(s)
		ensureProcess(s)
		if s.Process.Capabilities == nil {
			s.Process.Capabilities = &specs.LinuxCapabilities{}
		}
		var (
			prof *specs.LinuxSeccomp
			err  error
		)
		switch kind {
		case SeccompUnconfined:
			s.Linux.Seccomp = nil
			return nil
		case SeccompRuntimeDefault:
			if cfg.DefaultSeccompProfilePath == "" {
				prof, err = seccomp.GetDefaultProfile(s)
				if err != nil {
					return fmt.Errorf("build the default seccomp profile: %w: %w", err, errdefs.ErrInternal)
				}
				break
			}
			prof, err = loadProfile("default_seccomp_profile_path", cfg.DefaultSeccompProfilePath, s, errdefs.ErrFailedPrecondition)
		case SeccompLocalhost:
			prof, err = loadProfile(choice.Field, choice.Path, s, errdefs.ErrInvalidArgument)
		}
		if err != nil {
			return err
		}
		s.Linux.Seccomp = prof
		return nil
	}
}

// loadProfile reads and converts a moby-format JSON profile. A missing,
// unreadable or invalid file gives class.
func loadProfile(field, p string, s *specs.Spec, class error) (*specs.LinuxSeccomp, error) {
	if p == "" || !filepath.IsAbs(p) {
		return nil, fmt.Errorf("%s %q is not an absolute path: %w", field, p, errdefs.ErrInvalidArgument)
	}
	body, err := readProfile(p)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w: %w", field, p, err, class)
	}
	prof, err := seccomp.LoadProfile(string(body), s)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w: %w", field, p, err, class)
	}
	return prof, nil
}

// readProfile reads a regular file of at most maxProfileSize bytes,
// without blocking on a FIFO.
func readProfile(p string) ([]byte, error) {
	// Stat before opening: opening a device node can have side effects.
	if st, err := os.Stat(p); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	body, err := io.ReadAll(io.LimitReader(f, maxProfileSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxProfileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxProfileSize)
	}
	return body, nil
}
