package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/store"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

const testNS = "rt-test"

var (
	shimBinary string // built once in TestMain
	busyboxDir string // a read-only busybox rootfs shared by the tests
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Getenv("RUNTIME_TEST_SILENT_SHIM") == "1" {
		// A stand-in for a shim that was launched but never answers.
		time.Sleep(time.Hour)
		return 0
	}
	dir, err := os.MkdirTemp("/tmp", "rtbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root: tasks run real containers with runc"
	default:
		if _, err := exec.LookPath("runc"); err != nil {
			skipReason = "needs runc on PATH (hack/install-deps.sh installs it)"
		} else if _, err := os.Stat("/bin/busybox"); err != nil {
			skipReason = "needs /bin/busybox from busybox-static (hack/install-deps.sh installs it)"
		}
	}
	if skipReason == "" {
		shimBinary = filepath.Join(dir, "cri-runtime-shim")
		out, err := exec.Command("go", "build", "-o", shimBinary, "github.com/cri-runtime/cri-runtime/cmd/cri-runtime-shim").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build shim: %v\n%s", err, out)
			return 1
		}
		busyboxDir = filepath.Join(dir, "busybox")
		if err := testutil.BusyboxRootfs(busyboxDir); err != nil {
			fmt.Fprintln(os.Stderr, "busybox rootfs:", err)
			return 1
		}
	}
	return m.Run()
}

func requireRuntime(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// env is one daemon's worth of dirs: a runtime over them can be closed and
// opened again, as a daemon restart does.
type env struct {
	t     *testing.T
	state string
	db    string
	logs  string
	st    *store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	requireRuntime(t)
	dir, err := os.MkdirTemp("/tmp", "rt")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, state: filepath.Join(dir, "state"), db: filepath.Join(dir, "meta.db"), logs: filepath.Join(dir, "logs")}
	t.Cleanup(func() {
		// Kill whatever a failed test left: shims and containers.
		killShimsUnder(e.state)
		_ = filepath.Walk(filepath.Join(e.state, "runtime"), func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() && filepath.Base(filepath.Dir(p)) == testNS {
				_ = exec.Command("runc", "--root", filepath.Dir(p), "delete", "--force", info.Name()).Run()
			}
			return nil
		})
		_ = filepath.Walk(filepath.Join(e.state, "tasks"), func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() && info.Name() == api.RootfsDir {
				_ = unmountAll(p)
			}
			return nil
		})
		if e.st != nil {
			e.st.Close()
		}
		os.RemoveAll(dir)
	})
	return e
}

// open starts a runtime over the env's dirs, subscribed before restore.
func (e *env) open() (*Runtime, <-chan Event) {
	e.t.Helper()
	if e.st == nil {
		st, err := store.Open(e.db)
		if err != nil {
			e.t.Fatal(err)
		}
		e.st = st
	}
	r, err := New(e.state, e.st, Config{ShimBinary: shimBinary})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := r.Subscribe(ctx)
	if err := r.Restore(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cancel(); r.Close() })
	return r, events
}

func (e *env) spec(id string, args ...string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bin"},
			Cwd:  "/",
		},
		Root:     &specs.Root{Path: api.RootfsDir},
		Hostname: "rt",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace}},
		},
	}
}

func (e *env) opts(id string, args ...string) CreateOpts {
	return CreateOpts{
		Spec:   e.spec(id, args...),
		Rootfs: []Mount{{Type: "bind", Source: busyboxDir, Options: []string{"rbind", "ro"}}},
		IO:     IO{LogPath: filepath.Join(e.logs, id+".log")},
	}
}

// killShimsUnder SIGKILLs every shim whose socket lives under state.
func killShimsUnder(state string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte("cri-runtime-shim")) || !bytes.Contains(data, []byte(state+"/")) {
			continue
		}
		var pid int
		fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func shimsUnder(state string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err == nil && bytes.Contains(data, []byte("cri-runtime-shim")) && bytes.Contains(data, []byte(state+"/")) {
			n++
		}
	}
	return n
}

