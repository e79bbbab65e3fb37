package bench

// Task runtime benchmarks, as root with runc and busybox-static:
//
//	go test -run '^$' -bench 'TaskCycle|IdleShim' -benchtime 1x ./test/bench/
//
// BenchmarkTaskCycle times create+start+wait+delete of a busybox /bin/true
// through pkg/runtime (the real shim, built as `make build` builds it) and,
// interleaved in the same run, the same bundle through bare runc. Set
// BENCH_CYCLES to change the number of cycles (30).
//
// BenchmarkIdleShimPSS starts 20 sleeping tasks and reads their shims'
// Pss from /proc/PID/smaps_rollup.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/runtime"
	"github.com/cri-runtime/cri-runtime/pkg/store"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

const (
	benchNS         = "bench"
	overheadTarget  = 20.0 // percent over bare runc
	pssTargetKiB    = 768  // issue 14
	idleTasks       = 20
	defaultCycles   = 30
	warmupCycles    = 3
	pssSampleRounds = 5
)

// rtEnv is a task runtime over a scratch state dir, with a real shim and a
// busybox rootfs. Its cleanup removes every task, shim, container, mount
// and dir it may have made, whatever failed.
type rtEnv struct {
	dir     string
	state   string
	busybox string
	logs    string
	st      *store.Store
	rt      *runtime.Runtime
}

func requireRuntime(b *testing.B) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root: tasks run real containers with runc")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		b.Skip("needs runc on PATH (hack/install-deps.sh installs it)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		b.Skip("needs /bin/busybox (busybox-static)")
	}
}

func newRTEnv(b *testing.B) *rtEnv {
	b.Helper()
	requireRuntime(b)
	dir, err := os.MkdirTemp("/tmp", "crbench")
	if err != nil {
		b.Fatal(err)
	}
	e := &rtEnv{dir: dir, state: filepath.Join(dir, "state"), busybox: filepath.Join(dir, "busybox"), logs: filepath.Join(dir, "logs")}
	b.Cleanup(e.cleanup)

	// The shim as `make build` ships it: static and stripped.
	shim := filepath.Join(dir, "cri-runtime-shim")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", shim, "github.com/cri-runtime/cri-runtime/cmd/cri-runtime-shim")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build shim: %v\n%s", err, out)
	}
	if err := testutil.BusyboxRootfs(e.busybox); err != nil {
		b.Fatal(err)
	}
	if e.st, err = store.Open(filepath.Join(dir, "meta.db")); err != nil {
		b.Fatal(err)
	}
	if e.rt, err = runtime.New(e.state, e.st, runtime.Config{ShimBinary: shim}); err != nil {
		b.Fatal(err)
	}
	if err := e.rt.Restore(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e
}

// cleanup tears down in dependency order: tasks through the runtime, then
// by force whatever is left (shims, runc containers, mounts), then dirs.
func (e *rtEnv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e.rt != nil {
		for _, t := range e.rt.Tasks(benchNS) {
			_ = t.Kill(ctx, syscall.SIGKILL, true)
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			_, _ = t.Wait(wctx)
			wcancel()
			_, _ = e.rt.Delete(ctx, benchNS, t.ID())
		}
		e.rt.Close()
	}
	killProcsMentioning("cri-runtime-shim", e.dir+"/")
	// runc state roots: the runtime's (<state>/runtime/runc/<ns>) and bare runc's.
	roots, _ := filepath.Glob(filepath.Join(e.state, "runtime", "*", "*"))
	roots = append(roots, filepath.Join(e.dir, "runc-root"))
	for _, root := range roots {
		ents, _ := os.ReadDir(root)
		for _, ent := range ents {
			if ent.IsDir() {
				_ = exec.Command("runc", "--root", root, "delete", "--force", ent.Name()).Run()
			}
		}
	}
	unmountUnder(e.dir)
	if e.st != nil {
		e.st.Close()
	}
	_ = os.RemoveAll(e.dir)
}

