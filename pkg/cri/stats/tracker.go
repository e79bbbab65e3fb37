package stats

import (
	"fmt"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Tracker is what the stats remember between calls: the last CPU reading
// of each object, for usage_nano_cores, and the cgroup path of each task,
// read once from its bundle. It is safe for concurrent use.
type Tracker struct {
	rates   *cpuRates
	cgroups sync.Map // task id → cgroup path (string)
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker { return &Tracker{rates: newCPURates()} }

// CgroupPath is the cgroup of task id, from its bundle's config.json
// (BundleCgroupsPath), read once per task.
func (t *Tracker) CgroupPath(id, bundle string) (string, error) {
	if p, ok := t.cgroups.Load(id); ok {
		return p.(string), nil
	}
	p, err := BundleCgroupsPath(bundle)
	if err != nil {
		return "", fmt.Errorf("cgroup of task %s: %w", id, err)
	}
	t.cgroups.Store(id, p)
	return p, nil
}

// Forget drops what is remembered of a deleted object.
func (t *Tracker) Forget(id string) {
	t.rates.forget(id)
	t.cgroups.Delete(id)
}

// Usage converts a cgroup reading of object id into the CRI's CPU and
// memory usage; usage_nano_cores is the rate since the last reading of
// the same id.
func (t *Tracker) Usage(id string, sample Sample) (*runtimeapi.CpuUsage, *runtimeapi.MemoryUsage) {
	ts := sample.At.UnixNano()
	cpu := &runtimeapi.CpuUsage{
		Timestamp:            ts,
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: sample.CPUNanos},
		Psi:                  sample.CPUPSI,
	}
	if rate, ok := t.rates.observe(id, sample.At, sample.CPUNanos); ok {
		cpu.UsageNanoCores = &runtimeapi.UInt64Value{Value: rate}
	}
	mem := &runtimeapi.MemoryUsage{
		Timestamp:       ts,
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: sample.MemWorkingSet},
		UsageBytes:      &runtimeapi.UInt64Value{Value: sample.MemUsage},
		RssBytes:        &runtimeapi.UInt64Value{Value: sample.MemRSS},
		PageFaults:      &runtimeapi.UInt64Value{Value: sample.PgFault},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: sample.PgMajFault},
		Psi:             sample.MemPSI,
	}
	if sample.MemLimit > 0 {
		avail := uint64(0)
		if sample.MemLimit > sample.MemWorkingSet {
			avail = sample.MemLimit - sample.MemWorkingSet
		}
		mem.AvailableBytes = &runtimeapi.UInt64Value{Value: avail}
	}
	return cpu, mem
}

// cpuRates turns cumulative CPU readings into usage_nano_cores: it keeps
// the last reading per object and computes the rate over the window since.
type cpuRates struct {
	// minWindow: a reading closer than this to the last one returns the
	// last rate rather than a noisy one, and is not kept.
	minWindow time.Duration

	mu   sync.Mutex
	last map[string]cpuReading
}

type cpuReading struct {
	at    time.Time
	nanos uint64
	rate  uint64
	valid bool // rate is set
}

func newCPURates() *cpuRates {
	return &cpuRates{minWindow: 100 * time.Millisecond, last: map[string]cpuReading{}}
}

// observe records a reading of id and returns its rate in nanocores since
// the previous reading; ok is false for the first reading, and after the
// counter went backwards (the cgroup was re-created).
func (r *cpuRates) observe(id string, at time.Time, nanos uint64) (rate uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, had := r.last[id]
	if had && nanos >= prev.nanos && at.Sub(prev.at) < r.minWindow && at.Sub(prev.at) >= 0 {
		return prev.rate, prev.valid
	}
	cur := cpuReading{at: at, nanos: nanos}
	if had && nanos >= prev.nanos && at.After(prev.at) {
		window := at.Sub(prev.at)
		cur.rate = uint64(float64(nanos-prev.nanos) / float64(window.Nanoseconds()) * 1e9)
		cur.valid = true
	}
	r.last[id] = cur
	return cur.rate, cur.valid
}

// forget drops the readings of id.
func (r *cpuRates) forget(id string) {
	r.mu.Lock()
	delete(r.last, id)
	r.mu.Unlock()
}
