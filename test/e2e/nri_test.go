package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// envPlugin is an NRI plugin that adds one environment variable to every
// container it sees created.
type envPlugin struct {
	key, value string
	synced     chan struct{}
	once       sync.Once

	mu      sync.Mutex
	created []string // container ids seen in CreateContainer
}

func (p *envPlugin) Synchronize(_ context.Context, _ []*api.PodSandbox, _ []*api.Container) ([]*api.ContainerUpdate, error) {
	p.once.Do(func() { close(p.synced) })
	return nil, nil
}

func (p *envPlugin) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.mu.Lock()
	p.created = append(p.created, c.GetId())
	p.mu.Unlock()
	adj := &api.ContainerAdjustment{}
	adj.AddEnv(p.key, p.value)
	return adj, nil, nil
}

// startEnvPlugin connects an envPlugin to the daemon's NRI socket and
// waits for its Synchronize; it is stopped in t.Cleanup.
func startEnvPlugin(t *testing.T, key, value string) (*envPlugin, stub.Stub) {
	t.Helper()
	requireEnv(t)
	if env.nriSocket == "" {
		t.Skip("the daemon config is E2E_DAEMON_CONFIG's, without the harness's [nri]")
	}
	p := &envPlugin{key: key, value: value, synced: make(chan struct{})}
	s, err := stub.New(p, stub.WithPluginName("e2e-env"), stub.WithPluginIdx("50"), stub.WithSocketPath(env.nriSocket))
	if err != nil {
		t.Fatalf("NRI stub: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatalf("start NRI plugin: %v", err)
	}
	t.Cleanup(func() { s.Stop(); cancel() })
	select {
	case <-p.synced:
	case <-time.After(15 * time.Second):
		t.Fatal("NRI plugin was not synchronized within 15s")
	}
	return p, s
}

// TestNRIPluginAddsEnv: a plugin's CreateContainer adjustment reaches the
// container's process, and once the plugin is gone new containers are
// created as asked.
func TestNRIPluginAddsEnv(t *testing.T) {
	value := "injected-" + time.Now().Format("150405.000000000")
	p, s := startEnvPlugin(t, "NRI_E2E", value)
	pullImage(t, e2eBusybox)
	pod := runPod(t, "nri-env")

	id := pod.container(t, "with-plugin", sh("sleep 3600"), true)
	out, code := execSync(t, id, "env")
	if code != 0 || !strings.Contains(out, "NRI_E2E="+value+"\n") {
		t.Fatalf("env of a container created with the plugin connected (exit %d) lacks NRI_E2E=%s:\n%s", code, value, out)
	}
	p.mu.Lock()
	seen := strings.Join(p.created, ",")
	p.mu.Unlock()
	if !strings.Contains(seen, id) {
		t.Errorf("plugin saw CreateContainer for %q, not for %s", seen, id)
	}

	s.Stop()
	// The daemon notices the closed connection at its next event at the
	// latest; a container created after that is left alone.
	time.Sleep(200 * time.Millisecond)
	id2 := pod.container(t, "without-plugin", sh("sleep 3600"), true)
	if out, _ := execSync(t, id2, "env"); strings.Contains(out, "NRI_E2E=") {
		t.Fatalf("env of a container created after the plugin left still has NRI_E2E:\n%s", out)
	}
}
