package nri

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	api "github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestToAPIPodAndContainer(t *testing.T) {
	created := time.Unix(100, 5)
	tests := []struct {
		name string
		in   *Container
		want func(c *api.Container) bool
	}{
		{"state and times", &Container{ID: "c", PodSandboxID: "p", Name: "app", State: StateRunning, CreatedAt: created, Pid: 7},
			func(c *api.Container) bool {
				return c.GetState() == api.ContainerState_CONTAINER_RUNNING && c.GetCreatedAt() == created.UnixNano() && c.GetStartedAt() == 0 && c.GetPid() == 7 && c.GetName() == "app"
			}},
		{"stopped with exit", &Container{ID: "c", State: StateStopped, ExitCode: 3, Reason: "Error"},
			func(c *api.Container) bool {
				return c.GetState() == api.ContainerState_CONTAINER_STOPPED && c.GetExitCode() == 3 && c.GetStatusReason() == "Error"
			}},
		{"from the spec", &Container{ID: "c", Spec: baseSpec()},
			func(c *api.Container) bool {
				return reflect.DeepEqual(c.GetArgs(), []string{"sleep", "1"}) && len(c.GetEnv()) == 3 && len(c.GetMounts()) == 2 &&
					c.GetLinux().GetResources().GetMemory().GetLimit().GetValue() == 100 && len(c.GetLinux().GetNamespaces()) == 2
			}},
		{"nil spec", &Container{ID: "c"}, func(c *api.Container) bool { return c.GetLinux() == nil && c.GetArgs() == nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := toAPIContainer(tc.in); !tc.want(got) {
				t.Errorf("toAPIContainer = %v", got)
			}
		})
	}
	pod := toAPIPod(&PodSandbox{ID: "p", Name: "n", UID: "u", Namespace: "ns", NetNSPath: "/run/netns/x", CgroupParent: "/kubepods", IPs: []string{"10.0.0.2"}})
	if pod.GetName() != "n" || pod.GetUid() != "u" || pod.GetNamespace() != "ns" || pod.GetLinux().GetCgroupParent() != "/kubepods" ||
		pod.GetLinux().GetNamespaces()[0].GetPath() != "/run/netns/x" || pod.GetIps()[0] != "10.0.0.2" {
		t.Errorf("toAPIPod = %v", pod)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"enabled", func(c *Config) { c.Enable = true }, true},
		{"relative socket", func(c *Config) { c.SocketPath = "nri.sock" }, false},
		{"zero timeout", func(c *Config) { c.PluginRequestTimeout = 0 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || time.Duration(d) != 90*time.Second {
		t.Errorf("UnmarshalText = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("10")); err == nil {
		t.Error("a bare number was accepted as a duration")
	}
}

// fakeDomain is the facade as the adapter sees it.
type fakeDomain struct {
	mu      sync.Mutex
	pods    []*PodSandbox
	ctrs    []*Container
	updated map[string]*specs.LinuxResources
}

func (d *fakeDomain) ListPodSandboxes(context.Context) []*PodSandbox {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.pods)
}

func (d *fakeDomain) ListContainers(context.Context) []*Container {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.ctrs)
}

func (d *fakeDomain) UpdateContainer(_ context.Context, id string, res *specs.LinuxResources) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.updated[id] = res
	return nil
}

func (d *fakeDomain) EvictContainer(context.Context, string, string) error { return nil }

// recorder is a plugin that records events and adds an env var.
type recorder struct {
	mu     sync.Mutex
	events []string
	synced chan []string
	fail   bool
}

func (r *recorder) add(ev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	var ids []string
	for _, p := range pods {
		ids = append(ids, p.GetId())
	}
	for _, c := range ctrs {
		ids = append(ids, c.GetId())
	}
	r.synced <- ids
	u := &api.ContainerUpdate{ContainerId: "old"}
	u.SetLinuxCPUShares(3)
	return []*api.ContainerUpdate{u}, nil
}

func (r *recorder) RunPodSandbox(_ context.Context, p *api.PodSandbox) error {
	r.add("RunPodSandbox " + p.GetId())
	return nil
}

func (r *recorder) StopPodSandbox(_ context.Context, p *api.PodSandbox) error {
	r.add("StopPodSandbox " + p.GetId())
	return nil
}

func (r *recorder) RemovePodSandbox(_ context.Context, p *api.PodSandbox) error {
	r.add("RemovePodSandbox " + p.GetId())
	return nil
}

func (r *recorder) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	r.add("CreateContainer " + c.GetId())
	if r.fail {
		return nil, nil, errors.New("induced")
	}
	a := &api.ContainerAdjustment{}
	a.AddEnv("FROM_NRI", "1")
	return a, nil, nil
}

func (r *recorder) StartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	r.add("StartContainer " + c.GetId())
	return nil
}

func (r *recorder) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	r.add("StopContainer " + c.GetId())
	return nil, nil
}

func (r *recorder) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	r.add("RemoveContainer " + c.GetId())
	return nil
}

