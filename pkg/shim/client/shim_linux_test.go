package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
	"github.com/cri-runtime/cri-runtime/pkg/shim/client"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOutputLogAndExitCode(t *testing.T) {
	k := newTask(t, []string{"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"})
	ctx := testCtx(t)
	k.run(ctx)
	exit, err := k.client.Wait(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if exit.Status != 3 || exit.ExitedAt.IsZero() {
		t.Fatalf("wait: %+v, want status 3 with a time", exit)
	}
	// exit.json was written before Wait returned.
	data, err := os.ReadFile(filepath.Join(k.bundle, api.ExitFile))
	if err != nil {
		t.Fatal(err)
	}
	var recorded api.Exit
	if err := json.Unmarshal(data, &recorded); err != nil || recorded.Status != 3 || !recorded.ExitedAt.Equal(exit.ExitedAt) {
		t.Fatalf("exit.json %s (%v), want %+v", data, err, exit)
	}
	// All output is in the log once the exit is reported.
	lines := criLines(t, k.logPath)
	want := map[[3]string]bool{{"stdout", "F", "to-stdout"}: true, {"stderr", "F", "to-stderr"}: true}
	if len(lines) != 2 || !want[lines[0]] || !want[lines[1]] {
		t.Fatalf("log records %v, want %v", lines, want)
	}
	// A kill of what already exited changes nothing.
	if err := k.client.Kill(ctx, api.KillRequest{Signal: uint32(syscall.SIGKILL)}); !errdefs.IsNotFound(err) {
		t.Fatalf("kill after exit: %v, want NotFound", err)
	}
	if st, err := k.client.State(ctx, ""); err != nil || st.Status != api.StatusStopped || st.Exit == nil || st.Exit.Status != 3 {
		t.Fatalf("state after kill: %+v, %v", st, err)
	}
	if _, err := k.client.Start(ctx, ""); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("start of a stopped task: %v, want FailedPrecondition", err)
	}
	del, err := k.client.Delete(ctx, "")
	if err != nil || del.Status != 3 || del.ExitedAt.IsZero() {
		t.Fatalf("delete: %+v, %v", del, err)
	}
	if k.mounted() {
		t.Fatal("rootfs still mounted after delete")
	}
}

func TestKillSleepingTask(t *testing.T) {
	k := newTask(t, []string{"sleep", "1000"})
	ctx := testCtx(t)
	pid := k.run(ctx)
	if pid <= 0 {
		t.Fatalf("pid %d", pid)
	}
	pids, err := k.client.Pids(ctx)
	if err != nil || len(pids) != 1 || pids[0] != pid {
		t.Fatalf("pids %v (%v), want [%d]", pids, err, pid)
	}
	if err := k.client.Kill(ctx, api.KillRequest{Signal: uint32(syscall.SIGKILL)}); err != nil {
		t.Fatal(err)
	}
	exit, err := k.client.Wait(ctx, "")
	if err != nil || exit.Status != 137 {
		t.Fatalf("wait: %+v, %v; want 137", exit, err)
	}
}

func TestWaitCancelledByClient(t *testing.T) {
	k := newTask(t, []string{"sleep", "1000"})
	ctx := testCtx(t)
	k.run(ctx)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := k.client.Wait(short, ""); !errdefs.IsContext(err) {
		t.Fatalf("wait with a short ctx: %v", err)
	}
	if _, err := k.client.Connect(ctx); err != nil {
		t.Fatalf("shim gone after a cancelled wait: %v", err)
	}
}

