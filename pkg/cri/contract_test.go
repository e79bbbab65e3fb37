package cri

// The CRI contract (STYLE.md §C.13) and the lifecycle preconditions
// (pkg/cri/lifecycle) through the RPCs, over an in-process gRPC connection
// to a Service on fakes: fakeTasks for the task runtime, fakeImages,
// fakeNetwork, and a real store in a temp dir. No shim, no runc, no root:
//
//	go test ./pkg/cri/ -run Contract
//
// passes as any user. The pods run on the host's network and IPC with a
// pause (PID mode POD), so that nothing needs a mount or a namespace.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
	"github.com/cri-runtime/cri-runtime/pkg/cri/lifecycle"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// contractEnv is a started Service on fakes and a client to it.
type contractEnv struct {
	s     *Service
	tasks *fakeTasks
	store *recordingStore
	rt    runtimeapi.RuntimeServiceClient
}

// newContractEnv starts a Service over tasks; seed, when set, writes
// records into the store before the Service restores from it.
func newContractEnv(t *testing.T, tasks *fakeTasks, seed func(*store.Store)) *contractEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "root", "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if seed != nil {
		seed(st)
	}
	pause := filepath.Join(dir, "pause")
	if err := os.WriteFile(pause, []byte("not run: the tasks are fakes\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	// A handler whose binary is absent: its feature probe fails at once.
	cfg.Runtimes = map[string]RuntimeHandler{"runc": {BinaryPath: filepath.Join(dir, "no-runc")}}
	rec := &recordingStore{recordStore: st, puts: map[string][]any{}}
	s, err := newService(cfg, tasks, newFakeImages(busyboxImage()), fakeNetwork{}, rec,
		WithStateDir(filepath.Join(dir, "state")), WithRootDir(filepath.Join(dir, "root")), WithPauseBinary(pause))
	if err != nil {
		t.Fatal(err)
	}
	// Bound containers by every capability, as a daemon running as root
	// is: a test's process may hold none, and the fake tasks run nothing.
	s.ownCaps = spec.AllCapabilities()
	_, ctx := ktesting.NewTestContext(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	conn := testutil.ServeInMemory(t, s.Register,
		grpc.ChainUnaryInterceptor(UnaryInterceptor(s)), grpc.ChainStreamInterceptor(StreamInterceptor(s)))
	return &contractEnv{s: s, tasks: tasks, store: rec, rt: runtimeapi.NewRuntimeServiceClient(conn)}
}

// recordingStore keeps every record written, by key, in order.
type recordingStore struct {
	recordStore
	mu   sync.Mutex
	puts map[string][]any
}

func (r *recordingStore) Put(ctx context.Context, kind store.Kind, key string, v any) error {
	r.mu.Lock()
	r.puts[key] = append(r.puts[key], v)
	r.mu.Unlock()
	return r.recordStore.Put(ctx, kind, key, v)
}

// containerWrites are the statuses written of container id, in order.
func (r *recordingStore) containerWrites(id string) []containerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []containerStatus
	for _, v := range r.puts[id] {
		if rec, ok := v.(record[containerMeta, containerStatus]); ok {
			out = append(out, rec.Status)
		}
	}
	return out
}

func podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "contract", Uid: name + "-uid"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_POD,
			},
		}},
	}
}

func containerConfig(name string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busyboxTag},
		Command:  []string{"sleep", "inf"},
	}
}

func (e *contractEnv) runPod(t *testing.T, name string) string {
	t.Helper()
	resp, err := e.rt.RunPodSandbox(t.Context(), &runtimeapi.RunPodSandboxRequest{Config: podConfig(name)})
	if err != nil {
		t.Fatalf("RunPodSandbox %s: %v", name, err)
	}
	return resp.GetPodSandboxId()
}

func (e *contractEnv) createContainer(t *testing.T, podID, name string) string {
	t.Helper()
	resp, err := e.rt.CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID, Config: containerConfig(name), SandboxConfig: podConfig("p"),
	})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	return resp.GetContainerId()
}

