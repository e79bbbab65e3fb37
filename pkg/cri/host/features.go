package host

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Features is what one runtime handler supports on this host.
type Features struct {
	// RecursiveReadOnly: the runtime knows the "rro" mount option and the
	// kernel has mount_setattr (5.12).
	RecursiveReadOnly bool
	// UserNamespaces: the runtime creates user namespaces and idmapped
	// mounts, the kernel idmaps overlayfs layers (5.19), and an idmapped
	// overlay really mounts under the daemon's root dir.
	UserNamespaces bool
	// Why says what is missing, for the start-up log.
	Why []string
}

// ociFeatures is the part of `<runtime> features` (runtime-spec
// features.md) the probe reads.
type ociFeatures struct {
	MountOptions []string `json:"mountOptions"`
	Linux        *struct {
		Namespaces      []string `json:"namespaces"`
		MountExtensions *struct {
			IDMap *struct {
				Enabled *bool `json:"enabled"`
			} `json:"idmap"`
		} `json:"mountExtensions"`
	} `json:"linux"`
}

// kernelVersion parses the major and minor of a uname release
// ("6.18.44-fc-v657" → 6, 18).
func kernelVersion(release string) (major, minor int, ok bool) {
	maj, rest, found := strings.Cut(release, ".")
	if !found {
		return 0, 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		rest = rest[:end]
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(rest)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return a, b, true
}

func kernelAtLeast(release string, major, minor int) bool {
	a, b, ok := kernelVersion(release)
	return ok && (a > major || a == major && b >= minor)
}

// parseFeatures decides the static part of a handler's features from the
// output of `<runtime> features` and the kernel release. idmapWorks is the
// outcome of the live idmapped-overlay probe (nil: it worked).
func parseFeatures(out []byte, release string, idmapWorks error) Features {
	var f ociFeatures
	if err := json.Unmarshal(out, &f); err != nil {
		return Features{Why: []string{"runtime features output is not JSON: " + err.Error()}}
	}
	var h Features
	switch {
	case !slices.Contains(f.MountOptions, "rro"):
		h.Why = append(h.Why, "the runtime does not list the rro mount option")
	case !kernelAtLeast(release, 5, 12):
		h.Why = append(h.Why, "recursive read-only mounts need kernel 5.12")
	default:
		h.RecursiveReadOnly = true
	}
	idmap := f.Linux != nil && f.Linux.MountExtensions != nil && f.Linux.MountExtensions.IDMap != nil &&
		f.Linux.MountExtensions.IDMap.Enabled != nil && *f.Linux.MountExtensions.IDMap.Enabled
	switch {
	case f.Linux == nil || !slices.Contains(f.Linux.Namespaces, "user"):
		h.Why = append(h.Why, "the runtime does not list the user namespace")
	case !idmap:
		h.Why = append(h.Why, "the runtime does not support idmapped mounts")
	case !kernelAtLeast(release, 5, 19):
		h.Why = append(h.Why, "idmapped overlayfs layers need kernel 5.19")
	case idmapWorks != nil:
		h.Why = append(h.Why, "an idmapped overlay does not mount here: "+idmapWorks.Error())
	default:
		h.UserNamespaces = true
	}
	return h
}

// Traversable checks that every dir from / down to dir lets others search
// it (o+x): runc resolves the rootfs from inside the pod's user namespace,
// where the daemon's root is just "others" (containerd requires the same
// 0711). Checked live, so fixing a mode takes effect without a restart.
func Traversable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("user namespaces need %s: %w", d, err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("user namespaces need %s to be searchable by others (mode %#o, want at least 0711)", d, st.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// ProbeFeatures runs `<binary> features`, reads the kernel release and,
// when the static facts allow user namespaces, mounts a tiny idmapped
// overlay under rootDir to prove it works.
func ProbeFeatures(binary, rootDir string) Features {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "features").Output()
	if err != nil {
		return Features{Why: []string{fmt.Sprintf("%s features: %v", binary, err)}}
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return Features{Why: []string{"uname: " + err.Error()}}
	}
	release := unix.ByteSliceToString(uts.Release[:])
	f := parseFeatures(out, release, nil)
	if f.UserNamespaces {
		f = parseFeatures(out, release, probeIDMappedOverlay(rootDir))
	}
	return f
}
