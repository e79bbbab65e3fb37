package e2e

// Kubernetes node conformance: the upstream node e2e suite
// (k8s.io/kubernetes/test/e2e_node at v1.37.2, built by
// hack/install-kube.sh with go test -c) with focus [NodeConformance],
// against the daemon. The suite runs etcd and kube-apiserver in-process and
// starts the real kubelet (found next to e2e_node.test), so the node is
// joined to an API server as in a cluster; its specs create pods through
// the API server. Its images come from the local registry under their
// upstream names (hack/testimages, the daemon's registry mirrors).
//
// NODE_E2E selects the specs: "subset" (the default, what make test runs
// within its time budget: nodeE2ESubsetSkip) or "full" (make test-node: every
// [NodeConformance] spec that is not [Serial], [Flaky], [Slow],
// [Disruptive] or [Feature:…]). NODE_E2E_FOCUS / NODE_E2E_SKIP override the
// regexps, NODE_E2E_PROCS the parallel ginkgo processes (default 8, as the upstream job and containerd's measurement here),
// NODE_E2E_TIMEOUT the suite's budget. Failures are judged against
// node-conformance-expected-failures.txt, as critest's are.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const nodeExpectedFailuresFile = "node-conformance-expected-failures.txt"

// nodeE2ESkip are the kinds of [NodeConformance] specs left out, as in
// the upstream node conformance job (and containerd's measurement).
const nodeE2ESkip = `\[Serial\]|\[Flaky\]|\[Slow\]|\[Disruptive\]|\[Feature:[^\]]+\]`

// nodeE2ESubsetSkip is what make test leaves out of the full set to fit
// its 45-minute budget (the full set takes about 25 minutes with 8
// processes here; the subset 7 minutes: 310 specs): the families whose
// specs mostly wait (probes that must *not* fire for 4 minutes, restart
// counts, restartable init containers under restartPolicy Always and
// OnFailure, image updates, mirror pods and node leases, which exercise the
// kubelet rather than the runtime), device plugins, and the two specs that
// fail for cAdvisor's reasons. make test-node runs them all.
var nodeE2ESubsetSkip = []string{
	`Probing restartable init container`,
	`Probing container should \*not\* be restarted`,
	`monotonically increasing restart count`,
	`Containers Lifecycle when using a restartable init container in a Pod with restartPolicy=(Always|OnFailure)`,
	`Containers Lifecycle when running restartable init containers with (startup|liveness) probes`,
	`has its image updated`,
	`Device Plugin`,
	`MirrorPod`,
	`NodeLease`,
	`Summary API`,
	`ContainerMetrics`,
}

// nodeE2EPorts are what the suite's etcd, API server and kubelet bind.
var nodeE2EPorts = []int{2379, 2380, 6443, 10248, 10250, 10255}

