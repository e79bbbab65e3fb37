package cri

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/lifecycle"
	"github.com/cri-runtime/cri-runtime/pkg/nri"
)

func TestNRIContainer(t *testing.T) {
	meta := containerMeta{
		ID: "c1", Name: "app_0_pod_ns_uid_0", SandboxID: "p1", CreatedAt: time.Unix(10, 0),
		config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Labels:   map[string]string{"l": "1"}, Annotations: map[string]string{"a": "2"},
		},
	}
	tests := []struct {
		name      string
		st        containerStatus
		wantState nri.ContainerState
		started   bool
	}{
		{"created", containerStatus{}, nri.StateCreated, false},
		{"running", containerStatus{Pid: 42, StartedAt: 20}, nri.StateRunning, true},
		{"exited", containerStatus{StartedAt: 20, FinishedAt: 30, ExitCode: 1, Reason: lifecycle.ReasonError}, nri.StateStopped, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := nriContainer(meta, tc.st, nil)
			// Plugins (and critest) see the kubelet's name, not the reserved one.
			if c.ID != "c1" || c.PodSandboxID != "p1" || c.Name != "app" || c.Labels["l"] != "1" || c.Annotations["a"] != "2" {
				t.Errorf("identity = %+v", c)
			}
			if c.State != tc.wantState || c.StartedAt.IsZero() == tc.started || c.ExitCode != tc.st.ExitCode || c.Pid != uint32(tc.st.Pid) {
				t.Errorf("status = %+v", c)
			}
		})
	}
}

func TestNRIPod(t *testing.T) {
	meta := sandboxMeta{
		ID: "p1", RuntimeHandler: "runc", NetNSPath: "/run/netns/p1", IPs: []string{"10.88.0.2"},
		config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u-1"},
			Labels:   map[string]string{"app": "web"},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/pod-u-1"},
		},
	}
	p := nriPod(meta, 7)
	want := nri.PodSandbox{ID: "p1", Name: "web", UID: "u-1", Namespace: "default", RuntimeHandler: "runc",
		CgroupParent: "/kubepods/pod-u-1", NetNSPath: "/run/netns/p1", Pid: 7}
	if p.ID != want.ID || p.Name != want.Name || p.UID != want.UID || p.Namespace != want.Namespace || p.RuntimeHandler != want.RuntimeHandler ||
		p.CgroupParent != want.CgroupParent || p.NetNSPath != want.NetNSPath || p.Pid != want.Pid || p.Labels["app"] != "web" || p.IPs[0] != "10.88.0.2" {
		t.Errorf("nriPod = %+v", p)
	}
	if p := nriPod(meta, -1); p.Pid != 0 {
		t.Errorf("a negative pid became %d", p.Pid)
	}
}
