package e2e

// The upstream kubelet (standalone, static pods) on the daemon, on each CNI
// chain: probes of every kind, a restart after a failing liveness probe, an
// init container, an emptyDir shared by two containers, a sidecar talking
// over localhost, logs, exec and port-forward through the kubelet's own
// API, and teardown when the manifest goes. critest never sends what the
// kubelet sends (hugepage limits for every page size, its cgroup parents,
// its log paths, its probe and restart patterns); this does.

import (
	"context"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// static pod manifests, as a user would write them.
func webPod() map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "web", "namespace": "default"},
		"spec": map[string]any{
			"terminationGracePeriodSeconds": 2,
			"containers": []any{
				map[string]any{
					"name": "web", "image": e2eNginx,
					"ports":          []any{map[string]any{"containerPort": 80}},
					"readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/", "port": 80}, "periodSeconds": 1},
					"livenessProbe":  map[string]any{"tcpSocket": map[string]any{"port": 80}, "periodSeconds": 2},
				},
				// A sidecar that reaches the web server over 127.0.0.1 (timeout, not
				// wget -T: Debian busybox 1.35's wget crashes on -T).
				map[string]any{
					"name": "sidecar", "image": e2eBusybox,
					"command": []string{"sh", "-c", "exec sleep 3600"},
				},
			},
		},
	}
}

func probesPod() map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "probes", "namespace": "default"},
		"spec": map[string]any{
			"terminationGracePeriodSeconds": 2,
			"containers": []any{map[string]any{
				"name": "app", "image": e2eBusybox,
				// Alive for 3 s, then the liveness probe fails and the
				// kubelet restarts it.
				"command":        []string{"sh", "-c", "touch /tmp/ready /tmp/alive; echo started; (sleep 3; rm -f /tmp/alive) & exec sleep 3600"},
				"readinessProbe": map[string]any{"exec": map[string]any{"command": []string{"cat", "/tmp/ready"}}, "periodSeconds": 1},
				"livenessProbe":  map[string]any{"exec": map[string]any{"command": []string{"cat", "/tmp/alive"}}, "periodSeconds": 1, "failureThreshold": 2},
			}},
		},
	}
}

func sharedPod() map[string]any {
	mount := []any{map[string]any{"name": "work", "mountPath": "/work"}}
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "shared", "namespace": "default"},
		"spec": map[string]any{
			"terminationGracePeriodSeconds": 2,
			"volumes":                       []any{map[string]any{"name": "work", "emptyDir": map[string]any{}}},
			"initContainers": []any{map[string]any{
				"name": "init", "image": e2eBusybox, "volumeMounts": mount,
				"command": []string{"sh", "-c", "echo from-init > /work/init.txt"},
			}},
			"containers": []any{
				map[string]any{
					"name": "writer", "image": e2eBusybox, "volumeMounts": mount,
					"command": []string{"sh", "-c", "echo from-writer > /work/writer.txt; exec sleep 3600"},
				},
				map[string]any{
					"name": "reader", "image": e2eBusybox, "volumeMounts": mount,
					"command": []string{"sh", "-c", "until [ -f /work/writer.txt ]; do sleep 0.2; done; cat /work/init.txt /work/writer.txt; exec sleep 3600"},
				},
			},
		},
	}
}

