package e2e

// A standalone upstream kubelet (no API server) on the daemon's socket: the
// harness that the kubelet tests (kubelet_test.go) drive through static pod
// manifests and the kubelet's own HTTPS API on 127.0.0.1:10250. The
// kubelet is built by hack/install-kube.sh (KUBELET names another binary).
//
// Everything the kubelet touches outside the run's temp dir is put back:
// its cgroups (under a cgroupRoot of its own), the kernel tunables it sets
// when protectKernelDefaults is false, its /var/log/containers links, and
// the iptables canary chains it creates.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

const (
	kubeVersion    = "v1.37.2"
	kubeletPort    = 10250
	kubeletHealthz = 10248
	kubeletNode    = "cri-e2e-node"
)

// kubeletBin is the kubelet hack/install-kube.sh built, or $KUBELET.
func kubeletBin() string {
	if b := os.Getenv("KUBELET"); b != "" {
		return b
	}
	return filepath.Join(getenv("KUBE_CACHE", "/var/cache/cri-runtime-e2e/kube-"+kubeVersion), "kubelet")
}

// kubeletTunables are the sysctls a kubelet with protectKernelDefaults =
// false sets (pkg/kubelet/cm setupKernelTunables); they are restored.
var kubeletTunables = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

type kubelet struct {
	dir        string // everything of this kubelet: config, root dir, logs
	manifests  string // staticPodPath
	podLogs    string // podLogsDir
	cgroupRoot string // its cgroupRoot, "/cri-e2e-kubelet-<pid>"
	cmd        *exec.Cmd
	exited     chan error
	logPath    string
	client     *http.Client
}

// startKubelet runs a standalone kubelet on the daemon and registers its
// teardown: stop it by PID, then put back what it changed on the host.
func startKubelet(t *testing.T) *kubelet {
	t.Helper()
	requireEnv(t)
	bin := kubeletBin()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kubelet %s: %v (hack/install-kube.sh builds it; make test runs it)", bin, err)
	}
	// Whatever its --root-dir, the kubelet serves device plugins at
	// /var/lib/kubelet/device-plugins: a host kubelet's would be clobbered.
	if exists("/var/lib/kubelet") {
		t.Fatal("/var/lib/kubelet exists: a kubelet runs or ran on this host; the test kubelet would share its device-plugin socket dir")
	}
	for _, p := range []int{kubeletPort, kubeletHealthz} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("the kubelet needs port %d free: %v", p, err)
		}
		l.Close()
	}
	k := &kubelet{
		dir:        filepath.Join(env.tmp, "kubelet"),
		cgroupRoot: fmt.Sprintf("/cri-e2e-kubelet-%d", os.Getpid()),
		exited:     make(chan error, 1),
		logPath:    filepath.Join(env.artifacts, "kubelet-"+strings.ReplaceAll(t.Name(), "/", "_")+".log"),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			// The kubelet serves a self-signed certificate it made itself.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback test kubelet
		}},
	}
	_ = os.RemoveAll(k.dir)
	k.manifests = filepath.Join(k.dir, "manifests")
	k.podLogs = filepath.Join(k.dir, "pod-logs")
	for _, d := range []string{k.manifests, k.podLogs, filepath.Join(k.dir, "root")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tunables := map[string]string{}
	for _, name := range kubeletTunables {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", name)); err == nil {
			tunables[name] = strings.TrimSpace(string(v))
		}
	}
	t.Cleanup(func() { k.stop(t, tunables) })
	if err := createCgroup(k.cgroupRoot); err != nil {
		t.Fatalf("the kubelet's cgroupRoot: %v", err)
	}

	cfg := map[string]any{
		"apiVersion":               "kubelet.config.k8s.io/v1beta1",
		"kind":                     "KubeletConfiguration",
		"failCgroupV1":             false,
		"cgroupDriver":             "cgroupfs",
		"cgroupRoot":               k.cgroupRoot,
		"containerRuntimeEndpoint": env.endpoint,
		"imageServiceEndpoint":     env.endpoint,
		"staticPodPath":            k.manifests,
		"fileCheckFrequency":       "1s",
		"syncFrequency":            "5s",
		"podLogsDir":               k.podLogs,
		"address":                  "127.0.0.1",
		"port":                     kubeletPort,
		"readOnlyPort":             0,
		"healthzBindAddress":       "127.0.0.1",
		"healthzPort":              kubeletHealthz,
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": true},
			"webhook":   map[string]any{"enabled": false},
		},
		"authorization": map[string]any{"mode": "AlwaysAllow"},
		"failSwapOn":    false,
		// A small VM: evict only when really out of room, and never GC the
		// test images.
		"evictionHard": map[string]string{
			"memory.available": "100Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%",
		},
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"protectKernelDefaults":       false,
		"serializeImagePulls":         false,
		"maxPods":                     20,
	}
	raw, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(k.dir, "config.json")
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(k.logPath)
	if err != nil {
		t.Fatal(err)
	}
	k.cmd = exec.Command(bin, "--config", cfgPath, "--root-dir", filepath.Join(k.dir, "root"),
		"--cert-dir", filepath.Join(k.dir, "pki"), "--hostname-override", kubeletNode, "--node-ip", "127.0.0.1", "--v", "2")
	k.cmd.Stdout, k.cmd.Stderr = logFile, logFile
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start kubelet: %v", err)
	}
	go func() { k.exited <- k.cmd.Wait(); logFile.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", kubeletHealthz))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-k.exited:
			k.exited <- err
			t.Fatalf("kubelet exited during start-up (%v); its log %s:\n%s", err, k.logPath, k.logTail(40))
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubelet not healthy after 60s; its log %s:\n%s", k.logPath, k.logTail(40))
		}
	}
	return k
}

