package stats

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// unlimited is the smallest limit treated as "no limit": cgroup v1 reports
// an unlimited memory.limit_in_bytes as PAGE_COUNTER_MAX rounded to pages,
// v2 as "max" (MaxUint64 in the library).
const unlimited = uint64(1) << 62

// Sample is one reading of a cgroup, in the CRI's units.
type Sample struct {
	At time.Time

	CPUNanos uint64 // cumulative CPU time of all cores

	MemUsage      uint64
	MemWorkingSet uint64 // usage - inactive_file, as the kubelet evicts on
	MemRSS        uint64
	PgFault       uint64
	PgMajFault    uint64
	MemLimit      uint64 // 0 when unlimited

	Pids uint64

	// PSI is nil where the kernel or the hierarchy has none.
	CPUPSI, MemPSI, IOPSI *runtimeapi.PsiStats

	// detail is what only the metrics report (cgroup_detail.go).
	detail cgroupDetail
}

// Add sums two readings; PSI (averages) and limits cannot be summed and are
// dropped.
func (a Sample) Add(b Sample) Sample {
	a.CPUNanos += b.CPUNanos
	a.MemUsage += b.MemUsage
	a.MemWorkingSet += b.MemWorkingSet
	a.MemRSS += b.MemRSS
	a.PgFault += b.PgFault
	a.PgMajFault += b.PgMajFault
	a.Pids += b.Pids
	a.MemLimit = 0
	a.CPUPSI, a.MemPSI, a.IOPSI = nil, nil, nil
	a.detail = cgroupDetail{}
	if b.At.After(a.At) {
		a.At = b.At
	}
	return a
}

// ReadCgroup reads the cgroup at path (relative to each hierarchy's root,
// as in runc's cgroupsPath for the cgroupfs driver). A cgroup that is gone
// is ErrNotFound.
func ReadCgroup(p string) (Sample, error) {
	if cgroups.Mode() == cgroups.Unified {
		return readCgroup2(p)
	}
	return readCgroup1(p, cgroups.Mode() == cgroups.Hybrid)
}

func readCgroup1(p string, hybrid bool) (Sample, error) {
	cg, err := cgroup1.Load(cgroup1.StaticPath(p))
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) || errors.Is(err, os.ErrNotExist) {
			return Sample{}, fmt.Errorf("cgroup %s: %w", p, errdefs.ErrNotFound)
		}
		return Sample{}, fmt.Errorf("load cgroup %s: %w", p, err)
	}
	m, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return Sample{}, fmt.Errorf("cgroup %s: %w", p, errdefs.ErrNotFound)
		}
		return Sample{}, fmt.Errorf("stat cgroup %s: %w", p, err)
	}
	s := Sample{At: time.Now()}
	s.CPUNanos = m.GetCPU().GetUsage().GetTotal()
	mem := m.GetMemory()
	s.MemUsage = mem.GetUsage().GetUsage()
	s.MemWorkingSet = workingSet(s.MemUsage, mem.GetTotalInactiveFile())
	s.MemRSS = mem.GetTotalRSS()
	s.PgFault = mem.GetTotalPgFault()
	s.PgMajFault = mem.GetTotalPgMajFault()
	if l := mem.GetUsage().GetLimit(); l < unlimited {
		s.MemLimit = l
	}
	s.Pids = m.GetPids().GetCurrent()
	s.detail = detail1(m)
	if hybrid {
		// runc also creates the cgroup in the v2 hierarchy of a hybrid
		// host; it has no controllers there, but it has PSI.
		dir := filepath.Join(cgroupRoot, "unified", p)
		s.CPUPSI = readPSIFile(filepath.Join(dir, "cpu.pressure"))
		s.MemPSI = readPSIFile(filepath.Join(dir, "memory.pressure"))
		s.IOPSI = readPSIFile(filepath.Join(dir, "io.pressure"))
	}
	return s, nil
}

func readCgroup2(p string) (Sample, error) {
	if _, err := os.Stat(filepath.Join(cgroupRoot, p)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Sample{}, fmt.Errorf("cgroup %s: %w", p, errdefs.ErrNotFound)
		}
		return Sample{}, err
	}
	mgr, err := cgroup2.Load(p)
	if err != nil {
		return Sample{}, fmt.Errorf("load cgroup %s: %w", p, err)
	}
	m, err := mgr.Stat()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Sample{}, fmt.Errorf("cgroup %s: %w", p, errdefs.ErrNotFound)
		}
		return Sample{}, fmt.Errorf("stat cgroup %s: %w", p, err)
	}
	s := Sample{At: time.Now()}
	s.CPUNanos = m.GetCPU().GetUsageUsec() * 1000
	mem := m.GetMemory()
	s.MemUsage = mem.GetUsage()
	s.MemWorkingSet = workingSet(s.MemUsage, mem.GetInactiveFile())
	s.MemRSS = mem.GetAnon()
	s.PgFault = mem.GetPgfault()
	s.PgMajFault = mem.GetPgmajfault()
	if l := mem.GetUsageLimit(); l < unlimited {
		s.MemLimit = l
	}
	s.Pids = m.GetPids().GetCurrent()
	s.detail = detail2(m)
	s.CPUPSI = fromPSI2(m.GetCPU().GetPSI())
	s.MemPSI = fromPSI2(mem.GetPSI())
	s.IOPSI = fromPSI2(m.GetIo().GetPSI())
	return s, nil
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile > usage {
		return 0
	}
	return usage - inactiveFile
}