func TestExecAttach(t *testing.T) {
	k := newTask(t, []string{"sleep", "1000"})
	ctx := testCtx(t)
	k.run(ctx)

	t.Run("pipes", func(t *testing.T) {
		spec := &specs.Process{Args: []string{"sh", "-c", "echo from-exec; echo exec-err >&2; exit 5"}, Cwd: "/", Env: []string{"PATH=/bin"}}
		if err := k.client.Exec(ctx, "e1", spec, api.IO{}); err != nil {
			t.Fatal(err)
		}
		if err := k.client.Exec(ctx, "e1", spec, api.IO{}); !errdefs.IsAlreadyExists(err) {
			t.Fatalf("duplicate exec: %v", err)
		}
		a, err := k.client.Attach(ctx, api.AttachRequest{ExecID: "e1", Stdout: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		var stdout, stderr bytes.Buffer
		copied := make(chan error, 1)
		go func() { copied <- a.CopyOutput(&stdout, &stderr) }()
		if _, err := k.client.Start(ctx, "e1"); err != nil {
			t.Fatal(err)
		}
		exit, err := k.client.Wait(ctx, "e1")
		if err != nil || exit.Status != 5 {
			t.Fatalf("wait exec: %+v, %v", exit, err)
		}
		if err := <-copied; err != nil {
			t.Fatal(err)
		}
		if stdout.String() != "from-exec\n" || stderr.String() != "exec-err\n" {
			t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
		}
		if del, err := k.client.Delete(ctx, "e1"); err != nil || del.Status != 5 {
			t.Fatalf("delete exec: %+v, %v", del, err)
		}
		if _, err := k.client.State(ctx, "e1"); !errdefs.IsNotFound(err) {
			t.Fatalf("state of a deleted exec: %v", err)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		spec := &specs.Process{Args: []string{"cat"}, Cwd: "/", Env: []string{"PATH=/bin"}}
		if err := k.client.Exec(ctx, "cat", spec, api.IO{Stdin: true}); err != nil {
			t.Fatal(err)
		}
		a, err := k.client.Attach(ctx, api.AttachRequest{ExecID: "cat", Stdin: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		var out bytes.Buffer
		copied := make(chan error, 1)
		go func() { copied <- a.CopyOutput(&out, nil) }()
		if _, err := k.client.Start(ctx, "cat"); err != nil {
			t.Fatal(err)
		}
		a.Write([]byte("ping\n"))
		a.CloseStdin()
		if exit, err := k.client.Wait(ctx, "cat"); err != nil || exit.Status != 0 {
			t.Fatalf("wait cat: %+v, %v", exit, err)
		}
		<-copied
		if out.String() != "ping\n" {
			t.Fatalf("cat echoed %q", out.String())
		}
		k.client.Delete(ctx, "cat")
	})

	t.Run("tty", func(t *testing.T) {
		spec := &specs.Process{Args: []string{"sh", "-c", "stty size; echo tty-ok"}, Cwd: "/", Env: []string{"PATH=/bin", "TERM=xterm"}}
		if err := k.client.Exec(ctx, "tty", spec, api.IO{Terminal: true}); err != nil {
			t.Fatal(err)
		}
		a, err := k.client.Attach(ctx, api.AttachRequest{ExecID: "tty", Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		var out bytes.Buffer
		copied := make(chan error, 1)
		go func() { copied <- a.CopyOutput(&out, nil) }()
		if _, err := k.client.Start(ctx, "tty"); err != nil {
			t.Fatal(err)
		}
		if exit, err := k.client.Wait(ctx, "tty"); err != nil || exit.Status != 0 {
			t.Fatalf("wait tty exec: %+v, %v", exit, err)
		}
		<-copied
		if !strings.Contains(out.String(), "tty-ok") {
			t.Fatalf("tty output %q", out.String())
		}
		if err := k.client.ResizePty(ctx, api.ResizePtyRequest{ExecID: "tty", Width: 80, Height: 24}); err != nil {
			t.Logf("resize after exit: %v", err)
		}
		k.client.Delete(ctx, "tty")
	})

	t.Run("bad exec id", func(t *testing.T) {
		spec := &specs.Process{Args: []string{"true"}, Cwd: "/"}
		if err := k.client.Exec(ctx, "../x", spec, api.IO{}); !errdefs.IsInvalidArgument(err) {
			t.Fatalf("exec id ../x: %v, want InvalidArgument", err)
		}
	})
}

func TestNewClientSeesExitAfterNobodyWaited(t *testing.T) {
	k := newTask(t, []string{"sh", "-c", "exit 7"})
	ctx := testCtx(t)
	k.run(ctx)
	// A fresh client, as after a daemon restart.
	c, err := client.New(k.socket)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.State(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == api.StatusStopped {
			if st.Exit == nil || st.Exit.Status != 7 {
				t.Fatalf("stopped state %+v, want exit 7", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s", st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if exit, err := c.Wait(ctx, ""); err != nil || exit.Status != 7 {
		t.Fatalf("wait: %+v, %v", exit, err)
	}
	if conn, err := c.Connect(ctx); err != nil || conn.TaskPid <= 0 || conn.ShimPid != k.shimPid {
		t.Fatalf("connect: %+v, %v (shim pid %d)", conn, err, k.shimPid)
	}
}

// TestInstantExits: /bin/true-style exits race the start; none may be lost,
// reported early or reported wrong (containerd #4769, #8557, #9828).
func TestInstantExits(t *testing.T) {
	for i := 0; i < 20; i++ {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			k := newTask(t, []string{"true"})
			ctx := testCtx(t)
			k.run(ctx)
			exit, err := k.client.Wait(ctx, "")
			if err != nil || exit.Status != 0 {
				t.Fatalf("wait: %+v, %v", exit, err)
			}
			if _, err := k.client.Delete(ctx, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		req   func(*task) api.CreateRequest
		class error
		text  string
	}{
		{"bad rootfs", []string{"true"}, func(k *task) api.CreateRequest {
			r := k.createReq()
			r.Rootfs[0].Source = "/nonexistent-rootfs"
			return r
		}, errdefs.ErrInvalidArgument, "/nonexistent-rootfs"},
		{"bad args", []string{"/no-such-binary"}, (*task).createReq, errdefs.ErrInvalidArgument, "no-such-binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newTask(t, tc.args)
			ctx := testCtx(t)
			_, err := k.client.Create(ctx, tc.req(k))
			if err == nil || !isClass(err, tc.class) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("create: %v, want class %v mentioning %q", err, tc.class, tc.text)
			}
			if k.mounted() {
				t.Fatal("rootfs left mounted")
			}
			if out, _ := exec.Command("runc", "--root", k.runcRoot, "list", "-q").Output(); strings.TrimSpace(string(out)) != "" {
				t.Fatalf("runc state left: %q", out)
			}
			if _, err := k.client.Connect(ctx); err != nil {
				t.Fatalf("shim does not answer after a failed create: %v", err)
			}
			if _, err := k.client.State(ctx, ""); !errdefs.IsNotFound(err) {
				t.Fatalf("state after failed create: %v", err)
			}
			if err := k.client.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			waitGone(t, k)
		})
	}
}

func waitGone(t *testing.T, k *task) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(k.shimPid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("shim process still alive after Shutdown")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(k.socket); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestShutdown(t *testing.T) {
	k := newTask(t, []string{"sleep", "1000"})
	ctx := testCtx(t)
	k.run(ctx)
	if err := k.client.Shutdown(ctx); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("shutdown of a running task: %v, want FailedPrecondition", err)
	}
	if _, err := k.client.Delete(ctx, ""); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("delete of a running task: %v, want FailedPrecondition", err)
	}
	k.client.Kill(ctx, api.KillRequest{Signal: uint32(syscall.SIGKILL)})
	k.client.Wait(ctx, "")
	if _, err := k.client.Delete(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := k.client.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, k)
	if _, err := k.client.Connect(ctx); !errdefs.IsUnavailable(err) {
		t.Fatalf("connect after shutdown: %v, want Unavailable", err)
	}
}

func TestReopenLog(t *testing.T) {
	k := newTask(t, []string{"sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); usleep 5000; done"})
	ctx := testCtx(t)
	k.run(ctx)
	time.Sleep(400 * time.Millisecond)
	rotated := k.logPath + ".1"
	if err := os.Rename(k.logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := k.client.ReopenLog(ctx); err != nil {
		t.Fatal(err)
	}
	if exit, err := k.client.Wait(ctx, ""); err != nil || exit.Status != 0 {
		t.Fatalf("wait: %+v, %v", exit, err)
	}
	old, cur := criLines(t, rotated), criLines(t, k.logPath)
	if len(old) == 0 || len(cur) == 0 {
		t.Fatalf("old file %d records, new file %d: rotation did not split", len(old), len(cur))
	}
	all := append(old, cur...)
	if len(all) != 300 {
		t.Fatalf("%d records in all, want 300", len(all))
	}
	for i, r := range all {
		if r[2] != fmt.Sprintf("line%d", i) {
			t.Fatalf("record %d is %q: lost or duplicated line", i, r[2])
		}
	}
}

func TestOOMKilled(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.oom_control"); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
			t.Skip("skipping: no memory cgroup")
		}
	}
	k := newTask(t, []string{"sh", "-c", `x=$(head -c 200000000 /dev/zero | tr '\0' x); echo survived`}, withMemoryLimit(20<<20))
	ctx := testCtx(t)
	k.run(ctx)
	exit, err := k.client.Wait(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !exit.OOMKilled || exit.Status != 137 {
		t.Fatalf("exit %+v, want OOMKilled and 137", exit)
	}
}
