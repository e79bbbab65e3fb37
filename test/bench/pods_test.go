package bench

// Pod benchmarks side by side with containerd (issue 14), as root:
//
//	go test -run '^$' -bench 'Pod' -benchtime 1x ./test/bench/
//
// Both runtimes run at once on private paths (cri_test.go), with the same
// runc, CNI network and local registry, and are driven by the same CRI
// client code with the same configs: one-container pods (busybox
// `sleep 3600`) in PID namespace mode CONTAINER, as the kubelet sends them,
// images pulled before anything is timed.
//
// BenchmarkPodsVsContainerd alternates the two runtimes for
// BENCH_POD_ITERATIONS (20) pod lifecycles one at a time, timing
// RunPodSandbox, CreateContainer+StartContainer and the teardown (Stop and
// Remove of the container, then of the pod); then, BENCH_PARALLEL_ROUNDS
// (3) times each, alternated, starts 20 pods at once and reads the memory
// the 20 running pods cost: the Pss of every process of the pods but
// their workload (shims, pause: the monitor memory) and the daemon's RSS.
//
// BenchmarkPodDensityVsContainerd starts BENCH_DENSITY_PODS (110, the
// kubelet's default max-pods) one-container pods 10 at a time on each
// runtime in turn and reads the same memory at 110 pods.
//
// Each prints its figures next to containerd's from the same run with the
// ratio ours/containerd, and each target with PASS or MISS. A missed
// target does not fail the benchmark; a runtime that cannot run pods does.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

