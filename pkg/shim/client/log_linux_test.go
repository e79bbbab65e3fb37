package client_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// withBind bind-mounts the host dir src at dst in the container, read-write
// (the busybox rootfs is read-only: dst must exist in it, like /etc).
func withBind(src, dst string) taskOpt {
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rw"}})
	}
}

// vmRSS is a process's resident set in KiB (/proc/<pid>/status).
func vmRSS(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// TestLastLineWithoutNewlineIsPartial (issue 12): "printf DONE" is logged
// as a P record, so the kubelet reads back "DONE", not "DONE\n".
func TestLastLineWithoutNewlineIsPartial(t *testing.T) {
	k := newTask(t, []string{"sh", "-c", "echo first; printf DONE"})
	ctx := testCtx(t)
	k.run(ctx)
	if exit, err := k.client.Wait(ctx, ""); err != nil || exit.Status != 0 {
		t.Fatalf("wait: %+v, %v", exit, err)
	}
	got := criLines(t, k.logPath)
	want := [][3]string{{"stdout", "F", "first"}, {"stdout", "P", "DONE"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("log records %v, want %v", got, want)
	}
}

// TestLogPathSymlinkRefused (issue 13 item 9): a symlink planted at the log
// path makes Create fail with InvalidArgument naming it, and one planted
// before ReopenLog makes the reopen fail; nothing is written through either
// and the task keeps logging to the file it had.
func TestLogPathSymlinkRefused(t *testing.T) {
	ctx := testCtx(t)
	hostFile := filepath.Join(t.TempDir(), "host-file")
	if err := os.WriteFile(hostFile, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	untouched := func() {
		t.Helper()
		if data, err := os.ReadFile(hostFile); err != nil || string(data) != "precious\n" {
			t.Fatalf("host file: %q, %v", data, err)
		}
	}

	t.Run("create", func(t *testing.T) {
		k := newTask(t, []string{"echo", "through the link"})
		if err := os.MkdirAll(filepath.Dir(k.logPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(hostFile, k.logPath); err != nil {
			t.Fatal(err)
		}
		_, err := k.client.Create(ctx, k.createReq())
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), k.logPath) {
			t.Fatalf("create with a symlinked log path: %v, want InvalidArgument naming the symlink", err)
		}
		if k.mounted() {
			t.Fatal("rootfs left mounted after the refused create")
		}
		if _, err := k.client.State(ctx, ""); !errdefs.IsNotFound(err) {
			t.Fatalf("state after the refused create: %v", err)
		}
		untouched()
	})

	t.Run("reopen", func(t *testing.T) {
		ctl := t.TempDir()
		k := newTask(t, []string{"sh", "-c", "echo before; read x < /etc/go; echo after"}, withBind(ctl, "/etc"))
		if err := unix.Mkfifo(filepath.Join(ctl, "go"), 0o600); err != nil {
			t.Fatal(err)
		}
		k.run(ctx)
		waitRecord(t, k.logPath, "before")
		if err := os.Rename(k.logPath, k.logPath+".1"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(hostFile, k.logPath); err != nil {
			t.Fatal(err)
		}
		err := k.client.ReopenLog(ctx)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "symlink") {
			t.Fatalf("reopen onto a symlink: %v, want InvalidArgument naming the symlink", err)
		}
		f, err := os.OpenFile(filepath.Join(ctl, "go"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("go\n"))
		f.Close()
		if exit, err := k.client.Wait(ctx, ""); err != nil || exit.Status != 0 {
			t.Fatalf("wait: %+v, %v", exit, err)
		}
		untouched()
		got := criLines(t, k.logPath+".1")
		if len(got) != 2 || got[0][2] != "before" || got[1][2] != "after" {
			t.Fatalf("the task's own log file after the refused reopen: %v", got)
		}
	})
}

// waitRecord waits until the CRI log at path has a record with msg.
func waitRecord(t *testing.T, path, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, err := os.ReadFile(path); err == nil {
			for _, r := range criLines(t, path) {
				if r[2] == msg {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no record %q in %s:\n%.2000s", msg, path, data)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("no log %s: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLogFloodIntoFullFilesystem (issue 13 item 4): a container flooding
// stdout (short lines) and stderr (no newline at all) into a full log file
// system must not grow its shim: the shim lives outside the container's
// memory cgroup. Once there is room again, new output is logged.
func TestLogFloodIntoFullFilesystem(t *testing.T) {
	ctl := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctl, "flood"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	k := newTask(t, []string{"sh", "-c", `
while [ -e /etc/flood ]; do
	yes | head -n 200000
	head -c 2000000 /dev/zero | tr '\0' z >&2
done
i=0
while true; do echo after-$i; i=$((i+1)); usleep 50000; done`}, withBind(ctl, "/etc"))
	logDir := filepath.Dir(k.logPath)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", logDir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a 1 MiB tmpfs for the log: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(logDir, unix.MNT_DETACH) })

	ctx := testCtx(t)
	base := vmRSS(t, k.shimPid)
	k.run(ctx)
	// Four seconds of flood: the unbounded shim grew by hundreds of MiB a
	// second here. Stop at the first reading over the bound.
	const slack = 48 << 10 // KiB over the shim's RSS before the flood
	peak := 0
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		rss := vmRSS(t, k.shimPid)
		peak = max(peak, rss)
		if rss > base+slack {
			t.Fatalf("shim RSS %d KiB after the flood began, %d KiB before: the shim buffers what the full log cannot take", rss, base)
		}
	}
	t.Logf("shim RSS: %d KiB before, %d KiB peak during the flood", base, peak)
	var st unix.Statfs_t
	if err := unix.Statfs(logDir, &st); err != nil {
		t.Fatal(err)
	}
	if free := st.Bavail * uint64(st.Bsize); free > 64<<10 {
		t.Fatalf("the log file system has %d bytes free: the flood did not fill it", free)
	}
	shimLog, _ := os.ReadFile(filepath.Join(k.bundle, api.ShimLogFile))
	if n := strings.Count(string(shimLog), "Could not write the CRI log"); n != 1 {
		t.Fatalf("the log failure is in shim.log %d times, want once:\n%.3000s", n, shimLog)
	}

	// End the flood, make room: the next lines are logged, as whole records.
	if err := os.Remove(filepath.Join(ctl, "flood")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the flood's last round ends
	if err := unix.Mount("tmpfs", logDir, "tmpfs", unix.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("remount the log file system bigger: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var after int
		for _, r := range criLines(t, k.logPath) { // fails on a torn record
			if r[0] == "stdout" && r[1] == "F" && strings.HasPrefix(r[2], "after-") {
				after++
			}
		}
		if after >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records of the output after the space came back, want 5", after)
		}
		time.Sleep(100 * time.Millisecond)
	}
	shimLog, _ = os.ReadFile(filepath.Join(k.bundle, api.ShimLogFile))
	if !strings.Contains(string(shimLog), "Resumed writing the CRI log") {
		t.Fatalf("shim.log does not say the log resumed:\n%.3000s", shimLog)
	}
	if err := k.client.Kill(ctx, api.KillRequest{Signal: uint32(syscall.SIGKILL)}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.client.Wait(ctx, ""); err != nil {
		t.Fatal(err)
	}
}