func (e *contractEnv) startContainer(t *testing.T, id string) {
	t.Helper()
	if _, err := e.rt.StartContainer(t.Context(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer %s: %v", id, err)
	}
}

// exitTask makes a task exit with code and waits until its object shows
// it: the container EXITED, or the sandbox NOTREADY.
func (e *contractEnv) exitTask(t *testing.T, id string, code int) {
	t.Helper()
	task, err := e.tasks.task(taskNamespace, id)
	if err != nil {
		t.Fatal(err)
	}
	task.exitWith(code)
	waitUntil(t, "the exit of "+id+" recorded", func() bool {
		if c, err := e.s.containers.Get(id); err == nil {
			return c.Status().State() == runtimeapi.ContainerState_CONTAINER_EXITED
		}
		sb, err := e.s.sandboxes.Get(id)
		return err == nil && sb.Status().State() == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestContractCodes: each RPC's gRPC code against the CRI contract and the
// lifecycle preconditions. A missing object is NotFound for *Status and
// the precondition RPCs, success for Stop* and Remove*; an object in the
// wrong state is FailedPrecondition, whichever RPC asks.
func TestContractCodes(t *testing.T) {
	env := newContractEnv(t, newFakeTasks(), nil)
	ready := env.runPod(t, "ready")
	created := env.createContainer(t, ready, "created")
	running := env.createContainer(t, ready, "running")
	env.startContainer(t, running)
	exited := env.createContainer(t, ready, "exited")
	env.startContainer(t, exited)
	env.exitTask(t, exited, 3)
	notReady := env.runPod(t, "notready")
	env.exitTask(t, notReady, 0) // its pause died
	const missing = "nosuchobject"

	rt := env.rt
	for _, tc := range []struct {
		name string
		call func(context.Context) error
		want codes.Code
	}{
		{"StartContainer of a RUNNING container", func(ctx context.Context) error {
			_, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: running})
			return err
		}, codes.FailedPrecondition},
		{"StartContainer of an EXITED container", func(ctx context.Context) error {
			_, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: exited})
			return err
		}, codes.FailedPrecondition},
		{"StartContainer of a missing container", func(ctx context.Context) error {
			_, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: missing})
			return err
		}, codes.NotFound},
		{"StopContainer of a missing container", func(ctx context.Context) error {
			_, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: missing})
			return err
		}, codes.OK},
		{"RemoveContainer of a missing container", func(ctx context.Context) error {
			_, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: missing})
			return err
		}, codes.OK},
		{"StopPodSandbox of a missing sandbox", func(ctx context.Context) error {
			_, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: missing})
			return err
		}, codes.OK},
		{"RemovePodSandbox of a missing sandbox", func(ctx context.Context) error {
			_, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: missing})
			return err
		}, codes.OK},
		{"ContainerStatus of a missing container", func(ctx context.Context) error {
			_, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: missing})
			return err
		}, codes.NotFound},
		{"PodSandboxStatus of a missing sandbox", func(ctx context.Context) error {
			_, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: missing})
			return err
		}, codes.NotFound},
		{"ExecSync in a CREATED container", func(ctx context.Context) error {
			_, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: created, Cmd: []string{"true"}})
			return err
		}, codes.FailedPrecondition},
		{"ExecSync in an EXITED container", func(ctx context.Context) error {
			_, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: exited, Cmd: []string{"true"}})
			return err
		}, codes.FailedPrecondition},
		{"ExecSync in a missing container", func(ctx context.Context) error {
			_, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: missing, Cmd: []string{"true"}})
			return err
		}, codes.NotFound},
		{"Exec in an EXITED container", func(ctx context.Context) error {
			_, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: exited, Cmd: []string{"sh"}, Stdout: true})
			return err
		}, codes.FailedPrecondition},
		{"Attach to a CREATED container", func(ctx context.Context) error {
			_, err := rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: created, Stdout: true})
			return err
		}, codes.FailedPrecondition},
		{"ReopenContainerLog of an EXITED container", func(ctx context.Context) error {
			_, err := rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: exited})
			return err
		}, codes.FailedPrecondition},
		{"CheckpointContainer of a CREATED container", func(ctx context.Context) error {
			_, err := rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: created})
			return err
		}, codes.FailedPrecondition},
		{"ContainerStats of an EXITED container", func(ctx context.Context) error {
			_, err := rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: exited})
			return err
		}, codes.FailedPrecondition},
		{"ContainerStats of a missing container", func(ctx context.Context) error {
			_, err := rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: missing})
			return err
		}, codes.NotFound},
		{"UpdateContainerResources of an EXITED container", func(ctx context.Context) error {
			_, err := rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
				ContainerId: exited, Linux: &runtimeapi.LinuxContainerResources{CpuShares: 512},
			})
			return err
		}, codes.FailedPrecondition},
		{"UpdateContainerResources of a CREATED container", func(ctx context.Context) error {
			_, err := rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
				ContainerId: created, Linux: &runtimeapi.LinuxContainerResources{CpuShares: 512},
			})
			return err
		}, codes.OK},
		{"CreateContainer in a NOTREADY sandbox", func(ctx context.Context) error {
			_, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: notReady, Config: containerConfig("late")})
			return err
		}, codes.FailedPrecondition},
		{"CreateContainer in a missing sandbox", func(ctx context.Context) error {
			_, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: missing, Config: containerConfig("late")})
			return err
		}, codes.NotFound},
		{"PodSandboxStats of a NOTREADY sandbox", func(ctx context.Context) error {
			_, err := rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: notReady})
			return err
		}, codes.FailedPrecondition},
		{"PodSandboxStats of a missing sandbox", func(ctx context.Context) error {
			_, err := rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: missing})
			return err
		}, codes.NotFound},
		{"PortForward to a NOTREADY sandbox", func(ctx context.Context) error {
			_, err := rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: notReady, Port: []int32{80}})
			return err
		}, codes.FailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(tc.call(t.Context())); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// None of the refused calls changed anything.
	for id, want := range map[string]runtimeapi.ContainerState{
		created: runtimeapi.ContainerState_CONTAINER_CREATED,
		running: runtimeapi.ContainerState_CONTAINER_RUNNING,
		exited:  runtimeapi.ContainerState_CONTAINER_EXITED,
	} {
		resp, err := rt.ContainerStatus(t.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil || resp.GetStatus().GetState() != want {
			t.Errorf("container %s: %v, %v; want %v", id, resp.GetStatus().GetState(), err, want)
		}
	}
	if resp, err := rt.ContainerStatus(t.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: exited}); err != nil ||
		resp.GetStatus().GetExitCode() != 3 || resp.GetStatus().GetReason() != lifecycle.ReasonError {
		t.Errorf("exited container: %v, %v; want exit code 3, reason Error", resp.GetStatus(), err)
	}
}