func (k *kubelet) logTail(n int) string {
	data, _ := os.ReadFile(k.logPath)
	return tail(string(data), n)
}

// stop ends the kubelet (SIGTERM, then SIGKILL after 20s, by PID), then
// restores the host: kernel tunables, cgroups under its cgroupRoot, the
// root dir it made rshared, its /var/log/containers links and iptables
// chains.
func (k *kubelet) stop(t *testing.T, tunables map[string]string) {
	if k.cmd != nil && k.cmd.Process != nil {
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.exited:
		case <-time.After(20 * time.Second):
			t.Logf("kubelet %d ignored SIGTERM for 20s: SIGKILL", k.cmd.Process.Pid)
			_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-k.exited
		}
	}
	for name, v := range tunables {
		_ = os.WriteFile(filepath.Join("/proc/sys", name), []byte(v), 0o644)
	}
	for _, m := range mountsUnder(k.dir) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount kubelet mount %s: %v", m, err)
		}
	}
	// The kubelet links container logs into /var/log/containers; links into
	// this run's dir would dangle.
	if links, err := os.ReadDir("/var/log/containers"); err == nil {
		for _, l := range links {
			p := filepath.Join("/var/log/containers", l.Name())
			if target, err := os.Readlink(p); err == nil && under(target, k.podLogs) {
				_ = os.Remove(p)
			}
		}
	}
	if err := os.RemoveAll("/var/lib/kubelet"); err != nil {
		t.Errorf("remove the kubelet's /var/lib/kubelet: %v", err)
	}
	removeKubeletIptablesChains(t)
	// What the kubelet left in the runtime (it removes dead containers and
	// sandboxes only in its periodic GC) goes through the CRI, as the
	// kubelet would; then its cgroups are empty.
	removeKubeletPods(t)
	if left := removeCgroupTree(k.cgroupRoot); len(left) > 0 {
		t.Errorf("cgroups left under the kubelet's cgroupRoot: %v", left)
	}
}

// removeKubeletPods stops and removes every sandbox of a kubelet pod (its
// name ends in the node name) with its containers.
func removeKubeletPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := env.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Errorf("ListPodSandbox: %v", err)
		return
	}
	for _, p := range ps.GetItems() {
		if strings.HasSuffix(p.GetMetadata().GetName(), "-"+kubeletNode) {
			removePod(ctx, t, p.GetId())
		}
	}
}

// createCgroup makes dir in every cgroup v1 hierarchy (the kubelet wants
// its cgroupRoot to exist), with the parent's cpus and mems in cpuset.
func createCgroup(dir string) error {
	hierarchies, err := filepath.Glob("/sys/fs/cgroup/*")
	if err != nil {
		return err
	}
	for _, h := range hierarchies {
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err != nil || h == "/sys/fs/cgroup/unified" {
			continue
		}
		p := filepath.Join(h, dir)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if filepath.Base(h) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(p, f), v, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removeCgroupTree removes dir and everything below it in every cgroup
// hierarchy, deepest first; busy cgroups stay.
func removeCgroupTree(dir string) []string {
	var left []string
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	for _, h := range hierarchies {
		root := filepath.Join(h, dir)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
				left = append(left, dirs[i])
			}
		}
	}
	return left
}

