package e2e

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// restartDaemon stops the daemon with sig (SIGTERM: a graceful stop;
// SIGKILL: a crash), leaves it down for downtime, and starts it again on
// the same dirs and socket.
func restartDaemon(t *testing.T, sig syscall.Signal, downtime time.Duration) {
	t.Helper()
	restartDaemonWhileDown(t, sig, func() { time.Sleep(downtime) })
}

// restartDaemonWhileDown is restartDaemon that runs whileDown while no
// daemon runs.
func restartDaemonWhileDown(t *testing.T, sig syscall.Signal, whileDown func()) {
	t.Helper()
	requireEnv(t)
	d := env.daemon
	if d == nil || d.Process == nil || daemonExited == nil {
		t.Fatal("no running daemon to restart")
	}
	if err := d.Process.Signal(sig); err != nil {
		t.Fatalf("signal daemon: %v", err)
	}
	select {
	case <-daemonExited:
	case <-time.After(20 * time.Second):
		_ = d.Process.Kill()
		<-daemonExited
		t.Fatalf("daemon did not stop within 20s of %v", sig)
	}
	daemonExited = nil
	whileDown()
	nd, err := startDaemon(env.cfgPath)
	env.daemon = nd
	if err != nil {
		t.Fatalf("restart daemon: %v", err)
	}
}

// rebootDaemon does to the daemon what a reboot does: everything it ran
// dies and the state dir (a tmpfs at /run) comes back empty, while the root
// dir stays.
func rebootDaemon(t *testing.T) {
	t.Helper()
	restartDaemonWhileDown(t, syscall.SIGKILL, func() {
		for _, p := range ourShims() {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		// The containers' processes go with the machine (runc's state knows
		// them), and so do their cgroups: cgroupfs starts empty too.
		ids := killContainersUnder(filepath.Join(env.state, "runtime"))
		wipeCgroups(t, ids...)
		for _, m := range mountsUnder(env.state) {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
		if err := os.RemoveAll(env.state); err != nil {
			t.Fatalf("wipe state dir: %v", err)
		}
	})
}

// killContainersUnder SIGKILLs the init of every container whose runc state
// lies under dir (runc's state.json names its init pid) and returns their ids.
func killContainersUnder(dir string) []string {
	var ids []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "state.json" {
			return nil
		}
		var st struct {
			InitProcessPid int `json:"init_process_pid"`
		}
		ids = append(ids, filepath.Base(filepath.Dir(p)))
		if data, err := os.ReadFile(p); err == nil && jsonUnmarshal(data, &st) == nil && st.InitProcessPid > 0 {
			if err := syscall.Kill(st.InitProcessPid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return nil
			}
		}
		return nil
	})
	return ids
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
