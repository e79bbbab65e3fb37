package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// validID is the grammar of task ids, exec ids and namespaces.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$`)

// ValidateID refuses ids that could escape a directory or are absurd,
// before anything touches the disk.
func ValidateID(kind, id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("%s %q: must match %s: %w", kind, truncate(id, 80), validID, errdefs.ErrInvalidArgument)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// layout places a task's files.
//
//	<state>/tasks/<ns>/<id>/   the bundle: config.json, rootfs/, exit.json, init.pid, shim.log
//	<state>/s/<hash>.sock      the shim's socket (short: unix paths are limited to 108 bytes)
type layout struct {
	state string
}

func (l layout) bundle(ns, id string) string { return filepath.Join(l.state, "tasks", ns, id) }

func (l layout) socket(ns, id string) string {
	sum := sha256.Sum256([]byte(ns + "/" + id))
	return filepath.Join(l.state, "s", hex.EncodeToString(sum[:])[:24]+".sock")
}

// writeSpec makes a new bundle dir with config.json and the rootfs mount
// point.
func writeSpec(bundle string, spec any) error {
	if err := os.MkdirAll(filepath.Dir(bundle), 0o711); err != nil {
		return err
	}
	if err := os.Mkdir(bundle, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("bundle %s: %w", bundle, errdefs.ErrAlreadyExists)
		}
		return err
	}
	if err := os.Mkdir(filepath.Join(bundle, api.RootfsDir), 0o711); err != nil {
		return err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600)
}

// readExit reads the exit the shim recorded in the bundle, if any.
func readExit(bundle string) (*api.Exit, error) {
	data, err := os.ReadFile(filepath.Join(bundle, api.ExitFile))
	if err != nil {
		return nil, err
	}
	var e api.Exit
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", api.ExitFile, err)
	}
	return &e, nil
}

// unmountAll detaches every mount stacked on path; a path that is not
// mounted (or is gone) is fine.
func unmountAll(path string) error {
	for i := 0; i < 64; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		switch {
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case err != nil:
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted after 64 unmounts", path)
}

// removeBundle unmounts the rootfs and removes the bundle dir.
func removeBundle(bundle string) error {
	if err := unmountAll(filepath.Join(bundle, api.RootfsDir)); err != nil {
		return err
	}
	return os.RemoveAll(bundle)
}

// shimBinaryName is the shim's file name, as its processes' argv[0] ends.
const shimBinaryName = "cri-runtime-shim"

// shimsOfBundle finds the shim processes serving bundle, by their command
// line (-bundle <bundle>): the only handle on a shim that died before it
// could answer, or that has not started answering yet.
func shimsOfBundle(bundle string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []int
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if filepath.Base(args[0]) != shimBinaryName {
			continue
		}
		for i := 1; i+1 < len(args); i++ {
			if args[i] == "-bundle" && args[i+1] == bundle {
				if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out
}