const (
	defaultPodIterations  = 20
	podWarmup             = 2
	parallelPods          = 20
	defaultParallelRounds = 3
	defaultDensityPods    = 110
	densityWidth          = 10
	memRounds             = 3
	// The targets of issue 14: ours/containerd ratios from one run, and
	// the monitor memory of a one-container pod.
	ratioTarget      = 0.5
	monitorTargetKiB = 768
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// row is one figure of a report, for both runtimes.
type row struct {
	name       string
	unit       string
	ours, ctrd float64
	// kind of target: "" none, "ratio" ours/containerd ≤ ratioTarget,
	// "monitor" ours ≤ monitorTargetKiB.
	target string
	metric string // benchmark metric stem, "" for none
}

func (r row) verdict() (string, bool) {
	switch r.target {
	case "ratio":
		return fmt.Sprintf("≤ %.2f× containerd", ratioTarget), r.ours <= ratioTarget*r.ctrd
	case "monitor":
		return fmt.Sprintf("≤ %d KiB", monitorTargetKiB), r.ours <= monitorTargetKiB
	}
	return "", true
}

func fmtValue(v float64, unit string) string {
	switch unit {
	case "ms", "MiB":
		return fmt.Sprintf("%.1f %s", v, unit)
	case "s":
		return fmt.Sprintf("%.2f %s", v, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

// report prints the rows as a table and reports them as metrics.
func report(b *testing.B, title, ctrdVersion string, rows []row) {
	b.Helper()
	w := 0
	for _, r := range rows {
		w = max(w, len([]rune(r.name)))
	}
	ctrd := "containerd " + ctrdVersion
	fmt.Printf("%s\n", title)
	fmt.Printf("  %-*s  %12s  %16s  %6s  %s\n", w, "figure", "cri-runtime", ctrd, "ratio", "target")
	for _, r := range rows {
		target, ok := r.verdict()
		if target != "" {
			if ok {
				target += ": PASS"
			} else {
				target += ": MISS"
			}
		}
		ratio := r.ours / r.ctrd
		fmt.Printf("  %-*s  %12s  %16s  %6.2f  %s\n", w+len(r.name)-len([]rune(r.name)), r.name,
			fmtValue(r.ours, r.unit), fmtValue(r.ctrd, r.unit), ratio, target)
		if r.metric != "" {
			b.ReportMetric(r.ours, r.metric+"-"+r.unit)
			b.ReportMetric(r.ctrd, "ctrd-"+r.metric+"-"+r.unit)
			b.ReportMetric(ratio, r.metric+"/ctrd")
		}
	}
	b.ReportMetric(0, "ns/op")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// lifeTimes are one runtime's sequential pod lifecycles.
type lifeTimes struct{ run, createStart, start, teardown cycleTimes }

// parallelRound is one start of 20 pods at once and the memory they cost.
type parallelRound struct {
	wall, teardown time.Duration
	mem            memSample
}

func BenchmarkPodsVsContainerd(b *testing.B) {
	e := newPodEnv(b)
	iters := envInt("BENCH_POD_ITERATIONS", defaultPodIterations)
	rounds := envInt("BENCH_PARALLEL_ROUNDS", defaultParallelRounds)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	both := e.daemons()
	times := map[*criDaemon]*lifeTimes{e.ours: {}, e.ctrd: {}}
	par := map[*criDaemon][]parallelRound{}

	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		// One pod at a time, the runtimes alternated (and which goes first
		// too), so that drift in the machine hits both alike.
		for i := -podWarmup; i < iters; i++ {
			order := both
			if i%2 != 0 {
				order = []*criDaemon{both[1], both[0]}
			}
			for _, d := range order {
				p, run, cs, err := e.startPod(ctx, d)
				if err != nil {
					b.Fatal(err)
				}
				td, err := d.stopPod(ctx, p)
				if err != nil {
					b.Fatal(err)
				}
				if i >= 0 {
					t := times[d]
					t.run = append(t.run, run)
					t.createStart = append(t.createStart, cs)
					t.start = append(t.start, run+cs)
					t.teardown = append(t.teardown, td)
				}
			}
		}
		// 20 pods at once, each runtime in turn, alternated by round.
		for r := range rounds {
			order := both
			if r%2 != 0 {
				order = []*criDaemon{both[1], both[0]}
			}
			for _, d := range order {
				pods, wall, err := e.parallel(ctx, d, parallelPods, parallelPods)
				if err != nil {
					b.Fatal(err)
				}
				if err := d.checkRunning(ctx, parallelPods); err != nil {
					b.Fatal(err)
				}
				mem, err := d.settledMemory(parallelPods, memRounds)
				if err != nil {
					b.Fatal(err)
				}
				td, err := d.teardown(ctx, pods, parallelPods)
				if err != nil {
					b.Fatal(err)
				}
				if err := d.checkRunning(ctx, 0); err != nil {
					b.Fatal(err)
				}
				par[d] = append(par[d], parallelRound{wall: wall, teardown: td, mem: mem})
			}
		}
	}
	b.StopTimer()

	parMedian := func(d *criDaemon, f func(parallelRound) float64) float64 {
		var v []float64
		for _, r := range par[d] {
			v = append(v, f(r))
		}
		return median(v)
	}
	o, c := times[e.ours], times[e.ctrd]
	wall := func(r parallelRound) float64 { return r.wall.Seconds() }
	tdWall := func(r parallelRound) float64 { return r.teardown.Seconds() }
	monitor := func(r parallelRound) float64 { return float64(r.mem.monitorPSS) / parallelPods }
	rss := func(r parallelRound) float64 { return float64(r.mem.daemonRSS) / 1024 }
	rows := []row{
		{name: "RunPodSandbox p50", unit: "ms", ours: p50(o.run), ctrd: p50(c.run), metric: "runpod-p50"},
		{name: "CreateContainer+StartContainer p50", unit: "ms", ours: p50(o.createStart), ctrd: p50(c.createStart), metric: "createstart-p50"},
		{name: "RunPodSandbox+Create+Start p50", unit: "ms", ours: p50(o.start), ctrd: p50(c.start), target: "ratio", metric: "podstart-p50"},
		{name: "Stop+Remove container, Stop+Remove pod p50", unit: "ms", ours: p50(o.teardown), ctrd: p50(c.teardown), target: "ratio", metric: "teardown-p50"},
		{name: fmt.Sprintf("%d pods started at once, wall", parallelPods), unit: "s", ours: parMedian(e.ours, wall), ctrd: parMedian(e.ctrd, wall), target: "ratio", metric: "par20-wall"},
		{name: fmt.Sprintf("%d pods torn down at once, wall", parallelPods), unit: "s", ours: parMedian(e.ours, tdWall), ctrd: parMedian(e.ctrd, tdWall), metric: "par20-teardown"},
		{name: fmt.Sprintf("monitor Pss per 1-container pod, %d pods", parallelPods), unit: "KiB", ours: parMedian(e.ours, monitor), ctrd: parMedian(e.ctrd, monitor), target: "monitor", metric: "monitor20"},
		{name: fmt.Sprintf("daemon RSS with %d pods", parallelPods), unit: "MiB", ours: parMedian(e.ours, rss), ctrd: parMedian(e.ctrd, rss), metric: "daemon20-rss"},
	}
	report(b, fmt.Sprintf("pods: cri-runtime %s vs containerd %s, same run [%d lifecycles each, alternated; %d pods at once × %d rounds, medians; PID namespace CONTAINER, busybox sleep 3600]",
		e.ours.version, e.ctrd.version, iters, parallelPods, rounds), e.ctrd.version, rows)
	fmt.Printf("  p95: start %.1f ms vs %.1f ms, teardown %.1f ms vs %.1f ms\n",
		millis(o.start.pct(95)), millis(c.start.pct(95)), millis(o.teardown.pct(95)), millis(c.teardown.pct(95)))
	for _, d := range both {
		last := par[d][len(par[d])-1].mem
		fmt.Printf("  %s monitor per pod (last round): %s\n", d.name, last.perPod(parallelPods))
	}
}

func p50(d cycleTimes) float64 { return millis(d.pct(50)) }

// densityRun is one runtime's density figures.
type densityRun struct {
	wall, teardown time.Duration
	mem            memSample
}

func BenchmarkPodDensityVsContainerd(b *testing.B) {
	e := newPodEnv(b)
	pods := envInt("BENCH_DENSITY_PODS", defaultDensityPods)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	runs := map[*criDaemon]densityRun{}

	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for _, d := range e.daemons() {
			started, wall, err := e.parallel(ctx, d, pods, densityWidth)
			if err != nil {
				b.Fatal(err)
			}
			if err := d.checkRunning(ctx, pods); err != nil {
				b.Fatal(err)
			}
			mem, err := d.settledMemory(pods, memRounds)
			if err != nil {
				b.Fatal(err)
			}
			td, err := d.teardown(ctx, started, densityWidth)
			if err != nil {
				b.Fatal(err)
			}
			if err := d.checkRunning(ctx, 0); err != nil {
				b.Fatal(err)
			}
			runs[d] = densityRun{wall: wall, teardown: td, mem: mem}
		}
	}
	b.StopTimer()

	o, c := runs[e.ours], runs[e.ctrd]
	per := func(kib int) float64 { return float64(kib) / float64(pods) }
	rows := []row{
		{name: fmt.Sprintf("%d pods started %d at a time, wall", pods, densityWidth), unit: "s", ours: o.wall.Seconds(), ctrd: c.wall.Seconds(), metric: "density-wall"},
		{name: fmt.Sprintf("%d pods torn down %d at a time, wall", pods, densityWidth), unit: "s", ours: o.teardown.Seconds(), ctrd: c.teardown.Seconds(), metric: "density-teardown"},
		{name: fmt.Sprintf("monitor Pss per pod at %d", pods), unit: "KiB", ours: per(o.mem.monitorPSS), ctrd: per(c.mem.monitorPSS), target: "monitor", metric: "monitor-density"},
		{name: fmt.Sprintf("daemon RSS at %d pods", pods), unit: "MiB", ours: float64(o.mem.daemonRSS) / 1024, ctrd: float64(c.mem.daemonRSS) / 1024, metric: "daemon-density-rss"},
		{name: "daemon RSS / pods", unit: "KiB", ours: per(o.mem.daemonRSS), ctrd: per(c.mem.daemonRSS)},
		{name: "daemon + monitor per pod", unit: "KiB", ours: per(o.mem.daemonRSS + o.mem.monitorPSS), ctrd: per(c.mem.daemonRSS + c.mem.monitorPSS), metric: "perpod-density"},
	}
	report(b, fmt.Sprintf("pod density: cri-runtime %s vs containerd %s, same run [%d one-container pods, %d at a time, one runtime after the other; PID namespace CONTAINER]",
		e.ours.version, e.ctrd.version, pods, densityWidth), e.ctrd.version, rows)
	for _, d := range e.daemons() {
		fmt.Printf("  %s monitor per pod: %s\n", d.name, runs[d].mem.perPod(pods))
	}
}
