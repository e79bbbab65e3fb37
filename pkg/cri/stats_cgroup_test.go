package cri

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestCPURates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type reading struct {
		after    time.Duration // since t0
		nanos    uint64
		wantRate uint64
		wantOK   bool
	}
	for _, tc := range []struct {
		name     string
		readings []reading
	}{
		{"first reading has no rate", []reading{{0, 5e9, 0, false}}},
		{"one core busy", []reading{{0, 0, 0, false}, {time.Second, 1e9, 1e9, true}}},
		{"half a core over two seconds", []reading{{0, 10e9, 0, false}, {2 * time.Second, 11e9, 5e8, true}}},
		{"idle", []reading{{0, 7, 0, false}, {time.Second, 7, 0, true}}},
		{"four cores", []reading{{0, 0, 0, false}, {500 * time.Millisecond, 2e9, 4e9, true}}},
		{"counter went back: restart the window", []reading{{0, 9e9, 0, false}, {time.Second, 1e9, 0, false}, {2 * time.Second, 2e9, 1e9, true}}},
		{"reading inside the min window keeps the last rate", []reading{{0, 0, 0, false}, {time.Second, 1e9, 1e9, true}, {time.Second + time.Millisecond, 5e9, 1e9, true}, {2 * time.Second, 2e9, 1e9, true}}},
		{"large counters do not overflow", []reading{{0, 1 << 62, 0, false}, {10 * time.Second, 1<<62 + 80e9, 8e9, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCPURates()
			for i, rd := range tc.readings {
				rate, ok := r.observe("c", t0.Add(rd.after), rd.nanos)
				if ok != rd.wantOK || rate != rd.wantRate {
					t.Fatalf("reading %d: rate %d ok %v, want %d %v", i, rate, ok, rd.wantRate, rd.wantOK)
				}
			}
		})
	}
	r := newCPURates()
	r.observe("a", t0, 0)
	r.observe("b", t0, 0)
	if rate, ok := r.observe("a", t0.Add(time.Second), 3e9); !ok || rate != 3e9 {
		t.Fatalf("ids must not share readings: %d %v", rate, ok)
	}
	r.forget("b")
	if _, ok := r.observe("b", t0.Add(time.Second), 3e9); ok {
		t.Fatal("a forgotten id has no rate")
	}
}

