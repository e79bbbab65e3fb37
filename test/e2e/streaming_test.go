package e2e

// Streaming, attach, port-forward and log rotation through crictl and the
// CRI socket (issue "Exec, attach, port-forward, logs, stats, events and the
// rest of CRI v1").

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const e2eNginx = "registry.k8s.io/e2e-test-images/nginx:1.14-2"

// crictlIn runs crictl with stdin and returns its combined output.
func crictlIn(t *testing.T, stdin string, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "crictl", append([]string{"--config", crictlConfig(t)}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCrictlExec(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "stream-exec")
	id := p.container(t, "target", sh("sleep 100000"), true)
	t.Run("sync", func(t *testing.T) {
		out, err := crictlIn(t, "", 30*time.Second, "exec", "-s", id, "sh", "-c", "echo synced; exit 0")
		if err != nil || !strings.Contains(out, "synced") {
			t.Fatalf("crictl exec -s: %v %q", err, out)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		out, err := crictlIn(t, "through stdin\n", 30*time.Second, "exec", "-i", id, "cat")
		if err != nil || !strings.Contains(out, "through stdin") {
			t.Fatalf("crictl exec -i cat: %v %q", err, out)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		_, err := crictlIn(t, "", 30*time.Second, "exec", id, "sh", "-c", "exit 7")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("crictl exec of exit 7: %v, want a non-zero exit", err)
		}
	})
	t.Run("tty", func(t *testing.T) {
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("needs script(1) (bsdutils) to give crictl a terminal")
		}
		cmdline := fmt.Sprintf("crictl --config %s exec -it %s sh -c 'tty; echo tty-ok'", crictlConfig(t), id)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "script", "-qec", cmdline, "/dev/null").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "tty-ok") {
			t.Fatalf("crictl exec -it: %v %q", err, out)
		}
	})
}

func TestCrictlAttach(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "stream-attach")
	cfg := sh("while read line; do echo got:$line; done")
	cfg.Stdin = true
	id := p.container(t, "reader", cfg, true)
	out, err := crictlIn(t, "ping\n", 10*time.Second, "attach", "-i", id)
	if !strings.Contains(out, "got:ping") {
		t.Fatalf("crictl attach -i: %v %q, want got:ping", err, out)
	}
	// What went through attach is in the container's log too.
	waitLog(t, containerStatus(t, id).GetLogPath(), "got:ping")
}

func TestCrictlPortForward(t *testing.T) {
	pullImage(t, e2eNginx)
	p := runPod(t, "stream-pf")
	p.container(t, "web", &runtimeapi.ContainerConfig{Image: &runtimeapi.ImageSpec{Image: e2eNginx}}, true)
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "crictl", "--config", crictlConfig(t), "port-forward", p.id, fmt.Sprintf("%d:80", port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("through port-forward: HTTP %d %q", resp.StatusCode, body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port-forward never answered: %v; crictl said %q", err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestLogRotation(t *testing.T) {
	pullImage(t, e2eBusybox)
	p := runPod(t, "rotate")
	id := p.container(t, "counter", sh(counterScript), true)
	logPath := containerStatus(t, id).GetLogPath()
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		time.Sleep(300 * time.Millisecond)
		// The kubelet's rotation: rename, then ask the runtime to reopen.
		if err := os.Rename(logPath, logPath+"."+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := env.rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := env.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	// Every value once, in order, across the four files.
	next := 0
	for _, f := range []string{logPath + ".1", logPath + ".2", logPath + ".3", logPath} {
		lines := logLines(t, f)
		if len(lines) == 0 {
			t.Fatalf("%s is empty: the reopen lost a whole file's worth", f)
		}
		for _, l := range lines {
			n, err := strconv.Atoi(l)
			if err != nil || n != next {
				t.Fatalf("%s: line %q, want %d (a line was lost or repeated across a rotation)", f, l, next)
			}
			next++
		}
	}
	t.Logf("%d lines across 3 rotations, none lost or repeated", next)
}
