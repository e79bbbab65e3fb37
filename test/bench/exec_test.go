package bench

// ExecSync benchmark, as root with runc and busybox-static:
//
//	go test -run '^$' -bench ExecSync -benchtime 1x ./test/bench/
//
// BenchmarkExecSync starts one sleeping busybox task through pkg/runtime
// (the real shim) and runs /bin/true in it two ways, interleaved on the
// same container: the daemon's ExecSync path (pkg/cri/stream Exec: read the
// bundle's config.json for the init's process spec, Exec, Attach, Start,
// Wait for the exit and the output's EOF, Delete) and bare
// `runc --root <root> exec <id> /bin/true`. What is not timed is the CRI
// gRPC hop from the kubelet to the daemon (one unary call on a unix
// socket). Set BENCH_EXECS to change the number of execs (50).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

const (
	defaultExecs = 50
	warmupExecs  = 3
)

// execPhases of one ExecSync, for where the time goes.
type execPhases struct{ spec, exec, attach, start, wait, del cycleTimes }

// execSync is what pkg/cri's ExecSync does for a running container's task
// (stream.Exec and stream.ProcessSpec), step for step.
func execSync(ctx context.Context, task *runtime.Task, id string, ph *execPhases) (int, error) {
	t0 := time.Now()
	data, err := os.ReadFile(filepath.Join(task.Bundle(), "config.json"))
	if err != nil {
		return 0, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return 0, err
	}
	proc := *spec.Process
	proc.Args = []string{"/bin/true"}
	t1 := time.Now()
	p, err := task.Exec(ctx, id, &proc, runtime.IO{})
	if err != nil {
		return 0, err
	}
	deleted := false
	defer func() {
		if !deleted {
			_ = p.Delete(context.WithoutCancel(ctx))
		}
	}()
	t2 := time.Now()
	att, err := p.Attach(ctx, runtime.AttachOpts{Stdout: true, Stderr: true})
	if err != nil {
		return 0, err
	}
	defer att.Close()
	copied := make(chan error, 1)
	go func() { copied <- att.CopyOutput(io.Discard, io.Discard) }()
	t3 := time.Now()
	if _, err := p.Start(ctx); err != nil {
		return 0, err
	}
	t4 := time.Now()
	exit, err := p.Wait(ctx)
	if err != nil {
		_ = p.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return 0, err
	}
	select {
	case <-copied:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	t5 := time.Now()
	deleted = true
	if err := p.Delete(ctx); err != nil {
		return 0, err
	}
	if ph != nil {
		ph.spec = append(ph.spec, t1.Sub(t0))
		ph.exec = append(ph.exec, t2.Sub(t1))
		ph.attach = append(ph.attach, t3.Sub(t2))
		ph.start = append(ph.start, t4.Sub(t3))
		ph.wait = append(ph.wait, t5.Sub(t4))
		ph.del = append(ph.del, time.Since(t5))
	}
	return exit.Status, nil
}

// runcExec is `runc --root root exec id /bin/true`, in the foreground.
func runcExec(ctx context.Context, devNull *os.File, root, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "runc", "--root", root, "exec", id, "/bin/true")
	c.Stdin, c.Stdout = devNull, devNull
	stderr, err := os.CreateTemp("", "runc-stderr")
	if err != nil {
		return err
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()
	c.Stderr = stderr
	c.WaitDelay = 10 * time.Second
	if err := c.Run(); err != nil {
		msg, _ := os.ReadFile(stderr.Name())
		return fmt.Errorf("runc exec %s: %v: %s", id, err, msg)
	}
	return nil
}

func BenchmarkExecSync(b *testing.B) {
	e := newRTEnv(b) // its cleanup kills and deletes the task, whatever failed
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devNull.Close()
	execs := defaultExecs
	if v, err := strconv.Atoi(os.Getenv("BENCH_EXECS")); err == nil && v > 0 {
		execs = v
	}

	const id = "exec-target"
	task, err := e.rt.Create(ctx, benchNS, id, e.createOpts(id, "sleep", "100000"))
	if err != nil {
		b.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		b.Fatal(err)
	}
	root := task.Runtime().Root

	var viaShim, bare cycleTimes
	var ph execPhases
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		// Interleaved, so that drift in the machine hits both alike.
		for i := -warmupExecs; i < execs; i++ {
			php := &ph
			if i < 0 {
				php = nil
			}
			start := time.Now()
			code, err := execSync(ctx, task, fmt.Sprintf("x%d-%d", n, i+warmupExecs), php)
			if err != nil {
				b.Fatalf("exec sync %d: %v", i, err)
			}
			if code != 0 {
				b.Fatalf("exec sync %d: /bin/true exited %d", i, code)
			}
			ds := time.Since(start)
			start = time.Now()
			if err := runcExec(ctx, devNull, root, id); err != nil {
				b.Fatalf("bare runc exec %d: %v", i, err)
			}
			db := time.Since(start)
			if i >= 0 {
				viaShim, bare = append(viaShim, ds), append(bare, db)
			}
		}
	}
	b.StopTimer()

	ratio := millis(viaShim.pct(50)) / millis(bare.pct(50))
	b.ReportMetric(millis(viaShim.pct(50)), "execsync-p50-ms")
	b.ReportMetric(millis(viaShim.pct(95)), "execsync-p95-ms")
	b.ReportMetric(millis(bare.pct(50)), "runcexec-p50-ms")
	b.ReportMetric(millis(bare.pct(95)), "runcexec-p95-ms")
	b.ReportMetric(ratio, "execsync/runcexec")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("exec sync: p50 %.1fms p95 %.1fms | bare runc exec: p50 %.1fms p95 %.1fms | overhead %+.1f%% [%d execs, same container]\n",
		millis(viaShim.pct(50)), millis(viaShim.pct(95)), millis(bare.pct(50)), millis(bare.pct(95)), (ratio-1)*100, len(viaShim))
	fmt.Printf("exec sync phases p50: spec %.2fms (read config.json) exec %.2fms attach %.2fms start %.1fms (runc exec --detach) wait %.2fms (exit + output EOF) delete %.2fms\n",
		millis(ph.spec.pct(50)), millis(ph.exec.pct(50)), millis(ph.attach.pct(50)), millis(ph.start.pct(50)), millis(ph.wait.pct(50)), millis(ph.del.pct(50)))
}