func TestKubelet(t *testing.T) {
	requireEnv(t)
	pullImage(t, e2eBusybox)
	pullImage(t, e2eNginx)
	for _, chain := range cniChains() {
		t.Run("cni="+chain, func(t *testing.T) {
			useCNIChain(t, chain)
			k := startKubelet(t)
			// A label of the chain makes each run's pods new ones (the
			// kubelet derives a static pod's UID from its manifest).
			for name, pod := range map[string]map[string]any{"web": webPod(), "probes": probesPod(), "shared": sharedPod()} {
				pod["metadata"].(map[string]any)["labels"] = map[string]string{"cni-chain": chain}
				k.writeManifest(t, name, pod)
			}

			t.Run("http and tcp probes", func(t *testing.T) {
				p := k.waitPod(t, "web", 90*time.Second, "Ready", func(p *kubePod) bool { return p.condition("Ready") == "True" })
				if p.Status.PodIP == "" || !strings.HasPrefix(p.Status.PodIP, "10.99.") {
					t.Errorf("pod IP %q, want one of the CNI network's", p.Status.PodIP)
				}
			})
			t.Run("localhost between containers", func(t *testing.T) {
				out, code := k.exec(t, "web", "sidecar", "timeout", "10", "wget", "-q", "-O", "-", "http://127.0.0.1:80/")
				if code != 0 || out == "" {
					t.Fatalf("wget of 127.0.0.1:80 from the sidecar: exit %d, %q", code, out)
				}
			})
			t.Run("port-forward", func(t *testing.T) {
				if line := k.portForwardGET(t, "web", 80); !strings.Contains(line, "200") {
					t.Fatalf("GET / through the kubelet's portForward: %q, want a 200", line)
				}
			})
			t.Run("exec probes and liveness restart", func(t *testing.T) {
				k.waitPod(t, "probes", 60*time.Second, "Ready", func(p *kubePod) bool { return p.condition("Ready") == "True" })
				p := k.waitPod(t, "probes", 90*time.Second, "restarted after its liveness probe failed", func(p *kubePod) bool {
					c := p.container("app")
					return c != nil && c.RestartCount >= 1
				})
				if c := p.container("app"); c.State.Running == nil && (c.State.Waiting == nil || c.State.Waiting.Reason != "CrashLoopBackOff") {
					t.Errorf("app after its restart: %+v", c.State)
				}
				// The new instance logs afresh; the first one's log stays
				// readable as the previous one.
				if logs := k.logsWith(t, "probes", "app", "previous=true"); !strings.Contains(logs, "started") {
					t.Errorf("logs of the app before its restart: %q", logs)
				}
				waitFor(t, 20*time.Second, "the restarted app logs", func() bool { return strings.Contains(k.logs(t, "probes", "app"), "started") })
			})
			t.Run("init container and shared emptyDir", func(t *testing.T) {
				p := k.waitPod(t, "shared", 90*time.Second, "Ready", func(p *kubePod) bool { return p.condition("Ready") == "True" })
				if c := p.container("init"); c == nil || c.State.Terminated == nil || c.State.Terminated.ExitCode != 0 {
					t.Fatalf("init container: %+v", c)
				}
				waitFor(t, 30*time.Second, "the reader logs from-init and from-writer", func() bool {
					logs := k.logs(t, "shared", "reader")
					return strings.Contains(logs, "from-init") && strings.Contains(logs, "from-writer")
				})
				if out, code := k.exec(t, "shared", "writer", "cat", "/work/init.txt"); code != 0 || strings.TrimSpace(out) != "from-init" {
					t.Fatalf("exec cat /work/init.txt in writer: exit %d, %q", code, out)
				}
				if _, code := k.exec(t, "shared", "writer", "sh", "-c", "exit 3"); code != 3 {
					t.Fatalf("exec exit 3: exit code %d", code)
				}
			})
			t.Run("teardown when the manifest goes", func(t *testing.T) {
				p := k.pod(t, "shared")
				if p == nil {
					t.Fatal("pod shared is not there")
				}
				uid := p.Metadata.UID
				k.removeManifest(t, "shared")
				deadline := time.Now().Add(60 * time.Second)
				for {
					running := runningOfPod(t, uid)
					if k.pod(t, "shared") == nil && len(running) == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("60s after its manifest went, pod shared: still listed %v, running in the runtime: %v", k.pod(t, "shared") != nil, running)
					}
					time.Sleep(500 * time.Millisecond)
				}
			})
			k.removeManifest(t, "web")
			k.removeManifest(t, "probes")
		})
	}
}

// waitFor polls cond every 250ms until it holds or within has passed.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// runningOfPod lists the READY sandboxes and RUNNING containers the runtime
// has of the kubelet pod with uid.
func runningOfPod(t *testing.T, uid string) []string {
	t.Helper()
	ctx := context.Background()
	sel := map[string]string{"io.kubernetes.pod.uid": uid}
	var out []string
	ps, err := env.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		t.Fatalf("ListPodSandbox: %v", err)
	}
	for _, p := range ps.GetItems() {
		if p.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			out = append(out, "sandbox "+p.GetId())
		}
	}
	cs, err := env.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	for _, c := range cs.GetContainers() {
		if c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			out = append(out, "container "+c.GetMetadata().GetName())
		}
	}
	return out
}
