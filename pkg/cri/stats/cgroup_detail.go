package stats

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
)

// cgroupDetail is the part of a cgroup reading only the metrics report,
// taken from the same Stat call as the rest of cgroupSample. It follows
// cAdvisor's reading of the same files, so the series mean what the
// kubelet's cAdvisor series meant.
type cgroupDetail struct {
	cpuUserNanos, cpuSystemNanos uint64
	cfsPeriods, cfsThrottled     uint64
	cfsThrottledNanos            uint64

	memCache, memMappedFile, memSwap, memKernel uint64
	memFailcnt, memMaxUsage                     uint64
	// pgFaultSelf and pgMajFaultSelf are the cgroup's own faults, without
	// its children's (cAdvisor's scope="container"); cgroupSample has the
	// hierarchy's.
	pgFaultSelf, pgMajFaultSelf uint64
	oomKills                    uint64
	threadsMax                  uint64 // pids limit, 0 when unlimited

	// ioBytes and ioOps are blkio/io counters per device and operation
	// ("Read", "Write", …); none when the hierarchy accounts no I/O.
	ioBytes, ioOps []ioCounter
}

// ioCounter is one device's counter for one operation.
type ioCounter struct {
	device       string // "/dev/vda", or "major:minor" if unnamed
	major, minor uint64
	op           string
	value        uint64
}

// detail1 reads the cgroup v1 part: cpuacct.stat, cpu.stat, memory.* and
// blkio's *_recursive files.
func detail1(m *v1stats.Metrics) cgroupDetail {
	cpu, mem := m.GetCPU(), m.GetMemory()
	d := cgroupDetail{
		cpuUserNanos:      cpu.GetUsage().GetUser(),
		cpuSystemNanos:    cpu.GetUsage().GetKernel(),
		cfsPeriods:        cpu.GetThrottling().GetPeriods(),
		cfsThrottled:      cpu.GetThrottling().GetThrottledPeriods(),
		cfsThrottledNanos: cpu.GetThrottling().GetThrottledTime(),
		memCache:          mem.GetTotalCache(),
		memMappedFile:     mem.GetTotalMappedFile(),
		memKernel:         mem.GetKernel().GetUsage(),
		memFailcnt:        mem.GetUsage().GetFailcnt(),
		memMaxUsage:       mem.GetUsage().GetMax(),
		pgFaultSelf:       mem.GetPgFault(),
		pgMajFaultSelf:    mem.GetPgMajFault(),
		oomKills:          m.GetMemoryOomControl().GetOomKill(),
	}
	// memsw counts memory plus swap; without swap accounting it is absent
	// (0) and so is the swap figure.
	if sw, u := mem.GetSwap().GetUsage(), mem.GetUsage().GetUsage(); sw > u {
		d.memSwap = sw - u
	}
	if l := m.GetPids().GetLimit(); l < unlimited {
		d.threadsMax = l
	}
	for _, e := range m.GetBlkio().GetIoServiceBytesRecursive() {
		d.ioBytes = append(d.ioBytes, ioCounter{blkioName(e), e.GetMajor(), e.GetMinor(), e.GetOp(), e.GetValue()})
	}
	for _, e := range m.GetBlkio().GetIoServicedRecursive() {
		d.ioOps = append(d.ioOps, ioCounter{blkioName(e), e.GetMajor(), e.GetMinor(), e.GetOp(), e.GetValue()})
	}
	return d
}

func blkioName(e *v1stats.BlkIOEntry) string {
	if e.GetDevice() != "" {
		return e.GetDevice()
	}
	return fmt.Sprintf("%d:%d", e.GetMajor(), e.GetMinor())
}