// TestContractCreateWhileSandboxStops: while a stop of the sandbox is in
// flight the sandbox is still READY, and a new container in it is refused
// (FailedPrecondition).
func TestContractCreateWhileSandboxStops(t *testing.T) {
	tasks := newFakeTasks()
	env := newContractEnv(t, tasks, nil)
	pod := env.runPod(t, "stopping")
	killing, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	tasks.onKill = func(ft *fakeTask) {
		if ft.id == pod {
			once.Do(func() { close(killing) })
			<-release
		}
	}
	stopped := make(chan error, 1)
	go func() {
		_, err := env.rt.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod})
		stopped <- err
	}()
	<-killing
	resp, err := env.rt.PodSandboxStatus(t.Context(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil || resp.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("sandbox during its stop: %v, %v; want READY", resp.GetStatus().GetState(), err)
	}
	_, err = env.rt.CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: containerConfig("late")})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("CreateContainer while the sandbox stops: %v, want FailedPrecondition", err)
	}
	close(release)
	// The stop's own outcome is not the point here: without root it
	// cannot unmount the pod's /dev/shm dir.
	<-stopped
}

// TestContractExitBeforeStartReturns: a container whose process exits
// before StartContainer returns has its exit recorded once: StartContainer
// succeeds, the container is EXITED with the exit's code, a repeated exit
// changes nothing, and no write of its record after the first exit
// changes the exit.
func TestContractExitBeforeStartReturns(t *testing.T) {
	tasks := newFakeTasks()
	env := newContractEnv(t, tasks, nil)
	pod := env.runPod(t, "quick")
	id := env.createContainer(t, pod, "quick")
	// sentinel's exit, handled after every event before it, tells when the
	// event loop is past the repeated exit.
	sentinel := env.createContainer(t, pod, "sentinel")
	env.startContainer(t, sentinel)
	tasks.onStart = func(ctx context.Context, ft *fakeTask) error {
		if ft.id != id {
			return nil
		}
		ft.exitWith(7)
		waitUntil(t, "the exit recorded while the start is in flight", func() bool {
			c, err := env.s.containers.Get(id)
			return err == nil && c.Status().State() == runtimeapi.ContainerState_CONTAINER_EXITED
		})
		// The same task's exit again, as a restarted event stream might
		// deliver it, with another code.
		tasks.publish(runtime.Event{Type: runtime.EventTaskExit, Namespace: taskNamespace, ID: id, Exit: &runtime.Exit{Status: 9, ExitedAt: time.Now()}})
		return nil
	}
	env.startContainer(t, id)

	resp, err := env.rt.ContainerStatus(t.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.GetStatus()
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 7 || st.GetReason() != lifecycle.ReasonError ||
		st.GetStartedAt() == 0 || st.GetFinishedAt() == 0 {
		t.Fatalf("status %v; want EXITED with exit code 7 and both times", st)
	}
	env.exitTask(t, sentinel, 0)
	var exits int
	var last containerStatus
	for _, w := range env.store.containerWrites(id) {
		if w.FinishedAt != last.FinishedAt || w.ExitCode != last.ExitCode {
			exits++
		}
		last = w
	}
	if exits != 1 || last.ExitCode != 7 {
		t.Fatalf("the exit was written %d times (last %+v); want once, code 7", exits, last)
	}
	if resp, err := env.rt.ContainerStatus(t.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: id}); err != nil || resp.GetStatus().GetExitCode() != 7 {
		t.Fatalf("after the repeated exit: %v, %v", resp.GetStatus(), err)
	}
}