// killProcsMentioning SIGKILLs every process whose command line holds all
// of words (the shims of this run name their bundle under e.dir).
func killProcsMentioning(words ...string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		all := true
		for _, w := range words {
			all = all && bytes.Contains(data, []byte(w))
		}
		if !all {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// unmountUnder detaches every mount point below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		_ = unix.Unmount(p, unix.MNT_DETACH)
	}
}

// taskSpec is the one config both sides run; root is "rootfs" (the
// runtime mounts it) or an absolute path (bare runc).
func taskSpec(root string, args ...string) *specs.Spec {
	return &specs.Spec{
		Version:  specs.Version,
		Process:  &specs.Process{Args: args, Env: []string{"PATH=/bin"}, Cwd: "/"},
		Root:     &specs.Root{Path: root, Readonly: true},
		Hostname: "bench",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace}},
		},
	}
}

func (e *rtEnv) createOpts(id string, args ...string) runtime.CreateOpts {
	return runtime.CreateOpts{
		Spec:   taskSpec("rootfs", args...),
		Rootfs: []runtime.Mount{{Type: "bind", Source: e.busybox, Options: []string{"rbind", "ro"}}},
		IO:     runtime.IO{LogPath: filepath.Join(e.logs, id+".log")},
	}
}

// phases of a task cycle, for where the time goes.
type phases struct{ create, start, wait, delete cycleTimes }

// taskCycle is create+start+wait+delete through pkg/runtime.
func (e *rtEnv) taskCycle(ctx context.Context, id string, ph *phases) error {
	t0 := time.Now()
	t, err := e.rt.Create(ctx, benchNS, id, e.createOpts(id, "true"))
	if err != nil {
		return err
	}
	t1 := time.Now()
	if err := t.Start(ctx); err != nil {
		_, _ = e.rt.Delete(ctx, benchNS, id)
		return err
	}
	t2 := time.Now()
	exit, err := t.Wait(ctx)
	if err != nil {
		return err
	}
	t3 := time.Now()
	if _, err := e.rt.Delete(ctx, benchNS, id); err != nil {
		return err
	}
	if ph != nil {
		ph.create = append(ph.create, t1.Sub(t0))
		ph.start = append(ph.start, t2.Sub(t1))
		ph.wait = append(ph.wait, t3.Sub(t2))
		ph.delete = append(ph.delete, time.Since(t3))
	}
	if exit.Status != 0 {
		return fmt.Errorf("task %s exited %d", id, exit.Status)
	}
	return nil
}

// bareRunc drives runc itself over bundles with the same config.
type bareRunc struct {
	root    string
	bundles string
	devNull *os.File
}

func (e *rtEnv) bare(b *testing.B) *bareRunc {
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { devNull.Close() })
	return &bareRunc{root: filepath.Join(e.dir, "runc-root"), bundles: filepath.Join(e.dir, "bare"), devNull: devNull}
}

func (r *bareRunc) bundle(id string, spec *specs.Spec) (string, error) {
	dir := filepath.Join(r.bundles, id)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
}

func (r *bareRunc) runc(args ...string) *exec.Cmd {
	c := exec.Command("runc", append([]string{"--root", r.root}, args...)...)
	c.Stdin, c.Stdout, c.Stderr = r.devNull, r.devNull, r.devNull
	c.WaitDelay = time.Minute // a wedged runc fails the benchmark, not hangs it
	return c
}