// detail2 reads the cgroup v2 part: cpu.stat, memory.stat, memory.events,
// memory.peak, pids.max and io.stat. v2 has no per-cgroup-only fault
// counters and no failcnt; memory.events "max" (times the limit was hit)
// stands in for failcnt, as in runc.
func detail2(m *v2stats.Metrics) cgroupDetail {
	cpu, mem := m.GetCPU(), m.GetMemory()
	d := cgroupDetail{
		cpuUserNanos:      cpu.GetUserUsec() * 1000,
		cpuSystemNanos:    cpu.GetSystemUsec() * 1000,
		cfsPeriods:        cpu.GetNrPeriods(),
		cfsThrottled:      cpu.GetNrThrottled(),
		cfsThrottledNanos: cpu.GetThrottledUsec() * 1000,
		memCache:          mem.GetFile(),
		memMappedFile:     mem.GetFileMapped(),
		memSwap:           mem.GetSwapUsage(),
		memKernel:         mem.GetKernelStack() + mem.GetSlab() + mem.GetSock(),
		memFailcnt:        m.GetMemoryEvents().GetMax(),
		memMaxUsage:       mem.GetMaxUsage(),
		pgFaultSelf:       mem.GetPgfault(),
		pgMajFaultSelf:    mem.GetPgmajfault(),
		oomKills:          m.GetMemoryEvents().GetOomKill(),
	}
	if l := m.GetPids().GetLimit(); l < unlimited {
		d.threadsMax = l
	}
	for _, e := range m.GetIo().GetUsage() {
		dev := fmt.Sprintf("%d:%d", e.GetMajor(), e.GetMinor())
		d.ioBytes = append(d.ioBytes,
			ioCounter{dev, e.GetMajor(), e.GetMinor(), "Read", e.GetRbytes()},
			ioCounter{dev, e.GetMajor(), e.GetMinor(), "Write", e.GetWbytes()})
		d.ioOps = append(d.ioOps,
			ioCounter{dev, e.GetMajor(), e.GetMinor(), "Read", e.GetRios()},
			ioCounter{dev, e.GetMajor(), e.GetMinor(), "Write", e.GetWios()})
	}
	return d
}

// cgroupSpec is the limits in force on a cgroup, read back from the
// cgroup (so an UpdateContainerResources shows), in cAdvisor's units:
// v1 shares, microseconds, bytes; 0 for "no limit".
type cgroupSpec struct {
	cpuShares, cpuPeriod, cpuQuota uint64
	memLimit, memReservation       uint64
	// memSwapLimit is memory plus swap, as v1's memsw and the CRI's
	// memory_swap_limit_in_bytes count it.
	memSwapLimit uint64
}

// readCgroupSpec reads the cgroup's CPU and memory limits. Files the host
// lacks (memsw without swap accounting) leave their field 0.
func readCgroupSpec(p string) (cgroupSpec, error) {
	if cgroups.Mode() == cgroups.Unified {
		return readCgroupSpec2(filepath.Join(cgroupRoot, p))
	}
	var s cgroupSpec
	cpu, mem := filepath.Join(cgroupRoot, "cpu", p), filepath.Join(cgroupRoot, "memory", p)
	if _, err := os.Stat(cpu); err != nil {
		return s, fmt.Errorf("cgroup %s: %w", p, err)
	}
	s.cpuShares = readUintFile(filepath.Join(cpu, "cpu.shares"))
	s.cpuPeriod = readUintFile(filepath.Join(cpu, "cpu.cfs_period_us"))
	s.cpuQuota = readUintFile(filepath.Join(cpu, "cpu.cfs_quota_us")) // "-1" reads as 0
	s.memLimit = limitValue(readUintFile(filepath.Join(mem, "memory.limit_in_bytes")))
	s.memReservation = limitValue(readUintFile(filepath.Join(mem, "memory.soft_limit_in_bytes")))
	s.memSwapLimit = limitValue(readUintFile(filepath.Join(mem, "memory.memsw.limit_in_bytes")))
	return s, nil
}

func readCgroupSpec2(dir string) (cgroupSpec, error) {
	var s cgroupSpec
	if _, err := os.Stat(dir); err != nil {
		return s, err
	}
	// cpu.weight 1..10000 back to shares 2..262144, as runc maps them.
	if w := readUintFile(filepath.Join(dir, "cpu.weight")); w > 0 {
		s.cpuShares = 2 + (w-1)*262142/9999
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
		s.cpuQuota, s.cpuPeriod = parseCPUMax(string(b))
	}
	s.memLimit = readUintFile(filepath.Join(dir, "memory.max"))
	s.memReservation = readUintFile(filepath.Join(dir, "memory.low"))
	if sw := readUintFile(filepath.Join(dir, "memory.swap.max")); sw > 0 && s.memLimit > 0 {
		s.memSwapLimit = s.memLimit + sw
	}
	return s, nil
}

// parseCPUMax parses cgroup v2's cpu.max: "<quota|max> <period>".
func parseCPUMax(s string) (quota, period uint64) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0
	}
	quota, _ = strconv.ParseUint(f[0], 10, 64) // "max" reads as 0
	period, _ = strconv.ParseUint(f[1], 10, 64)
	return quota, period
}

// readUintFile reads a one-number cgroup file; 0 if it is absent, holds
// "max" or "-1", or cannot be parsed.
func readUintFile(p string) uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// limitValue is 0 for v1's "unlimited" (PAGE_COUNTER_MAX in bytes), as
// cAdvisor reports it.
func limitValue(v uint64) uint64 {
	if v >= unlimited {
		return 0
	}
	return v
}
