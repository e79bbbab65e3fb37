// Package stats reads what the CRI's stats and metrics report of a
// container or a pod, and turns it into the CRI's messages: cgroup
// readings (v1, hybrid and v2, with PSI), the processes and file
// descriptors under a cgroup, a pod's network interfaces, the writable
// layer's disk use and the filesystem under it, and the cAdvisor-named
// metric series built from them (docs/stats.md).
//
// It holds no CRI objects and knows no task runtime: the facade finds a
// task's bundle, cgroup and pids and hands them in. What has to be
// remembered between calls (the last CPU reading of each object for
// usage_nano_cores, the cgroup path of each task) is a Tracker's; the
// facade owns one and forgets an object when it is deleted.
package stats