// TestContractRunPodSandboxRetryGetsFirstResult: the kubelet gives up on a
// slow RunPodSandbox and retries with the same config; the retry waits for
// the first call and answers with its sandbox: one sandbox, one pause.
func TestContractRunPodSandboxRetryGetsFirstResult(t *testing.T) {
	tasks := newFakeTasks()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	tasks.onCreate = func(ctx context.Context, id string) error {
		once.Do(func() {
			close(entered)
			<-release // slower than the kubelet's patience
		})
		return nil
	}
	env := newContractEnv(t, tasks, nil)
	req := &runtimeapi.RunPodSandboxRequest{Config: podConfig("slow")}

	firstCtx, giveUp := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := env.rt.RunPodSandbox(firstCtx, req)
		first <- err
	}()
	<-entered
	giveUp() // the kubelet's timeout
	if err := <-first; status.Code(err) != codes.Canceled {
		t.Fatalf("first call: %v, want Canceled", err)
	}
	type result struct {
		id  string
		err error
	}
	retry := make(chan result, 1)
	go func() {
		resp, err := env.rt.RunPodSandbox(t.Context(), req)
		retry <- result{resp.GetPodSandboxId(), err}
	}()
	select {
	case r := <-retry:
		t.Fatalf("the retry returned (%q, %v) while the first call was still in flight", r.id, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	r := <-retry
	if r.err != nil {
		t.Fatalf("retry: %v", r.err)
	}
	if created := tasks.createdIDs(); len(created) != 1 || created[0] != r.id {
		t.Fatalf("pause tasks created %v; want one, of the retry's answer %s", created, r.id)
	}
	list, err := env.rt.ListPodSandbox(t.Context(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(list.GetItems()) != 1 || list.GetItems()[0].GetId() != r.id ||
		list.GetItems()[0].GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("sandboxes %v, %v; want the one READY sandbox %s", list.GetItems(), err, r.id)
	}
}

// TestContractRestoreOldRecords: records written before the `unknown`
// field was dropped still load. The field is ignored and the state comes
// from the live task: none is EXITED with reason Unknown and exit code
// 255, a live one stays RUNNING.
func TestContractRestoreOldRecords(t *testing.T) {
	tasks := newFakeTasks()
	const lost, alive = "c-lost-0000000000000000000000000000000000000000000000000000000001", "c-alive-000000000000000000000000000000000000000000000000000000002"
	if _, err := tasks.Create(t.Context(), taskNamespace, alive, runtime.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	env := newContractEnv(t, tasks, func(st *store.Store) {
		for _, id := range []string{lost, alive} {
			putOldContainerRecord(t, st, id)
		}
	})
	for _, tc := range []struct {
		id     string
		state  runtimeapi.ContainerState
		code   int32
		reason string
	}{
		{lost, runtimeapi.ContainerState_CONTAINER_EXITED, lifecycle.LostExitCode, lifecycle.ReasonUnknown},
		{alive, runtimeapi.ContainerState_CONTAINER_RUNNING, 0, ""},
	} {
		resp, err := env.rt.ContainerStatus(t.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: tc.id})
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		st := resp.GetStatus()
		if st.GetState() != tc.state || st.GetExitCode() != tc.code || st.GetReason() != tc.reason || st.GetStartedAt() != 100 {
			t.Errorf("%s: %v; want %v, exit code %d, reason %q", tc.id, st, tc.state, tc.code, tc.reason)
		}
	}
}

// putOldContainerRecord writes a container record as a daemon that still
// had the `unknown` status field wrote it (with the field set, which no
// daemon ever did).
func putOldContainerRecord(t *testing.T, st *store.Store, id string) {
	t.Helper()
	raw, err := proto.Marshal(containerConfig("old"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := json.Marshal(map[string]any{
		"id": id, "name": "old_0_" + id, "sandboxID": "gone", "configDigest": "d", "config": raw,
		"imageRef": busyboxTag, "imageID": busyboxID, "imageName": busyboxTag, "uid": 0, "gid": 0,
		"createdAt": time.Unix(50, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := json.RawMessage(`{"meta":` + string(meta) + `,"status":{"pid":42,"startedAt":100,"exitCode":0,"unknown":true}}`)
	if err := st.Put(t.Context(), store.KindContainers, id, rec); err != nil {
		t.Fatal(err)
	}
}