func TestNodeConformance(t *testing.T) {
	requireEnv(t)
	dir := getenv("KUBE_CACHE", "/var/cache/cri-runtime-e2e/kube-"+kubeVersion)
	suite, ginkgo := filepath.Join(dir, "e2e_node.test"), filepath.Join(dir, "ginkgo")
	for _, b := range []string{suite, ginkgo, filepath.Join(dir, "kubelet")} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%v (hack/install-kube.sh builds it; make test runs it)", err)
		}
	}
	// The suite's kubelet uses /var/lib/kubelet, whatever it is told: a
	// kubelet of the host's own would share it.
	if _, err := os.Stat("/var/lib/kubelet"); err == nil {
		t.Fatal("/var/lib/kubelet exists: a kubelet runs or ran on this host, and the node e2e suite's kubelet would share its root dir; remove it first")
	}
	for _, p := range nodeE2EPorts {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("the node e2e suite needs port %d free: %v", p, err)
		}
		l.Close()
	}
	focus, skip := `\[NodeConformance\]`, nodeE2ESkip
	mode := getenv("NODE_E2E", "subset")
	switch mode {
	case "full":
	case "subset":
		skip += "|" + strings.Join(nodeE2ESubsetSkip, "|")
	default:
		t.Fatalf("NODE_E2E=%q: want subset or full", mode)
	}
	focus, skip = getenv("NODE_E2E_FOCUS", focus), getenv("NODE_E2E_SKIP", skip)
	budget, err := time.ParseDuration(getenv("NODE_E2E_TIMEOUT", map[bool]string{true: "60m", false: "15m"}[mode == "full"]))
	if err != nil {
		t.Fatalf("NODE_E2E_TIMEOUT: %v", err)
	}
	expected, err := readExpectedFailures(nodeExpectedFailuresFile)
	if err != nil {
		t.Fatal(err)
	}

	work := filepath.Join(env.tmp, "node-e2e")
	reportDir := filepath.Join(work, "report")
	for _, d := range []string{work, reportDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hadPodLogs := exists("/var/log/pods")
	tunables := map[string]string{}
	for _, name := range kubeletTunables {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", name)); err == nil {
			tunables[name] = strings.TrimSpace(string(v))
		}
	}
	t.Cleanup(func() { cleanupNodeE2E(t, tunables, hadPodLogs) })

	// ginkgo runs a compiled suite in the binary's own dir, where the suite
	// writes its kubeconfig, kubelet config and static pod dirs, and the
	// suite takes the kubelet from next to itself: links in the work dir
	// keep all of that out of the cache.
	for _, b := range []string{"e2e_node.test", "kubelet"} {
		if err := os.Symlink(filepath.Join(dir, b), filepath.Join(work, b)); err != nil {
			t.Fatal(err)
		}
	}
	suite = filepath.Join(work, "e2e_node.test")
	path, err := pathWithoutSystemdRun(filepath.Join(work, "path"))
	if err != nil {
		t.Fatal(err)
	}
	kubeletCfg := filepath.Join(work, "kubelet-base.json")
	if err := writeNodeE2EKubeletConfig(kubeletCfg); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(env.artifacts, "node-e2e-junit.xml")
	logPath := filepath.Join(env.artifacts, "node-e2e.log")
	os.Remove(report)
	procs := getenv("NODE_E2E_PROCS", "8")
	args := []string{
		"-nodes=" + procs, "-focus=" + focus, "-skip=" + skip,
		"-timeout=" + budget.String(), "-junit-report=" + report, "-no-color", "-succinct",
		suite, "--",
		"--container-runtime-endpoint=" + env.endpoint, "--image-service-endpoint=" + env.endpoint,
		// Every image a spec needs is in the local registry; the pre-pull
		// list names images of [Serial] and [Feature] specs too.
		"--prepull-images=false",
		"--node-name=" + kubeletNodeName(),
		"--report-dir=" + reportDir,
		"--kubelet-config-file=" + kubeletCfg,
		"--dns-domain=cluster.local",
		// The suite would move every process of the host into a /system
		// cgroup; nothing here needs it.
		"--kubelet-flags=--cluster-domain=cluster.local --system-cgroups=",
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ctx, cancel := context.WithTimeout(context.Background(), budget+5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ginkgo, args...)
	cmd.Dir = work // the suite writes its kubeconfig and kubelet config there
	cmd.Env = append(os.Environ(), "PATH="+path)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Logf("node e2e (%s, %s procs, log %s): focus %s, skip %s", mode, procs, logPath, focus, skip)
	start := time.Now()
	runErr := cmd.Run()
	wall := time.Since(start).Round(time.Second)

	specs, err := readJUnit(report)
	if err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("node e2e (%v, exit: %v) left no usable report: %v\nlast lines of %s:\n%s", wall, runErr, err, logPath, tail(string(log), 40))
	}
	res := compare(specs, expected, mode != "full" || os.Getenv("NODE_E2E_FOCUS") != "" || os.Getenv("NODE_E2E_SKIP") != "")
	fmt.Printf("node-e2e (%s): %d passed, %d failed, %d skipped in %v\n", mode, res.passed, res.failed, res.skipped, wall)
	for _, n := range res.nowPassing {
		t.Logf("now passes, remove from %s: %s", nodeExpectedFailuresFile, n)
	}
	for _, n := range res.stale {
		t.Logf("listed in %s but not in this run's report: %s", nodeExpectedFailuresFile, n)
	}
	if len(res.unexpected) > 0 {
		t.Errorf("%d node e2e specs failed that %s does not expect (details: %s):\n  %s",
			len(res.unexpected), nodeExpectedFailuresFile, logPath, strings.Join(res.unexpected, "\n  "))
	}
	if res.passed == 0 {
		t.Errorf("node e2e passed no spec (exit: %v)", runErr)
	}
}

// kubeletNodeName is the node's name: the host name, as the suite's
// default.
func kubeletNodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "node-e2e"
	}
	return strings.ToLower(h)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// pathWithoutSystemdRun builds a PATH dir of links to every program on