// cmd runs runc. Its stderr is a file, not a pipe: the container inherits
// runc create's stdio, and a pipe would keep Wait waiting for its EOF.
func (r *bareRunc) cmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := r.runc(args...)
	stderr, err := os.CreateTemp("", "runc-stderr")
	if err != nil {
		return err
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()
	c.Stderr = stderr
	done := make(chan error, 1)
	go func() { done <- c.Run() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		if c.Process != nil {
			_ = c.Process.Kill()
		}
		err = <-done
	}
	if err != nil {
		msg, _ := os.ReadFile(stderr.Name())
		return fmt.Errorf("runc %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(msg))
	}
	return nil
}

// createStartDelete is the lifecycle the shim drives: runc create, runc
// start, wait for the init (we are its subreaper), runc delete.
func (r *bareRunc) createStartDelete(id string, spec *specs.Spec) error {
	dir, err := r.bundle(id, spec)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pidFile := filepath.Join(dir, "init.pid")
	if err := r.cmd("create", "--bundle", dir, "--pid-file", pidFile, id); err != nil {
		return err
	}
	defer r.runc("delete", "--force", id).Run()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return err
	}
	if err := r.cmd("start", id); err != nil {
		return err
	}
	// A container that does not exit is killed, so that Wait4 returns.
	stuck := time.AfterFunc(time.Minute, func() { _ = unix.Kill(pid, unix.SIGKILL) })
	defer stuck.Stop()
	var ws unix.WaitStatus
	for {
		_, err = unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("wait for %d: %w", pid, err)
	}
	if ws.ExitStatus() != 0 {
		return fmt.Errorf("container %s exited %d", id, ws.ExitStatus())
	}
	return r.cmd("delete", id)
}

// run is `runc run`: one runc process does it all.
func (r *bareRunc) run(id string, spec *specs.Spec) error {
	dir, err := r.bundle(id, spec)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return r.cmd("run", "--bundle", dir, id)
}

type cycleTimes []time.Duration

