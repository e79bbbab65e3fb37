package stats

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
	want := NetDev{name: "eth0", rxBytes: 12345, rxPackets: 10, rxErrors: 2, rxDropped: 4, txBytes: 6789, txPackets: 8, txErrors: 3, txDropped: 5}
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
			got, err := CgroupFSPath(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("CgroupFSPath(%q) = %q, %v; want %v", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CgroupFSPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestBundleCgroupsPath(t *testing.T) {
	dir := t.TempDir()
	if _, err := BundleCgroupsPath(dir); !errdefs.IsNotFound(err) {
		t.Fatalf("no config.json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"linux":{"cgroupsPath":"/cri-runtime/abc"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := BundleCgroupsPath(dir); err != nil || p != "/cri-runtime/abc" {
		t.Fatalf("BundleCgroupsPath = %q, %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"linux":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := BundleCgroupsPath(dir); !errdefs.IsNotFound(err) {
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
	bytes, inodes, err := DirUsage(dir)
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
	if b, i, err := DirUsage(filepath.Join(dir, "missing")); err != nil || b != 0 || i != 0 {
		t.Fatalf("missing dir: %d %d %v", b, i, err)
	}
}

func TestSampleAdd(t *testing.T) {
	t0 := time.Unix(1, 0)
	a := Sample{At: t0, CPUNanos: 1, MemUsage: 10, MemWorkingSet: 5, MemRSS: 3, PgFault: 2, PgMajFault: 1, Pids: 1, MemLimit: 100, CPUPSI: &runtimeapi.PsiStats{}}
	b := Sample{At: t0.Add(time.Second), CPUNanos: 2, MemUsage: 20, MemWorkingSet: 6, MemRSS: 4, PgFault: 3, PgMajFault: 2, Pids: 2}
	s := a.Add(b)
	if s.CPUNanos != 3 || s.MemUsage != 30 || s.MemWorkingSet != 11 || s.MemRSS != 7 || s.PgFault != 5 || s.PgMajFault != 3 || s.Pids != 3 {
		t.Fatalf("sum = %+v", s)
	}
	if s.MemLimit != 0 || s.CPUPSI != nil || !s.At.Equal(b.At) {
		t.Fatalf("limits and PSI cannot be summed; the time is the latest: %+v", s)
	}
}