// the PATH but systemd-run: the suite starts its kubelet through
// systemd-run whenever that program exists, which fails where PID 1 is not
// systemd.
func pathWithoutSystemdRun(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			link := filepath.Join(dir, e.Name())
			if e.Name() == "systemd-run" || exists(link) {
				continue
			}
			if err := os.Symlink(filepath.Join(d, e.Name()), link); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

// writeNodeE2EKubeletConfig writes the suite's base kubelet config: the
// upstream job's (test/e2e_node/jenkins/default-kubelet-config.yaml) with
// what this host needs: cgroup v1 allowed, cgroupfs, eviction thresholds
// low enough for a small VM, and no image GC of the test images.
func writeNodeE2EKubeletConfig(path string) error {
	cfg := map[string]any{
		"apiVersion":                       "kubelet.config.k8s.io/v1beta1",
		"kind":                             "KubeletConfiguration",
		"failCgroupV1":                     false,
		"cgroupDriver":                     "cgroupfs",
		"cgroupRoot":                       "/",
		"podCIDR":                          "10.100.0.0/24",
		"volumeStatsAggPeriod":             "10s",
		"fileCheckFrequency":               "10s",
		"evictionPressureTransitionPeriod": "30s",
		"evictionHard": map[string]string{
			"memory.available": "250Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%",
		},
		"evictionMinimumReclaim": map[string]string{"nodefs.available": "1%", "nodefs.inodesFree": "1%"},
		"serializeImagePulls":    false,
		// No image GC: the images come from the local registry only once.
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}

// cleanupNodeE2E puts the host back after the suite: the pods its kubelet
// left in the runtime, the kubelet's root dir (mounts first), its pod logs
// and /var/log/containers links, cgroups, kernel tunables and iptables
// chains.
func cleanupNodeE2E(t *testing.T, tunables map[string]string, hadPodLogs bool) {
	removeAllKubeletPods(t)
	for _, m := range mountsUnder("/var/lib/kubelet") {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", m, err)
		}
	}
	if err := unix.Unmount("/var/lib/kubelet", unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		t.Errorf("unmount /var/lib/kubelet: %v", err)
	}
	if len(mountsUnder("/var/lib/kubelet")) == 0 {
		if err := os.RemoveAll("/var/lib/kubelet"); err != nil {
			t.Errorf("remove /var/lib/kubelet: %v", err)
		}
	}
	if !hadPodLogs {
		_ = os.RemoveAll("/var/log/pods")
	}
	if links, err := os.ReadDir("/var/log/containers"); err == nil {
		for _, l := range links {
			p := filepath.Join("/var/log/containers", l.Name())
			if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, "/var/log/pods/") && !exists(target) {
				_ = os.Remove(p)
			}
		}
	}
	for name, v := range tunables {
		_ = os.WriteFile(filepath.Join("/proc/sys", name), []byte(v), 0o644)
	}
	removeKubeletIptablesChains(t)
	for _, cg := range []string{"/kubepods", "/kubelet", "/docker-daemon", "/system"} {
		if left := removeCgroupTree(cg); len(left) > 0 {
			t.Errorf("cgroups the suite's kubelet left: %v", left)
		}
	}
}

// removeAllKubeletPods stops and removes every sandbox a kubelet made
// (they carry the pod UID label) with its containers.
func removeAllKubeletPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ps, err := env.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Errorf("ListPodSandbox: %v", err)
		return
	}
	for _, p := range ps.GetItems() {
		if p.GetLabels()["io.kubernetes.pod.uid"] == "" {
			continue
		}
		removePod(ctx, t, p.GetId())
	}
}

// removePod removes a sandbox's containers, then stops and removes it.
func removePod(ctx context.Context, t *testing.T, id string) {
	cs, err := env.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: id}})
	if err != nil {
		t.Errorf("ListContainers: %v", err)
	}
	for _, c := range cs.GetContainers() {
		if _, err := env.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.GetId(), Timeout: 0}); err != nil {
			t.Errorf("StopContainer %s: %v", c.GetId(), err)
		}
		if _, err := env.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.GetId()}); err != nil {
			t.Errorf("RemoveContainer %s: %v", c.GetId(), err)
		}
	}
	if _, err := env.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Errorf("StopPodSandbox %s: %v", id, err)
	}
	if _, err := env.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Errorf("RemovePodSandbox %s: %v", id, err)
	}
}
