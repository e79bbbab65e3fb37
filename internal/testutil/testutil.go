// Package testutil holds the helpers that several packages' tests and the
// benchmarks share: a real registry on loopback, a busybox rootfs, the
// removal of iptables rules a test's CNI network left, and a gRPC server
// on an in-memory connection. It is imported only by tests.
package testutil

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RegistryBin is Debian's docker-registry (hack/install-test-tools.sh).
const RegistryBin = "/usr/bin/docker-registry"

// StartRegistry runs a registry on a free loopback port with its storage in
// a temp dir, stopped (by its PID) when the test ends, and returns
// "127.0.0.1:<port>". Without the binary the test is skipped, saying so.
func StartRegistry(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(RegistryBin); err != nil {
		t.Skipf("needs %s (apt-get install docker-registry; hack/install-test-tools.sh does)", RegistryBin)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"+
		"storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(RegistryBin, "serve", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
	}
	t.Fatalf("registry did not come up on %s:\n%s", addr, logs.String())
	return ""
}

// BusyboxRootfs fills dir with a minimal root file system: Debian's
// busybox-static as /bin/busybox with a symlink per applet, and the mount
// points runc needs.
func BusyboxRootfs(dir string) error {
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		return err
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			return err
		}
	}
	return nil
}

// RandHex returns n random bytes in hex, for names no other test run uses.
func RandHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// IPTablesCleanup turns iptables-save output into an iptables-restore
// --noflush script that deletes every rule whose text contains marker (a
// test network's name) and the per-container CNI chains those rules jump
// to; "" when there is nothing to remove.
func IPTablesCleanup(save, marker string) string {
	var (
		b      strings.Builder
		table  string
		dels   []string
		chains []string
	)
	flush := func() {
		if table != "" && (len(dels) > 0 || len(chains) > 0) {
			fmt.Fprintf(&b, "*%s\n", table)
			for _, d := range dels {
				b.WriteString(d + "\n")
			}
			for _, c := range chains {
				fmt.Fprintf(&b, "-F %s\n", c)
			}
			for _, c := range chains {
				fmt.Fprintf(&b, "-X %s\n", c)
			}
			b.WriteString("COMMIT\n")
		}
		dels, chains = nil, nil
	}
	sc := bufio.NewScanner(strings.NewReader(save))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			flush()
			table = line[1:]
		case strings.HasPrefix(line, "-A ") && strings.Contains(line, marker):
			dels = append(dels, "-D "+line[3:])
			if i := strings.Index(line, " -j "); i >= 0 {
				target := strings.Fields(line[i+4:])[0]
				if strings.HasPrefix(target, "CNI-") && !strings.HasPrefix(target, "CNI-HOSTPORT-") {
					chains = append(chains, target)
				}
			}
		}
	}
	flush()
	return b.String()
}

// OpenTempDir is a temp dir others may traverse and list (0755), as a
// daemon's --root and --state may be; removed when the test ends.
func OpenTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hostdirs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