// TestAdapterWithPlugin drives a real adaptation with a real plugin over a
// socket: synchronize with what exists, adjustments land in the spec,
// stop is told once and before remove, a hook error fails the create.
func TestAdapterWithPlugin(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "nri.sock")
	d := &fakeDomain{
		pods:    []*PodSandbox{{ID: "old-pod"}},
		ctrs:    []*Container{{ID: "old", PodSandboxID: "old-pod", State: StateRunning}},
		updated: map[string]*specs.LinuxResources{},
	}
	cfg := DefaultConfig()
	cfg.Enable, cfg.SocketPath, cfg.PluginPath, cfg.PluginConfigPath = true, sock, filepath.Join(dir, "plugins"), filepath.Join(dir, "conf.d")
	a, err := New(cfg, "test", "0", d)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)

	rec := &recorder{synced: make(chan []string, 1)}
	s, err := stub.New(rec, stub.WithPluginName("rec"), stub.WithPluginIdx("10"), stub.WithSocketPath(sock))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	select {
	case ids := <-rec.synced:
		if !reflect.DeepEqual(ids, []string{"old-pod", "old"}) {
			t.Errorf("synchronized with %v", ids)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Synchronize")
	}
	// The update the plugin returned from Synchronize reached the domain;
	// the plugin is registered once Synchronize returned.
	waitFor(t, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.updated["old"] != nil && *d.updated["old"].CPU.Shares == 3
	})
	time.Sleep(100 * time.Millisecond)

	ctx := context.Background()
	pod := &PodSandbox{ID: "p"}
	ctr := &Container{ID: "c", PodSandboxID: "p", Spec: &specs.Spec{Process: &specs.Process{Env: []string{"A=1"}}}}
	must(t, a.RunPodSandbox(ctx, pod))
	must(t, a.CreateContainer(ctx, pod, ctr))
	if !slices.Contains(ctr.Spec.Process.Env, "FROM_NRI=1") {
		t.Errorf("env after CreateContainer = %v", ctr.Spec.Process.Env)
	}
	must(t, a.StartContainer(ctx, pod, ctr))
	must(t, a.StopContainer(ctx, pod, ctr))
	must(t, a.StopContainer(ctx, pod, ctr)) // exit event after the RPC: not told again
	must(t, a.RemoveContainer(ctx, pod, ctr))
	must(t, a.StopPodSandbox(ctx, pod))
	must(t, a.StopPodSandbox(ctx, pod))
	must(t, a.RemovePodSandbox(ctx, pod))

	rec.mu.Lock()
	rec.fail = true
	rec.mu.Unlock()
	bad := &Container{ID: "bad", PodSandboxID: "p", Spec: &specs.Spec{}}
	if err := a.CreateContainer(ctx, pod, bad); err == nil {
		t.Error("CreateContainer succeeded although the plugin failed it")
	}
	a.UndoCreateContainer(ctx, pod, bad)

	want := []string{
		"RunPodSandbox p", "CreateContainer c", "StartContainer c", "StopContainer c", "RemoveContainer c",
		"StopPodSandbox p", "RemovePodSandbox p",
		"CreateContainer bad", "StopContainer bad", "RemoveContainer bad",
	}
	rec.mu.Lock()
	got := slices.Clone(rec.events)
	rec.mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
}

func TestDisabledAdapterIsInert(t *testing.T) {
	a, err := New(DefaultConfig(), "test", "0", &fakeDomain{})
	if err != nil || a != nil {
		t.Fatalf("New(disabled) = %v, %v", a, err)
	}
	ctx := context.Background()
	must(t, a.Start())
	must(t, a.RunPodSandbox(ctx, &PodSandbox{}))
	must(t, a.CreateContainer(ctx, &PodSandbox{}, &Container{}))
	a.BlockSync()()
	a.Stop()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// TestUpdateContainerWithoutPlugins: with NRI on and no plugin connected,
// the adaptation's response carries a nil update for the container; it
// must not turn into a failed update of container "" (every
// UpdateContainerResources of the kubelet failed FailedPrecondition).
func TestUpdateContainerWithoutPlugins(t *testing.T) {
	dir := t.TempDir()
	d := &fakeDomain{updated: map[string]*specs.LinuxResources{}}
	cfg := DefaultConfig()
	cfg.Enable, cfg.SocketPath, cfg.PluginPath, cfg.PluginConfigPath = true, filepath.Join(dir, "nri.sock"), filepath.Join(dir, "plugins"), filepath.Join(dir, "conf.d")
	a, err := New(cfg, "test", "0", d)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	shares := uint64(4)
	res := &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}}
	ctr := &Container{ID: "c", PodSandboxID: "p", State: StateRunning, Spec: &specs.Spec{}}
	if err := a.UpdateContainer(context.Background(), &PodSandbox{ID: "p"}, ctr, res); err != nil {
		t.Fatalf("UpdateContainer with no plugins: %v", err)
	}
	if res.CPU == nil || *res.CPU.Shares != 4 {
		t.Fatalf("resources changed to %+v", res.CPU)
	}
	if len(d.updated) != 0 {
		t.Fatalf("domain asked to update %v", d.updated)
	}
}
