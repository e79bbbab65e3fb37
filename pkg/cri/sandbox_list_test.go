package cri

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMatchSandbox(t *testing.T) {
	m := sandboxMeta{ID: "abcdef0123", config: &runtimeapi.PodSandboxConfig{Labels: map[string]string{"app": "web", "tier": "front"}}}
	ready, notReady := sandboxStatus{}, sandboxStatus{StoppedAt: 1}
	state := func(s runtimeapi.PodSandboxState) *runtimeapi.PodSandboxStateValue {
		return &runtimeapi.PodSandboxStateValue{State: s}
	}
	for _, tc := range []struct {
		name string
		f    *runtimeapi.PodSandboxFilter
		st   sandboxStatus
		want bool
	}{
		{"nil filter", nil, ready, true},
		{"empty filter", &runtimeapi.PodSandboxFilter{}, ready, true},
		{"full id", &runtimeapi.PodSandboxFilter{Id: "abcdef0123"}, ready, true},
		{"id prefix", &runtimeapi.PodSandboxFilter{Id: "abc"}, ready, true},
		{"other id", &runtimeapi.PodSandboxFilter{Id: "abd"}, ready, false},
		{"ready", &runtimeapi.PodSandboxFilter{State: state(runtimeapi.PodSandboxState_SANDBOX_READY)}, ready, true},
		{"ready, is not", &runtimeapi.PodSandboxFilter{State: state(runtimeapi.PodSandboxState_SANDBOX_READY)}, notReady, false},
		{"notready", &runtimeapi.PodSandboxFilter{State: state(runtimeapi.PodSandboxState_SANDBOX_NOTREADY)}, notReady, true},
		{"label", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}}, ready, true},
		{"labels", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web", "tier": "front"}}, ready, true},
		{"label mismatch", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "db"}}, ready, false},
		{"label absent", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"zone": "a"}}, ready, false},
		{"all at once", &runtimeapi.PodSandboxFilter{Id: "abc", State: state(runtimeapi.PodSandboxState_SANDBOX_READY), LabelSelector: map[string]string{"app": "web"}}, ready, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchSandbox(tc.f, m, tc.st); got != tc.want {
				t.Fatalf("matchSandbox = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestToCRISandboxStatus(t *testing.T) {
	created := time.Unix(100, 5)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:    &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u", Attempt: 2},
		Labels:      map[string]string{"a": "b"},
		Annotations: map[string]string{"c": "d"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
	m := sandboxMeta{ID: "id1", RuntimeHandler: "runc", IPs: []string{"10.1.0.2", "fd00::2"}, CreatedAt: created, config: cfg}
	for _, tc := range []struct {
		name      string
		st        sandboxStatus
		wantState runtimeapi.PodSandboxState
		wantIP    string
		wantMore  int
	}{
		{"ready", sandboxStatus{Pid: 9}, runtimeapi.PodSandboxState_SANDBOX_READY, "10.1.0.2", 1},
		{"pause exited, network up", sandboxStatus{StoppedAt: 1}, runtimeapi.PodSandboxState_SANDBOX_NOTREADY, "10.1.0.2", 1},
		{"stopped", sandboxStatus{StoppedAt: 1, NetworkDown: true}, runtimeapi.PodSandboxState_SANDBOX_NOTREADY, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toCRISandboxStatus(m, tc.st)
			if got.GetId() != "id1" || got.GetState() != tc.wantState || got.GetCreatedAt() != created.UnixNano() ||
				got.GetMetadata().GetAttempt() != 2 || got.GetRuntimeHandler() != "runc" ||
				got.GetLabels()["a"] != "b" || got.GetAnnotations()["c"] != "d" ||
				got.GetLinux().GetNamespaces().GetOptions().GetPid() != runtimeapi.NamespaceMode_CONTAINER {
				t.Fatalf("status = %v", got)
			}
			if got.GetNetwork().GetIp() != tc.wantIP || len(got.GetNetwork().GetAdditionalIps()) != tc.wantMore {
				t.Fatalf("network = %v, want ip %q and %d more", got.GetNetwork(), tc.wantIP, tc.wantMore)
			}
		})
	}
}