func (d cycleTimes) pct(p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func BenchmarkTaskCycle(b *testing.B) {
	e := newRTEnv(b)
	bare := e.bare(b)
	// The bare runs' container inits are re-parented to us once runc create
	// exits; we wait for them as the shim does for its own.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		b.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)

	cycles := defaultCycles
	if v, err := strconv.Atoi(os.Getenv("BENCH_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bareSpec := taskSpec(e.busybox, "true")

	var task, csd, run cycleTimes
	var ph phases
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		// Interleaved, so that drift in the machine hits all three alike.
		for i := -warmupCycles; i < cycles; i++ {
			id := fmt.Sprintf("c%d-%d", n, i+warmupCycles)
			start := time.Now()
			php := &ph
			if i < 0 {
				php = nil
			}
			if err := e.taskCycle(ctx, "t"+id, php); err != nil {
				b.Fatalf("task cycle %d: %v", i, err)
			}
			dt := time.Since(start)
			start = time.Now()
			if err := bare.createStartDelete("b"+id, bareSpec); err != nil {
				b.Fatalf("runc create/start/delete %d: %v", i, err)
			}
			dc := time.Since(start)
			start = time.Now()
			if err := bare.run("r"+id, bareSpec); err != nil {
				b.Fatalf("runc run %d: %v", i, err)
			}
			dr := time.Since(start)
			if i >= 0 {
				task, csd, run = append(task, dt), append(csd, dc), append(run, dr)
			}
		}
	}
	b.StopTimer()

	overhead := (millis(task.pct(50))/millis(csd.pct(50)) - 1) * 100
	overheadRun := (millis(task.pct(50))/millis(run.pct(50)) - 1) * 100
	b.ReportMetric(millis(task.pct(50)), "task-p50-ms")
	b.ReportMetric(millis(task.pct(95)), "task-p95-ms")
	b.ReportMetric(millis(csd.pct(50)), "runc-p50-ms")
	b.ReportMetric(millis(csd.pct(95)), "runc-p95-ms")
	b.ReportMetric(millis(run.pct(50)), "runcrun-p50-ms")
	b.ReportMetric(overhead, "overhead-%")
	b.ReportMetric(0, "ns/op")
	verdict := "ok"
	if overhead >= overheadTarget {
		verdict = "OVER TARGET"
	}
	fmt.Printf("task cycle: p50 %.1fms p95 %.1fms | bare runc create+start+delete: p50 %.1fms p95 %.1fms | overhead %+.1f%% (target < %.0f%%: %s) [%d cycles]\n",
		millis(task.pct(50)), millis(task.pct(95)), millis(csd.pct(50)), millis(csd.pct(95)), overhead, overheadTarget, verdict, len(task))
	fmt.Printf("task cycle vs bare `runc run` (one runc process for the whole life): p50 %.1fms p95 %.1fms | overhead %+.1f%%\n",
		millis(run.pct(50)), millis(run.pct(95)), overheadRun)
	fmt.Printf("task cycle phases p50: create %.1fms (store, bundle, shim start, mount, runc create) start %.1fms wait %.1fms delete %.1fms (runc delete, unmount, shim shutdown, store)\n",
		millis(ph.create.pct(50)), millis(ph.start.pct(50)), millis(ph.wait.pct(50)), millis(ph.delete.pct(50)))
}

func BenchmarkIdleShimPSS(b *testing.B) {
	e := newRTEnv(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for n := 0; n < b.N; n++ {
		var shims []int
		for i := 0; i < idleTasks; i++ {
			id := fmt.Sprintf("idle%d-%d", n, i)
			t, err := e.rt.Create(ctx, benchNS, id, e.createOpts(id, "sleep", "100000"))
			if err != nil {
				b.Fatal(err)
			}
			if err := t.Start(ctx); err != nil {
				b.Fatal(err)
			}
			shims = append(shims, t.ShimPid())
		}
		time.Sleep(3 * time.Second) // the shims trim their heap after a quiet second
		var sum, peak, samples, threads int
		for round := 0; round < pssSampleRounds; round++ {
			if round > 0 {
				time.Sleep(time.Second)
			}
			for _, pid := range shims {
				pss, thr, err := procPSS(pid)
				if err != nil {
					b.Fatal(err)
				}
				sum += pss
				samples++
				peak = max(peak, pss)
				threads += thr
			}
		}
		mean := float64(sum) / float64(samples)
		b.ReportMetric(mean, "pss-mean-KiB")
		b.ReportMetric(float64(peak), "pss-max-KiB")
		b.ReportMetric(0, "ns/op")
		verdict := "ok"
		if mean >= pssTargetKiB {
			verdict = "OVER TARGET"
		}
		fmt.Printf("idle shim PSS (%d tasks, %d samples): mean %.0f KiB max %d KiB, %.1f threads | target < %d KiB: %s\n",
			idleTasks, samples, mean, peak, float64(threads)/float64(samples), pssTargetKiB, verdict)
		if kinds, err := pssByKind(shims[0]); err == nil {
			fmt.Printf("idle shim PSS by mapping (one shim): %s\n", kinds)
		}
		for _, t := range e.rt.Tasks(benchNS) {
			_ = t.Kill(ctx, syscall.SIGKILL, true)
			if _, err := t.Wait(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := e.rt.Delete(ctx, benchNS, t.ID()); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// pssByKind sums a process's Pss (KiB) from /proc/PID/smaps by what the
// mappings hold: the binary's text, read-only data and writable data
// (file-backed, shared between shims of the same binary), anonymous
// memory (Go's heap arenas, goroutine and thread stacks, the runtime's
// metadata, .bss), the main thread's [stack], and the rest (vdso, vvar).
func pssByKind(pid int) (string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		return "", err
	}
	sums := map[string]int{}
	kind := ""
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4 {
			perms, name := f[1], ""
			if len(f) >= 6 {
				name = f[5]
			}
			switch {
			case name == "[stack]":
				kind = "stack"
			case name == "" || name == "[heap]":
				kind = "anon"
			case strings.HasPrefix(name, "["):
				kind = "other"
			case strings.Contains(perms, "x"):
				kind = "text"
			case strings.Contains(perms, "w"):
				kind = "data"
			default:
				kind = "rodata"
			}
			continue
		}
		if len(f) >= 2 && f[0] == "Pss:" {
			v, _ := strconv.Atoi(f[1])
			sums[kind] += v
		}
	}
	var out []string
	for _, k := range []string{"anon", "text", "rodata", "data", "stack", "other"} {
		out = append(out, fmt.Sprintf("%s %d KiB", k, sums[k]))
	}
	return strings.Join(out, ", "), nil
}

// procPSS reads a process's Pss (KiB) and thread count.
func procPSS(pid int) (pss, threads int, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
			pss, _ = strconv.Atoi(f[1])
		}
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return pss, threads, nil
}
