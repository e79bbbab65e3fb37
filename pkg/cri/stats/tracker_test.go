package stats

import (
	"testing"
	"time"
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
