// Package host is what the facade does on the host itself, outside the
// task runtime and the image service: it probes what the host and a
// runtime handler support (capabilities, oom_score_adj, hugetlb, CRIU,
// recursive read-only mounts, user namespaces with idmapped overlays),
// keeps the host dirs that hold container-controlled files out of host
// users' reach, mounts and unmounts, checks mount propagation, and reads
// from trees an image or a container controls without leaving them
// (image_sub_path, the copy-up of anonymous volumes).
//
// It holds no CRI objects: the facade passes paths, gids and configs.
package host

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
)

// OOMScoreAdj is the daemon's oom_score_adj: without CAP_SYS_RESOURCE no
// container may go below it, so requests are clamped to it.
func OOMScoreAdj() int {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return -1000
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return -1000
	}
	return n
}

// Capabilities is what the daemon can pass on to containers: its
// bounding ∩ effective set. nil (no bound) if unreadable.
func Capabilities() []string {
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		var caps []string
		if caps, err = spec.HeldCapabilities(string(data)); err == nil {
			if len(caps) < len(spec.AllCapabilities()) {
				klog.Background().Info("The daemon lacks some capabilities; containers are limited to the rest", "held", len(caps))
			}
			return caps
		}
	}
	klog.Background().Error(err, "Could not read the daemon's own capabilities; containers are not bounded by them")
	return nil
}

// HugetlbController reports whether runc can set hugepage limits
// on this host: on cgroup v2, hugetlb is in the root's cgroup.controllers;
// on v1 and hybrid hosts (where runc uses the v1 hierarchies for limits) a
// cgroup v1 hierarchy with the hugetlb controller is mounted.
func HugetlbController() bool {
	if cgroups.Mode() == cgroups.Unified {
		data, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		return err == nil && hasField(string(data), "hugetlb", " ")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... - <fstype> <source> <super options>
		_, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields := strings.Fields(post)
		if len(fields) >= 3 && fields[0] == "cgroup" && hasField(fields[2], "hugetlb", ",") {
			return true
		}
	}
	return false
}

// hasField reports whether s, split at sep, has the field want.
func hasField(s, want, sep string) bool {
	for _, f := range strings.Split(strings.TrimSpace(s), sep) {
		if f == want {
			return true
		}
	}
	return false
}

// CRIU remembers the outcome of `criu check`, run once per daemon; the
// zero value is ready to use.
type CRIU struct {
	once   sync.Once
	result string
}

// Check runs `criu check` the first time and describes its outcome.
func (p *CRIU) Check(ctx context.Context) string {
	p.once.Do(func() {
		path, err := exec.LookPath("criu")
		if err != nil {
			p.result = "criu is not installed"
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, path, "check").CombinedOutput()
		if err != nil {
			p.result = fmt.Sprintf("`criu check` fails on this host (%v): %s", err, lastLines(string(out), 2))
			return
		}
		p.result = "`criu check` passes on this host: " + lastLines(string(out), 1)
	})
	return p.result
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
