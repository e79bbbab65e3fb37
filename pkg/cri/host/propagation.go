package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// mountInfo is one line of /proc/<pid>/mountinfo, the fields propagation
// checks need.
type mountInfo struct {
	mountPoint string
	// shared and slave: the optional fields "shared:N" and "master:N".
	shared, slave bool
}

// parseMountInfo parses /proc/<pid>/mountinfo (proc(5)): "id parent
// major:minor root mountpoint options [optional fields...] - fstype
// source superoptions". Mount points are unescaped (\040 etc.). A
// malformed line is an error.
func parseMountInfo(data string) ([]mountInfo, error) {
	var out []mountInfo
	for n, line := range strings.Split(data, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 {
			return nil, fmt.Errorf("mountinfo line %d %q is malformed: %w", n+1, line, errdefs.ErrInternal)
		}
		m := mountInfo{mountPoint: unescapeOctal(f[4])}
		for _, opt := range f[6:sep] {
			switch {
			case strings.HasPrefix(opt, "shared:"):
				m.shared = true
			case strings.HasPrefix(opt, "master:"):
				m.slave = true
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// unescapeOctal undoes the kernel's \NNN escaping of space, tab, newline
// and backslash in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	return byte(v), v < 256
}

// mountOf returns the mount that contains path (absolute, symlinks
// resolved): the one with the longest mount point that is path or a
// parent of it; of mounts stacked on the same point, the last listed (the
// top one).
func mountOf(mounts []mountInfo, path string) (mountInfo, bool) {
	var best mountInfo
	found := false
	for _, m := range mounts {
		mp := m.mountPoint
		if !(path == mp || mp == "/" || strings.HasPrefix(path, mp+"/")) {
			continue
		}
		if !found || len(mp) >= len(best.mountPoint) {
			best, found = m, true
		}
	}
	return best, found
}

// checkPropagationSource refuses a propagation the host mount of path
// cannot give: BIDIRECTIONAL needs a shared mount, HOST_TO_CONTAINER a
// shared or slave one (containerd's ensureShared/ensureSharedOrSlave).
// Otherwise runc would set up a mount that silently propagates nothing.
func checkPropagationSource(mounts []mountInfo, field, path string, p runtimeapi.MountPropagation) error {
	m := mustMount(mounts, path)
	switch {
	case p == runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL && !m.shared:
		return fmt.Errorf("%s %q is on mount %q, which is not shared (propagation %s needs mount --make-rshared): %w",
			field, path, m.mountPoint, p, errdefs.ErrFailedPrecondition)
	case p == runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER && !m.shared && !m.slave:
		return fmt.Errorf("%s %q is on mount %q, which is neither shared nor slave (propagation %s needs mount --make-rshared or --make-rslave): %w",
			field, path, m.mountPoint, p, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// mustMount is mountOf with "/" as the zero answer (a path is always
// under the root mount; mountinfo without it gives a non-shared mount).
func mustMount(mounts []mountInfo, path string) mountInfo {
	m, ok := mountOf(mounts, path)
	if !ok {
		return mountInfo{mountPoint: "/"}
	}
	return m
}

// CheckMountPropagation checks the host sources of the container's
// BIDIRECTIONAL and HOST_TO_CONTAINER mounts against the daemon's own
// mount table. A source that does not exist is left to runc to report.
func CheckMountPropagation(mounts []*runtimeapi.Mount) error {
	var table []mountInfo
	for i, m := range mounts {
		p := m.GetPropagation()
		if p != runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL && p != runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER {
			continue
		}
		field := fmt.Sprintf("config.mounts[%d].host_path", i)
		src, err := filepath.EvalSymlinks(m.GetHostPath())
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %q: %w", field, m.GetHostPath(), errdefs.ErrInvalidArgument)
		}
		if table == nil {
			data, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				return fmt.Errorf("read mountinfo: %w", err)
			}
			if table, err = parseMountInfo(string(data)); err != nil {
				return err
			}
		}
		if err := checkPropagationSource(table, field, src, p); err != nil {
			return err
		}
	}
	return nil
}
