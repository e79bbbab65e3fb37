package cri

import (
	"bufio"
	"os"
	"strings"

	"github.com/containerd/cgroups/v3"
)

// hugetlbControllerAvailable reports whether runc can set hugepage limits
// on this host: on cgroup v2, hugetlb is in the root's cgroup.controllers;
// on v1 and hybrid hosts (where runc uses the v1 hierarchies for limits) a
// cgroup v1 hierarchy with the hugetlb controller is mounted.
func hugetlbControllerAvailable() bool {
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