func TestParsePSI(t *testing.T) {
	in := "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"
	got, err := parsePSI(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got.GetSome().GetAvg10() != 1.5 || got.GetSome().GetAvg60() != 0.25 || got.GetSome().GetTotal() != 1234000 || got.GetFull().GetTotal() != 7000 {
		t.Fatalf("parsePSI = %v", got)
	}
	for _, bad := range []string{"", "some avg10\n", "some avg10=x total=1\n"} {
		if _, err := parsePSI(strings.NewReader(bad)); err == nil {
			t.Errorf("parsePSI(%q) succeeded", bad)
		}
	}
	if readPSIFile(filepath.Join(t.TempDir(), "missing")) != nil {
		t.Fatal("a missing pressure file must give nil")
	}
}

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:   12345      10    2    4    0     0          0         0     6789       8    3    5    0     0       0          0
 net1: 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0
`
	got, err := parseNetDev(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("want eth0 and net1 (no lo), got %v", got)
	}
	want := netDev{name: "eth0", rxBytes: 12345, rxPackets: 10, rxErrors: 2, rxDropped: 4, txBytes: 6789, txPackets: 8, txErrors: 3, txDropped: 5}
	if got[0] != want {
		t.Fatalf("eth0 = %+v, want %+v", got[0], want)
	}
	if u := got[0].usage(); u.GetName() != "eth0" || u.GetRxBytes().GetValue() != 12345 || u.GetRxErrors().GetValue() != 2 || u.GetTxBytes().GetValue() != 6789 || u.GetTxErrors().GetValue() != 3 {
		t.Fatalf("eth0 usage = %v", u)
	}
	if got[1].name != "net1" || got[1].txBytes != 2 {
		t.Fatalf("net1 = %+v", got[1])
	}
	if _, err := parseNetDev(strings.NewReader("eth0: 1 2 3\n")); err == nil {
		t.Fatal("a short line must fail")
	}
}

func TestCgroupFSPath(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		wantErr        error
	}{
		{"cgroupfs", "/kubepods/burstable/pod1/abc", "/kubepods/burstable/pod1/abc", nil},
		{"cgroupfs relative", "cri-runtime/abc", "/cri-runtime/abc", nil},
		{"systemd", "kubepods-burstable-pod1.slice:cri-runtime:abc", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-runtime-abc.scope", nil},
		{"systemd root slice", "-.slice:cri-runtime:abc", "/cri-runtime-abc.scope", nil},
		{"systemd system.slice", "system.slice:cri-runtime:abc", "/system.slice/cri-runtime-abc.scope", nil},
		{"not a slice", "kubepods:cri-runtime:abc", "", errdefs.ErrInvalidArgument},
		{"bad slice name", "a--b.slice:p:abc", "", errdefs.ErrInvalidArgument},
		{"too many parts", "a.slice:b:c:d", "", errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cgroupFSPath(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("cgroupFSPath(%q) = %q, %v; want %v", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("cgroupFSPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestBundleCgroupsPath(t *testing.T) {
	dir := t.TempDir()
	if _, err := bundleCgroupsPath(dir); !errdefs.IsNotFound(err) {
		t.Fatalf("no config.json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"linux":{"cgroupsPath":"/cri-runtime/abc"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := bundleCgroupsPath(dir); err != nil || p != "/cri-runtime/abc" {
		t.Fatalf("bundleCgroupsPath = %q, %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"linux":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bundleCgroupsPath(dir); !errdefs.IsNotFound(err) {
		t.Fatalf("no cgroupsPath: %v", err)
	}
}

func TestDirUsage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "a-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	bytes, inodes, err := dirUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// dir, a (linked twice, counted once), sub.
	if inodes != 3 {
		t.Fatalf("inodes = %d, want 3", inodes)
	}
	if bytes < 64<<10 || bytes > 128<<10 {
		t.Fatalf("bytes = %d, want about 64 KiB plus two dirs", bytes)
	}
	if b, i, err := dirUsage(filepath.Join(dir, "missing")); err != nil || b != 0 || i != 0 {
		t.Fatalf("missing dir: %d %d %v", b, i, err)
	}
}

func TestSampleAdd(t *testing.T) {
	t0 := time.Unix(1, 0)
	a := cgroupSample{at: t0, cpuNanos: 1, memUsage: 10, memWorkingSet: 5, memRSS: 3, pgFault: 2, pgMajFault: 1, pids: 1, memLimit: 100, cpuPSI: &runtimeapi.PsiStats{}}
	b := cgroupSample{at: t0.Add(time.Second), cpuNanos: 2, memUsage: 20, memWorkingSet: 6, memRSS: 4, pgFault: 3, pgMajFault: 2, pids: 2}
	s := a.add(b)
	if s.cpuNanos != 3 || s.memUsage != 30 || s.memWorkingSet != 11 || s.memRSS != 7 || s.pgFault != 5 || s.pgMajFault != 3 || s.pids != 3 {
		t.Fatalf("sum = %+v", s)
	}
	if s.memLimit != 0 || s.cpuPSI != nil || !s.at.Equal(b.at) {
		t.Fatalf("limits and PSI cannot be summed; the time is the latest: %+v", s)
	}
}

func TestSendChunks(t *testing.T) {
	for _, n := range []int{0, 1, streamChunk - 1, streamChunk, streamChunk + 1, 3*streamChunk + 7} {
		items := make([]int, n)
		for i := range items {
			items[i] = i
		}
		var got []int
		msgs := 0
		err := sendChunks(items, func(c []int) *[]int { return &c }, func(m *[]int) error {
			if len(*m) == 0 || len(*m) > streamChunk {
				t.Fatalf("n=%d: a message of %d items", n, len(*m))
			}
			msgs++
			got = append(got, *m...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n || msgs != (n+streamChunk-1)/streamChunk {
			t.Fatalf("n=%d: got %d items in %d messages", n, len(got), msgs)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("n=%d: item %d is %d: every item once, in order", n, i, v)
			}
		}
	}
	fail := errors.New("client gone")
	if err := sendChunks([]int{1}, func(c []int) *[]int { return &c }, func(*[]int) error { return fail }); !errors.Is(err, fail) {
		t.Fatalf("send error: %v", err)
	}
}