func fromPSI2(p *v2stats.PSIStats) *runtimeapi.PsiStats {
	if p == nil || (p.GetSome() == nil && p.GetFull() == nil) {
		return nil
	}
	conv := func(d *v2stats.PSIData) *runtimeapi.PsiData {
		if d == nil {
			return nil
		}
		// The kernel counts total stall time in microseconds.
		return &runtimeapi.PsiData{Total: d.GetTotal() * 1000, Avg10: d.GetAvg10(), Avg60: d.GetAvg60(), Avg300: d.GetAvg300()}
	}
	return &runtimeapi.PsiStats{Some: conv(p.GetSome()), Full: conv(p.GetFull())}
}

// readPSIFile reads a *.pressure file; nil if it is absent or unreadable
// (no PSI in this kernel, or psi=0).
func readPSIFile(p string) *runtimeapi.PsiStats {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	psi, err := parsePSI(f)
	if err != nil {
		return nil
	}
	return psi
}

// parsePSI parses the kernel's pressure format:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
func parsePSI(r io.Reader) (*runtimeapi.PsiStats, error) {
	out := &runtimeapi.PsiStats{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		d := &runtimeapi.PsiData{}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("psi: bad field %q", kv)
			}
			var err error
			switch k {
			case "avg10":
				d.Avg10, err = strconv.ParseFloat(v, 64)
			case "avg60":
				d.Avg60, err = strconv.ParseFloat(v, 64)
			case "avg300":
				d.Avg300, err = strconv.ParseFloat(v, 64)
			case "total":
				d.Total, err = strconv.ParseUint(v, 10, 64)
				d.Total *= 1000 // microseconds → nanoseconds
			}
			if err != nil {
				return nil, fmt.Errorf("psi: %s: %w", kv, err)
			}
		}
		switch f[0] {
		case "some":
			out.Some = d
		case "full":
			out.Full = d
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if out.Some == nil && out.Full == nil {
		return nil, errors.New("psi: empty")
	}
	return out, nil
}

// BundleCgroupsPath reads linux.cgroupsPath from a bundle's config.json
// and turns it into a path under the hierarchies' roots.
func BundleCgroupsPath(bundle string) (string, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("bundle %s has no config.json: %w", bundle, errdefs.ErrNotFound)
		}
		return "", err
	}
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return "", fmt.Errorf("decode %s/config.json: %w", bundle, err)
	}
	if spec.Linux.CgroupsPath == "" {
		return "", fmt.Errorf("bundle %s has no linux.cgroupsPath: %w", bundle, errdefs.ErrNotFound)
	}
	return CgroupFSPath(spec.Linux.CgroupsPath)
}

// CgroupFSPath turns runc's cgroupsPath into a path under the hierarchies'
// roots: a cgroupfs path as is, a systemd "slice:prefix:name" as systemd
// lays it out ("<slices…>/<prefix>-<name>.scope").
func CgroupFSPath(cgroupsPath string) (string, error) {
	if !strings.Contains(cgroupsPath, ":") {
		return path.Clean("/" + cgroupsPath), nil
	}
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("cgroupsPath %q: %w", cgroupsPath, errdefs.ErrInvalidArgument)
	}
	slice, err := expandSlice(parts[0])
	if err != nil {
		return "", err
	}
	return path.Join(slice, parts[1]+"-"+parts[2]+".scope"), nil
}

// expandSlice turns "a-b-c.slice" into "/a.slice/a-b.slice/a-b-c.slice",
// as systemd nests slices.
func expandSlice(slice string) (string, error) {
	if slice == "" || slice == "-.slice" {
		return "/", nil
	}
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || strings.Contains(name, "/") || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return "", fmt.Errorf("systemd slice %q: %w", slice, errdefs.ErrInvalidArgument)
	}
	out, prefix := "", ""
	for _, comp := range strings.Split(name, "-") {
		out += "/" + prefix + comp + ".slice"
		prefix += comp + "-"
	}
	return out, nil
}