func mountsUnder(dir string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// assertClean checks that nothing of a deleted task is left.
func (e *env) assertClean(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(e.state, "tasks", testNS, id)); !errors.Is(err, os.ErrNotExist) {
			e.t.Errorf("bundle of %s left behind (%v)", id, err)
		}
		if _, err := os.Stat(filepath.Join(e.state, "runtime", "runc", testNS, id)); !errors.Is(err, os.ErrNotExist) {
			e.t.Errorf("runc state of %s left behind (%v)", id, err)
		}
	}
	if m := mountsUnder(e.state); len(m) > 0 {
		e.t.Errorf("mounts left behind: %v", m)
	}
	deadline := time.Now().Add(5 * time.Second)
	for shimsUnder(e.state) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := shimsUnder(e.state); n > 0 {
		e.t.Errorf("%d shim processes left behind", n)
	}
	socks, _ := filepath.Glob(filepath.Join(e.state, "s", "*"))
	if len(socks) > 0 {
		e.t.Errorf("shim sockets left behind: %v", socks)
	}
}

// readLog parses a CRI log file into "stream line" entries.
func readLog(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) != 4 {
			t.Fatalf("log line not in CRI format: %q", sc.Text())
		}
		if _, err := time.Parse(time.RFC3339Nano, parts[0]); err != nil {
			t.Fatalf("log line timestamp %q: %v", parts[0], err)
		}
		if parts[2] != "F" && parts[2] != "P" {
			t.Fatalf("log line tag %q", parts[2])
		}
		out = append(out, parts[1]+" "+parts[3])
	}
	return out
}

func waitEvent(t *testing.T, events <-chan Event, typ EventType, id string) Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event channel closed while waiting for %s of %s", typ, id)
			}
			if ev.Type == typ && ev.ID == id {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event for %s", typ, id)
		}
	}
}

// noMoreEvents asserts that no event of typ for id arrives for a while.
func noMoreEvents(t *testing.T, events <-chan Event, typ EventType, id string) {
	t.Helper()
	timeout := time.After(500 * time.Millisecond)
	for {
		select {
		case ev := <-events:
			if ev.Type == typ && ev.ID == id {
				t.Fatalf("second %s event for %s: %+v", typ, id, ev)
			}
		case <-timeout:
			return
		}
	}
}