// removeKubeletIptablesChains deletes the canary and hint chains the
// kubelet creates to watch for iptables flushes.
func removeKubeletIptablesChains(t *testing.T) {
	for _, table := range []string{"mangle", "nat", "filter"} {
		for _, chain := range []string{"KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"} {
			if exec.Command("iptables", "-w", "-t", table, "-n", "-L", chain).Run() != nil {
				continue
			}
			if out, err := exec.Command("iptables", "-w", "-t", table, "-X", chain).CombinedOutput(); err != nil {
				t.Errorf("iptables -t %s -X %s: %v: %s", table, chain, err, out)
			}
		}
	}
}

// writeManifest drops a static pod manifest (JSON is YAML) into
// staticPodPath, atomically, so the kubelet never reads half a file.
func (k *kubelet) writeManifest(t *testing.T, name string, pod map[string]any) {
	t.Helper()
	raw, err := json.MarshalIndent(pod, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(k.dir, "."+name+".json")
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.manifests, name+".json")); err != nil {
		t.Fatal(err)
	}
}

func (k *kubelet) removeManifest(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(k.manifests, name+".json")); err != nil {
		t.Fatal(err)
	}
}

// The parts of a v1.Pod the tests read from the kubelet's /pods.
type kubePod struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	} `json:"metadata"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		ContainerStatuses     []kubeContainerStatus `json:"containerStatuses"`
		InitContainerStatuses []kubeContainerStatus `json:"initContainerStatuses"`
	} `json:"status"`
}

type kubeContainerStatus struct {
	Name         string `json:"name"`
	Ready        bool   `json:"ready"`
	RestartCount int    `json:"restartCount"`
	ContainerID  string `json:"containerID"`
	State        struct {
		Running    *struct{} `json:"running"`
		Terminated *struct {
			ExitCode int    `json:"exitCode"`
			Reason   string `json:"reason"`
		} `json:"terminated"`
		Waiting *struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"waiting"`
	} `json:"state"`
}

