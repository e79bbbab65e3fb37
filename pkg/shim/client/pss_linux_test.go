package client_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIdleShimPSS starts 20 sleeping tasks and reports the shims' idle PSS.
// It fails above 1.5 MiB per shim. Opt-in (SHIM_PSS=1): it measures the
// machine as much as the code.
func TestIdleShimPSS(t *testing.T) {
	if os.Getenv("SHIM_PSS") == "" {
		t.Skip("skipping: set SHIM_PSS=1 to measure idle shim PSS")
	}
	if raceEnabled {
		t.Skip("skipping: a race-built shim is not representative")
	}
	var tasks []*task
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < 20; i++ {
		k := newTask(t, []string{"sleep", "1000"})
		k.run(ctx)
		tasks = append(tasks, k)
	}
	time.Sleep(3 * time.Second) // let the runtime settle and the idle trim run
	// Five rounds a second apart: one reading is noise.
	var total, max, n, threads int
	for round := 0; round < 5; round++ {
		if round > 0 {
			time.Sleep(time.Second)
		}
		for _, k := range tasks {
			pss := readPSS(t, k.shimPid)
			total += pss
			n++
			if pss > max {
				max = pss
			}
			threads += readThreads(t, k.shimPid)
		}
	}
	t.Logf("idle shim PSS: average %d KiB, max %d KiB, %.1f threads over %d shims x 5 samples",
		total/n, max, float64(threads)/float64(n), len(tasks))
	if total/n > 1536 {
		t.Errorf("average idle PSS %d KiB is over 1.5 MiB", total/n)
	}
}

func readThreads(t *testing.T, pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func readPSS(t *testing.T, pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no Pss in smaps_rollup")
	return 0
}