func TestTaskOutputAndExitCode(t *testing.T) {
	e := newEnv(t)
	r, events := e.open()
	ctx := context.Background()
	before := time.Now()
	task, err := r.Create(ctx, testNS, "exit3", e.opts("exit3", "sh", "-c", "echo one; echo two >&2; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, EventTaskCreate, "exit3")
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, EventTaskStart, "exit3")
	ev := waitEvent(t, events, EventTaskExit, "exit3")
	if ev.Exit.Status != 3 {
		t.Fatalf("TaskExit status %d, want 3", ev.Exit.Status)
	}
	exit, err := r.Delete(ctx, testNS, "exit3")
	if err != nil {
		t.Fatal(err)
	}
	if exit.Status != 3 || exit.ExitedAt.Before(before) || exit.ExitedAt.After(time.Now()) {
		t.Fatalf("Delete returned %+v, want status 3 with a time since %v", exit, before)
	}
	waitEvent(t, events, EventTaskDelete, "exit3")
	got := readLog(t, filepath.Join(e.logs, "exit3.log"))
	want := map[string]bool{"stdout one": true, "stderr two": true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] {
		t.Fatalf("log %q, want stdout one and stderr two", got)
	}
	if _, err := r.Get(testNS, "exit3"); !errdefs.IsNotFound(err) {
		t.Fatalf("Get after delete: %v", err)
	}
	e.assertClean("exit3")
}

func TestTaskSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	ctx := context.Background()
	task, err := r.Create(ctx, testNS, "long", e.opts("long", "sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid := task.Pid()
	r.Close()

	r2, events := e.open()
	task2, err := r2.Get(testNS, "long")
	if err != nil {
		t.Fatalf("task not restored: %v", err)
	}
	if task2.Pid() != pid {
		t.Fatalf("restored pid %d, want %d", task2.Pid(), pid)
	}
	if got := r2.RestoreStats(); got != (RestoreStats{Running: 1}) {
		t.Errorf("RestoreStats = %+v, want one running", got)
	}
	st, err := task2.State(ctx)
	if err != nil || st.Status != api.StatusRunning {
		t.Fatalf("restored task state %+v, %v; want running", st, err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("container process gone across the restart: %v", err)
	}
	if err := task2.Kill(ctx, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, events, EventTaskExit, "long")
	if ev.Exit.Status != 137 {
		t.Fatalf("exit %d, want 137", ev.Exit.Status)
	}
	if _, err := r2.Delete(ctx, testNS, "long"); err != nil {
		t.Fatal(err)
	}
	noMoreEvents(t, events, EventTaskExit, "long")
	e.assertClean("long")
}

func TestExitWhileDaemonDown(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	ctx := context.Background()
	task, err := r.Create(ctx, testNS, "down", e.opts("down", "sh", "-c", "read x </dev/null; sleep 1; echo last words; exit 7"))
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.Close()
	// The task exits while no daemon runs.
	time.Sleep(2 * time.Second)
	down := time.Now()

	r2, events := e.open()
	task2, err := r2.Get(testNS, "down")
	if err != nil {
		t.Fatalf("task not restored: %v", err)
	}
	exit, err := task2.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if exit.Status != 7 {
		t.Fatalf("exit %d after restart, want the real 7", exit.Status)
	}
	if !exit.ExitedAt.Before(down) {
		t.Fatalf("exit time %v is not the real one (before %v)", exit.ExitedAt, down)
	}
	ev := waitEvent(t, events, EventTaskExit, "down")
	if ev.Exit.Status != 7 {
		t.Fatalf("published exit %d, want 7", ev.Exit.Status)
	}
	if _, err := r2.Delete(ctx, testNS, "down"); err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, filepath.Join(e.logs, "down.log")); len(got) != 1 || got[0] != "stdout last words" {
		t.Fatalf("log %q, want the last line", got)
	}
	e.assertClean("down")
}

func TestShimKilled(t *testing.T) {
	e := newEnv(t)
	r, events := e.open()
	ctx := context.Background()
	task, err := r.Create(ctx, testNS, "victim", e.opts("victim", "sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid := task.Pid()
	if err := syscall.Kill(task.ShimPid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, events, EventTaskExit, "victim")
	if ev.Exit.Status != 137 {
		t.Fatalf("exit %d, want 137", ev.Exit.Status)
	}
	waitEvent(t, events, EventTaskDelete, "victim")
	if _, err := r.Get(testNS, "victim"); !errdefs.IsNotFound(err) {
		t.Fatalf("task still listed: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("container process %d outlived its cleanup", pid)
	}
	e.assertClean("victim")
}

func TestShimDeadAtRestore(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	ctx := context.Background()
	task, err := r.Create(ctx, testNS, "orphan", e.opts("orphan", "sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := syscall.Kill(task.ShimPid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	// The new runtime subscribes before it restores: the cleanup's events
	// are waiting in the channel.
	r2, events := e.open()
	ev := waitEvent(t, events, EventTaskExit, "orphan")
	if ev.Exit.Status != 137 {
		t.Fatalf("exit %d, want 137", ev.Exit.Status)
	}
	waitEvent(t, events, EventTaskDelete, "orphan")
	if _, err := r2.Get(testNS, "orphan"); !errdefs.IsNotFound(err) {
		t.Fatalf("dead task restored: %v", err)
	}
	if got := r2.RestoreStats(); got != (RestoreStats{Exited: 1}) {
		t.Errorf("RestoreStats = %+v, want one exited", got)
	}
	e.assertClean("orphan")
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	ctx := context.Background()
	task, err := r.Create(ctx, testNS, "exec", e.opts("exec", "sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = task.Kill(ctx, syscall.SIGKILL, true)
		_, _ = task.Wait(ctx)
		_, _ = r.Delete(ctx, testNS, "exec")
	})
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		terminal bool
		args     []string
		wantOut  string
		wantCode int
	}{
		{name: "plain", args: []string{"sh", "-c", "echo hello; exit 5"}, wantOut: "hello\n", wantCode: 5},
		{name: "tty", terminal: true, args: []string{"sh", "-c", "tty; echo hi"}, wantOut: "/dev/pts/", wantCode: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := task.Exec(ctx, "e-"+tc.name, &specs.Process{Args: tc.args, Env: []string{"PATH=/bin"}, Cwd: "/", Terminal: tc.terminal}, IO{Terminal: tc.terminal})
			if err != nil {
				t.Fatal(err)
			}
			conn, err := p.Attach(ctx, AttachOpts{Stdout: true, Stderr: true})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = conn.CopyOutput(&out, &out)
			}()
			if _, err := p.Start(ctx); err != nil {
				t.Fatal(err)
			}
			exit, err := p.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			conn.Close()
			if exit.Status != tc.wantCode {
				t.Errorf("exit %d, want %d", exit.Status, tc.wantCode)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output %q, want it to contain %q", out.String(), tc.wantOut)
			}
			if err := p.Delete(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParallelTasks(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("par-%02d", i)
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			task, err := r.Create(ctx, testNS, id, e.opts(id, "sh", "-c", "echo "+id))
			if err != nil {
				errs <- err
				return
			}
			if err := task.Start(ctx); err != nil {
				errs <- err
				return
			}
			exit, err := task.Wait(ctx)
			if err != nil {
				errs <- err
				return
			}
			if exit.Status != 0 {
				errs <- fmt.Errorf("%s exited %d", id, exit.Status)
			}
			if _, err := r.Delete(ctx, testNS, id); err != nil {
				errs <- err
			}
		}(ids[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		if got := readLog(t, filepath.Join(e.logs, id+".log")); len(got) != 1 || got[0] != "stdout "+id {
			t.Errorf("log of %s: %q", id, got)
		}
	}
	e.assertClean(ids...)
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	ctx := context.Background()
	badRootfs := e.opts("badroot")
	badRootfs.Spec = e.spec("badroot", "true")
	badRootfs.Rootfs = []Mount{{Type: "bind", Source: "/nonexistent-rootfs", Options: []string{"rbind"}}}
	badArgs := e.opts("badargs", "/no/such/binary")
	for _, tc := range []struct {
		id   string
		opts CreateOpts
	}{
		{"badroot", badRootfs},
		{"badargs", badArgs},
	} {
		t.Run(tc.id, func(t *testing.T) {
			_, err := r.Create(ctx, testNS, tc.id, tc.opts)
			if err == nil {
				_, _ = r.Delete(ctx, testNS, tc.id)
				t.Fatal("create succeeded")
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			t.Logf("create failed as it should: %v", err)
			if _, err := r.Get(testNS, tc.id); !errdefs.IsNotFound(err) {
				t.Fatalf("failed task is listed: %v", err)
			}
			var rec taskRecord
			if err := e.st.Get(ctx, store.KindTasks, taskKey(testNS, tc.id), &rec); !errdefs.IsNotFound(err) {
				t.Fatalf("failed task is in the store: %v", err)
			}
			e.assertClean(tc.id)
		})
	}
}

func TestInvalidIDs(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	for _, id := range []string{"../x", "", strings.Repeat("a", 300), "a/b", ".hidden", "-x", "a b"} {
		t.Run(fmt.Sprintf("%.20q", id), func(t *testing.T) {
			_, err := r.Create(context.Background(), testNS, id, e.opts("x", "true"))
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("create %q: %v, want InvalidArgument", id, err)
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Join(e.state, "tasks"))
	if len(entries) != 0 {
		t.Fatalf("invalid ids touched the disk: %v", entries)
	}
}

// TestRestoreUncreatedTask: the daemon died between starting a task's shim
// and asking it to create the process. Restore must remove the shim, the
// bundle and the record, and report no task.
func TestRestoreUncreatedTask(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	ctx := context.Background()
	rec := taskRecord{Namespace: testNS, ID: "halfway", Bundle: r.layout.bundle(testNS, "halfway"), Socket: r.layout.socket(testNS, "halfway"),
		Runtime: RuntimeOpts{Binary: "runc", Root: filepath.Join(e.state, "runtime", "runc", testNS)}, CreatedAt: time.Now()}
	if err := e.st.Create(ctx, store.KindTasks, taskKey(testNS, "halfway"), rec); err != nil {
		t.Fatal(err)
	}
	if err := writeSpec(rec.Bundle, e.spec("halfway", "true")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.startShim(ctx, rec); err != nil {
		t.Fatal(err)
	}
	r.Close() // the "crash": no Create was sent

	r2, _ := e.open()
	if _, err := r2.Get(testNS, "halfway"); !errdefs.IsNotFound(err) {
		t.Fatalf("an uncreated task was restored: %v", err)
	}
	if got := r2.RestoreStats(); got != (RestoreStats{NeverCreate: 1}) {
		t.Errorf("RestoreStats = %+v, want one never created", got)
	}
	var left taskRecord
	if err := e.st.Get(ctx, store.KindTasks, taskKey(testNS, "halfway"), &left); !errdefs.IsNotFound(err) {
		t.Fatalf("its record is still in the store: %v", err)
	}
	e.assertClean("halfway")
}

// TestRestoreKillsSilentShim: the daemon died just after launching a shim,
// before the shim listened. Restore finds no answer, cleans the task up as
// dead — and must not leave the starting shim process behind.
func TestRestoreKillsSilentShim(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	ctx := context.Background()
	rec := taskRecord{Namespace: testNS, ID: "silent", Bundle: r.layout.bundle(testNS, "silent"), Socket: r.layout.socket(testNS, "silent"),
		Runtime: RuntimeOpts{Binary: "runc", Root: filepath.Join(e.state, "runtime", "runc", testNS)}, CreatedAt: time.Now()}
	if err := e.st.Create(ctx, store.KindTasks, taskKey(testNS, "silent"), rec); err != nil {
		t.Fatal(err)
	}
	if err := writeSpec(rec.Bundle, e.spec("silent", "true")); err != nil {
		t.Fatal(err)
	}
	r.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fake := exec.Command(self)
	fake.Args = []string{filepath.Join(filepath.Dir(shimBinary), "cri-runtime-shim"), "-id", "silent", "-bundle", rec.Bundle, "-socket", rec.Socket}
	fake.Env = append(os.Environ(), "RUNTIME_TEST_SILENT_SHIM=1")
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- fake.Wait() }()
	t.Cleanup(func() { _ = fake.Process.Kill() })

	e.open()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("restore left the silent shim running")
	}
	e.assertClean("silent")
}

// shimAlive reports whether pid is a live (not zombie) process.
func shimAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// TestDeleteWaitsForTheShim: when Delete returns, the task's shim process
// is gone, for a shim this runtime started and for one it reconnected to
// after a restart. Before, Delete returned once the shim had answered
// Shutdown, and a leak check right after (as every test's) could still
// find it.
func TestDeleteWaitsForTheShim(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open()
	ctx := context.Background()
	// A loaded machine (as under make test) widens the window between the
	// shim's answer to Shutdown and its exit: load every CPU meanwhile.
	stop := make(chan struct{})
	var spin sync.WaitGroup
	for i := 0; i < 2*goruntime.NumCPU(); i++ {
		spin.Add(1)
		go func() {
			defer spin.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	defer func() { close(stop); spin.Wait() }()
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("gone%d", i)
		task, err := r.Create(ctx, testNS, id, e.opts(id, "true"))
		if err != nil {
			t.Fatal(err)
		}
		shim := task.ShimPid()
		if _, err := r.Delete(ctx, testNS, id); err != nil {
			t.Fatal(err)
		}
		if shimAlive(shim) {
			t.Fatalf("shim %d of %s still alive when Delete returned", shim, id)
		}
	}
	task, err := r.Create(ctx, testNS, "restored", e.opts("restored", "true"))
	if err != nil {
		t.Fatal(err)
	}
	shim := task.ShimPid()
	r.Close()
	r2, _ := e.open()
	if _, err := r2.Delete(ctx, testNS, "restored"); err != nil {
		t.Fatal(err)
	}
	if shimAlive(shim) {
		t.Fatalf("restored shim %d still alive when Delete returned", shim)
	}
	e.assertClean()
}
