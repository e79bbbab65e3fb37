package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const busyboxImage = "docker.io/library/busybox:latest"

var idRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// crictl runs crictl against the daemon and returns its trimmed stdout.
func crictl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	full := append([]string{"--config", crictlConfig(t), "--timeout", "60s"}, args...)
	cmd := exec.Command("crictl", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// crictlConfig writes crictl's config next to the daemon's (once): the
// endpoints, and no search of /etc/crictl.yaml.
func crictlConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(env.tmp, "crictl.yaml")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	cfg := fmt.Sprintf("runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 60\ndebug: false\npull-image-on-create: false\n", env.endpoint, env.endpoint)
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// inspect runs "crictl <cmd> -o json <args>" and decodes its output. The
// flag goes before the arguments: crictl's CLI stops parsing flags at the
// first argument ("no such image \"-o\"").
func inspect(t *testing.T, cmd string, args ...string) (map[string]any, error) {
	t.Helper()
	out, err := crictl(t, append([]string{cmd, "-o", "json"}, args...)...)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("decode %s output: %v\n%s", cmd, err, out)
	}
	return v, nil
}

// field walks a decoded JSON object: field(v, "status", "state").
func field(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// scenario is a list of dependent steps: once one fails, the rest are
// skipped with the name of the step that failed, so the report shows how
// far the daemon gets and nothing after it counts as passed.
type scenario struct {
	t      *testing.T
	failed string
}

func (s *scenario) step(name string, fn func(t *testing.T)) {
	s.t.Helper()
	ok := s.t.Run(name, func(t *testing.T) {
		if s.failed != "" {
			t.Skipf("not run: step %q failed", s.failed)
		}
		fn(t)
	})
	if !ok && s.failed == "" {
		s.failed = name
	}
}

// eventually retries fn for up to d, returning its last error.
func eventually(d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ownPIDNamespace gives a container its own PID namespace, as the kubelet
// does unless shareProcessNamespace is set. The CRI default (POD, 0) shares
// the sandbox's, where pid 1 is the pause process.
var ownPIDNamespace = map[string]any{
	"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}, // CONTAINER
}

// TestCrictlScenarios drives the daemon the way an operator would with
// crictl: pull, run a pod, run a container in it, read its logs, exec into
// it, stop and remove everything, and check nothing is left behind.
func TestCrictlScenarios(t *testing.T) {
	requireEnv(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "pod-logs")
	uid := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	podCfg := filepath.Join(dir, "pod.json")
	ctrCfg := filepath.Join(dir, "container.json")
	writeJSON(t, podCfg, map[string]any{
		"metadata":      map[string]any{"name": "crictl-scenario", "namespace": "e2e", "uid": uid, "attempt": 0},
		"hostname":      "crictl-scenario",
		"log_directory": logDir,
		"labels":        map[string]string{"e2e": "crictl"},
		"linux":         ownPIDNamespace,
	})
	writeJSON(t, ctrCfg, map[string]any{
		"metadata": map[string]any{"name": "echo", "attempt": 0},
		"image":    map[string]any{"image": busyboxImage},
		"command":  []string{"sh", "-c", "echo hello-from-e2e; exec sleep 3600"},
		"log_path": "echo.log",
		"linux":    ownPIDNamespace,
	})

	var podID, ctrID string
	// Whatever step fails, the pod does not outlive the test (the harness
	// would remove it too, but critest runs next on the same daemon).
	t.Cleanup(func() {
		if podID != "" {
			_, _ = crictl(t, "stopp", podID)
			_, _ = crictl(t, "rmp", podID)
		}
	})
	s := &scenario{t: t}
	s.step("pull", func(t *testing.T) {
		out, err := crictl(t, "pull", busyboxImage)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "sha256:") {
			t.Fatalf("pull printed no image reference: %q", out)
		}
	})
	s.step("inspecti", func(t *testing.T) {
		v, err := inspect(t, "inspecti", busyboxImage)
		if err != nil {
			t.Fatal(err)
		}
		tags, _ := field(v, "status", "repoTags").([]any)
		if !containsAny(tags, busyboxImage) {
			t.Fatalf("inspecti repoTags = %v, want %s", tags, busyboxImage)
		}
		if id, _ := field(v, "status", "id").(string); !strings.HasPrefix(id, "sha256:") {
			t.Fatalf("inspecti id = %q, want sha256:...", id)
		}
	})
	s.step("images", func(t *testing.T) {
		out, err := crictl(t, "images")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "docker.io/library/busybox") || !strings.Contains(out, "latest") {
			t.Fatalf("crictl images does not list busybox:latest:\n%s", out)
		}
	})
	s.step("imagefsinfo", func(t *testing.T) {
		v, err := inspect(t, "imagefsinfo")
		if err != nil {
			t.Fatal(err)
		}
		fs, _ := field(v, "status", "imageFilesystems").([]any)
		if len(fs) != 1 {
			t.Fatalf("imagefsinfo: %v, want one image filesystem", v)
		}
		used, _ := field(fs[0], "usedBytes", "value").(string)
		mount, _ := field(fs[0], "fsId", "mountpoint").(string)
		if used == "" || used == "0" || !strings.HasPrefix(mount, env.root) {
			t.Fatalf("imagefsinfo: used %q at %q, want bytes under %s", used, mount, env.root)
		}
	})
	s.step("runp", func(t *testing.T) {
		out, err := crictl(t, "runp", podCfg)
		if err != nil {
			t.Fatal(err)
		}
		if !idRE.MatchString(out) {
			t.Fatalf("runp printed %q, want a 64-hex pod ID", out)
		}
		podID = out
	})
	s.step("inspectp", func(t *testing.T) {
		v, err := inspect(t, "inspectp", podID)
		if err != nil {
			t.Fatal(err)
		}
		if st := field(v, "status", "state"); st != "SANDBOX_READY" {
			t.Fatalf("pod state = %v, want SANDBOX_READY", st)
		}
		if n := field(v, "status", "metadata", "name"); n != "crictl-scenario" {
			t.Fatalf("pod name = %v, want crictl-scenario", n)
		}
		if ip, _ := field(v, "status", "network", "ip").(string); ip == "" {
			t.Fatalf("pod has no IP: %v", field(v, "status", "network"))
		}
	})
	s.step("create", func(t *testing.T) {
		out, err := crictl(t, "create", podID, ctrCfg, podCfg)
		if err != nil {
			t.Fatal(err)
		}
		if !idRE.MatchString(out) {
			t.Fatalf("create printed %q, want a 64-hex container ID", out)
		}
		ctrID = out
	})
	s.step("start", func(t *testing.T) {
		if _, err := crictl(t, "start", ctrID); err != nil {
			t.Fatal(err)
		}
		err := eventually(30*time.Second, func() error {
			v, err := inspect(t, "inspect", ctrID)
			if err != nil {
				return err
			}
			if st := field(v, "status", "state"); st != "CONTAINER_RUNNING" {
				return fmt.Errorf("container state = %v, want CONTAINER_RUNNING", st)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	s.step("logs", func(t *testing.T) {
		err := eventually(10*time.Second, func() error {
			out, err := crictl(t, "logs", ctrID)
			if err != nil {
				return err
			}
			if out != "hello-from-e2e" {
				return fmt.Errorf("logs = %q, want %q", out, "hello-from-e2e")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(logDir, "echo.log"))
		if err != nil {
			t.Fatalf("CRI log file: %v", err)
		}
		// <RFC3339Nano> stdout F hello-from-e2e
		if !regexp.MustCompile(`(?m)^\S+ stdout F hello-from-e2e$`).Match(raw) {
			t.Fatalf("CRI log file is not in the CRI format:\n%s", raw)
		}
	})
	s.step("exec-sync", func(t *testing.T) {
		out, err := crictl(t, "exec", "--sync", ctrID, "sh", "-c", "echo exec-ok; hostname")
		if err != nil {
			t.Fatal(err)
		}
		if out != "exec-ok\ncrictl-scenario" {
			t.Fatalf("exec --sync printed %q, want %q", out, "exec-ok\ncrictl-scenario")
		}
	})
	s.step("exec-stream", func(t *testing.T) {
		out, err := crictl(t, "exec", ctrID, "cat", "/proc/1/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.ReplaceAll(out, "\x00", " "); !strings.HasPrefix(got, "sleep 3600") {
			t.Fatalf("exec (streaming) printed %q, want the container's pid 1: sleep 3600", got)
		}
	})
	s.step("inspect", func(t *testing.T) {
		v, err := inspect(t, "inspect", ctrID)
		if err != nil {
			t.Fatal(err)
		}
		if n := field(v, "status", "metadata", "name"); n != "echo" {
			t.Fatalf("container name = %v, want echo", n)
		}
		if img := field(v, "status", "image", "image"); img != busyboxImage {
			t.Fatalf("container image = %v, want %s", img, busyboxImage)
		}
		if p, _ := field(v, "info", "pid").(float64); p <= 0 {
			t.Logf("inspect info has no pid (verbose info is optional): %v", field(v, "info"))
		}
	})
	s.step("ps", func(t *testing.T) {
		out, err := crictl(t, "ps", "-q", "--pod", podID)
		if err != nil {
			t.Fatal(err)
		}
		if out != ctrID {
			t.Fatalf("ps -q --pod printed %q, want %s", out, ctrID)
		}
	})
	s.step("stop", func(t *testing.T) {
		start := time.Now()
		if _, err := crictl(t, "stop", "--timeout", "2", ctrID); err != nil {
			t.Fatal(err)
		}
		// sleep as pid 1 ignores SIGTERM: the stop must escalate to SIGKILL.
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("stop with a 2s grace period took %v", d)
		}
		v, err := inspect(t, "inspect", ctrID)
		if err != nil {
			t.Fatal(err)
		}
		if st := field(v, "status", "state"); st != "CONTAINER_EXITED" {
			t.Fatalf("state after stop = %v, want CONTAINER_EXITED", st)
		}
		if code, _ := field(v, "status", "exitCode").(float64); code != 137 {
			t.Fatalf("exit code after stop = %v, want 137 (SIGKILL after the grace period)", field(v, "status", "exitCode"))
		}
	})
	s.step("rm", func(t *testing.T) {
		if _, err := crictl(t, "rm", ctrID); err != nil {
			t.Fatal(err)
		}
		if _, err := crictl(t, "inspect", ctrID); err == nil {
			t.Fatalf("inspect of a removed container succeeded")
		}
	})
	s.step("stopp", func(t *testing.T) {
		if _, err := crictl(t, "stopp", podID); err != nil {
			t.Fatal(err)
		}
		v, err := inspect(t, "inspectp", podID)
		if err != nil {
			t.Fatal(err)
		}
		if st := field(v, "status", "state"); st != "SANDBOX_NOTREADY" {
			t.Fatalf("pod state after stopp = %v, want SANDBOX_NOTREADY", st)
		}
	})
	s.step("rmp", func(t *testing.T) {
		if _, err := crictl(t, "rmp", podID); err != nil {
			t.Fatal(err)
		}
		if _, err := crictl(t, "inspectp", podID); err == nil {
			t.Fatalf("inspectp of a removed pod succeeded")
		}
		// Removing again is not an error (idempotent, as the kubelet expects).
		if _, err := crictl(t, "rmp", podID); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Fatalf("second rmp: %v", err)
		}
	})
	s.step("no-leaks", func(t *testing.T) {
		if l := leaks(podID, ctrID); len(l) > 0 {
			t.Fatalf("the pod and container left behind:\n  %s", strings.Join(l, "\n  "))
		}
	})
	s.step("rmi", func(t *testing.T) {
		if _, err := crictl(t, "rmi", busyboxImage); err != nil {
			t.Fatal(err)
		}
		if out, err := crictl(t, "images", "-q", busyboxImage); err != nil || out != "" {
			t.Fatalf("image still listed after rmi: %q %v", out, err)
		}
	})
}

func containsAny(list []any, want string) bool {
	for _, v := range list {
		if v == want {
			return true
		}
	}
	return false
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
