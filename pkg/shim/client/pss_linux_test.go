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
	time.Sleep(3 * time.Second) // let the runtime settle and the GC run
	var total, max int
	for _, k := range tasks {
		pss := readPSS(t, k.shimPid)
		total += pss
		if pss > max {
			max = pss
		}
	}
	t.Logf("idle shim PSS: average %d KiB, max %d KiB over %d shims", total/len(tasks), max, len(tasks))
	if total/len(tasks) > 1536 {
		t.Errorf("average idle PSS %d KiB is over 1.5 MiB", total/len(tasks))
	}
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