func (p kubePod) condition(typ string) string {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

func (p kubePod) container(name string) *kubeContainerStatus {
	for _, list := range [][]kubeContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func (k *kubelet) url(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", kubeletPort, path)
}

// pod returns the static pod name (the kubelet appends the node name) as
// the kubelet's /pods reports it, or nil when it is not there.
func (k *kubelet) pod(t *testing.T, name string) *kubePod {
	t.Helper()
	resp, err := k.client.Get(k.url("/pods"))
	if err != nil {
		t.Fatalf("GET /pods: %v", err)
	}
	defer resp.Body.Close()
	var list struct {
		Items []kubePod `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("decode /pods: %v", err)
	}
	for i := range list.Items {
		if list.Items[i].Metadata.Name == name+"-"+kubeletNode {
			return &list.Items[i]
		}
	}
	return nil
}

// waitPod polls /pods until cond holds for the pod, and fails with the
// pod's last status and the kubelet's log otherwise.
func (k *kubelet) waitPod(t *testing.T, name string, within time.Duration, what string, cond func(*kubePod) bool) *kubePod {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p := k.pod(t, name)
		if p != nil && cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			js, _ := json.MarshalIndent(p, "", " ")
			t.Fatalf("pod %s: not %s within %s; last status:\n%s\nkubelet log %s (tail):\n%s", name, what, within, js, k.logPath, k.logTail(30))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// logs reads a container's log through the kubelet's /containerLogs.
func (k *kubelet) logs(t *testing.T, pod, ctr string) string {
	t.Helper()
	return k.logsWith(t, pod, ctr, "")
}

// logsWith reads a log with the query (e.g. "previous=true").
func (k *kubelet) logsWith(t *testing.T, pod, ctr, query string) string {
	t.Helper()
	resp, err := k.client.Get(k.url(fmt.Sprintf("/containerLogs/default/%s-%s/%s?%s", pod, kubeletNode, ctr, query)))
	if err != nil {
		t.Fatalf("GET containerLogs: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET containerLogs %s/%s: %s: %s", pod, ctr, resp.Status, body)
	}
	return string(body)
}

// upgrade opens a SPDY connection to the kubelet's streaming endpoint path
// (exec, portForward) with the given subprotocol, as kubectl does through
// the API server.
func (k *kubelet) upgrade(t *testing.T, path string, query url.Values, protocol string) httpstream.Connection {
	t.Helper()
	rt, err := spdy.NewRoundTripper(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // loopback test kubelet
	if err != nil {
		t.Fatal(err)
	}
	u := k.url(path)
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(http.MethodPost, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add(httpstream.HeaderProtocolVersion, protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	conn, err := rt.NewConnection(resp)
	if err != nil {
		t.Fatalf("upgrade %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// exec runs cmd in a container through the kubelet's /exec (remotecommand
// v4 over SPDY) and returns its stdout+stderr and exit code.
func (k *kubelet) exec(t *testing.T, pod, ctr string, cmd ...string) (string, int) {
	t.Helper()
	q := url.Values{"command": cmd, "output": {"1"}, "error": {"1"}}
	conn := k.upgrade(t, fmt.Sprintf("/exec/default/%s-%s/%s", pod, kubeletNode, ctr), q, "v4.channel.k8s.io")
	stream := func(typ string) httpstream.Stream {
		h := http.Header{}
		h.Set("streamType", typ)
		s, err := conn.CreateStream(h)
		if err != nil {
			t.Fatalf("create %s stream: %v", typ, err)
		}
		return s
	}
	errStream := stream("error")
	stdout, stderr := stream("stdout"), stream("stderr")
	out := &lockedBuffer{}
	done := make(chan struct{}, 2)
	for _, s := range []httpstream.Stream{stdout, stderr} {
		go func(s httpstream.Stream) { _, _ = io.Copy(out, s); done <- struct{}{} }(s)
	}
	status, _ := io.ReadAll(errStream)
	<-done
	<-done
	if len(bytes.TrimSpace(status)) == 0 {
		return out.String(), 0
	}
	// A metav1.Status: Failure with reason NonZeroExitCode and the code in
	// details.causes[ExitCode].
	var st struct {
		Status  string `json:"status"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
		Details struct {
			Causes []struct {
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"causes"`
		} `json:"details"`
	}
	if err := json.Unmarshal(status, &st); err != nil {
		t.Fatalf("exec status %q: %v", status, err)
	}
	if st.Status == "Success" {
		return out.String(), 0
	}
	for _, c := range st.Details.Causes {
		if c.Reason == "ExitCode" {
			var code int
			fmt.Sscan(c.Message, &code)
			return out.String(), code
		}
	}
	t.Fatalf("exec %v failed: %s", cmd, status)
	return "", 0
}

// portForwardGET sends an HTTP GET to port of the pod through the
// kubelet's /portForward (portforward.k8s.io over SPDY) and returns the
// response's first line.
func (k *kubelet) portForwardGET(t *testing.T, pod string, port int) string {
	t.Helper()
	conn := k.upgrade(t, fmt.Sprintf("/portForward/default/%s-%s", pod, kubeletNode), nil, "portforward.k8s.io")
	h := http.Header{}
	h.Set("port", fmt.Sprint(port))
	h.Set("requestID", "0")
	h.Set("streamType", "error")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		t.Fatalf("create error stream: %v", err)
	}
	h.Set("streamType", "data")
	data, err := conn.CreateStream(h)
	if err != nil {
		t.Fatalf("create data stream: %v", err)
	}
	errc := make(chan string, 1)
	go func() { b, _ := io.ReadAll(errStream); errc <- string(b) }()
	if _, err := io.WriteString(data, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatalf("write to forwarded port: %v", err)
	}
	line, err := bufio.NewReader(data).ReadString('\n')
	if err != nil {
		select {
		case e := <-errc:
			t.Fatalf("read forwarded port %d: %v; error stream: %q", port, err, e)
		case <-time.After(5 * time.Second):
			t.Fatalf("read forwarded port %d: %v", port, err)
		}
	}
	return strings.TrimSpace(line)
}

// lockedBuffer takes the two output streams into one buffer.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
