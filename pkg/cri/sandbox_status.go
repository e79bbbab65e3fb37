package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// PodSandboxStatus reports a sandbox's state, network and namespaces, the
// statuses of its containers (for the kubelet's evented PLEG) and, when
// verbose, an "info" JSON document as containerd does.
func (s *Service) PodSandboxStatus(ctx context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.getSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st := sb.Status()
	resp := &runtimeapi.PodSandboxStatusResponse{
		Status:    toCRISandboxStatus(sb.Meta, st),
		Timestamp: time.Now().UnixNano(),
	}
	for _, c := range s.containersOf(sb.Meta.ID) {
		resp.ContainersStatuses = append(resp.ContainersStatuses, toCRIContainerStatus(c.Meta, c.Status()))
	}
	if r.GetVerbose() {
		info, err := s.sandboxInfo(sb.Meta, st)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": info}
	}
	return resp, nil
}

// toCRISandboxStatus converts a sandbox's record to its CRI status.
func toCRISandboxStatus(m sandboxMeta, st sandboxStatus) *runtimeapi.PodSandboxStatus {
	cfg := m.config
	out := &runtimeapi.PodSandboxStatus{
		Id:             m.ID,
		Metadata:       cfg.GetMetadata(),
		State:          st.State(),
		CreatedAt:      m.CreatedAt.UnixNano(),
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
		Linux:          &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: nsOptions(cfg)}},
		Labels:         cfg.GetLabels(),
		Annotations:    cfg.GetAnnotations(),
		RuntimeHandler: m.RuntimeHandler,
	}
	// The network is reported while it is up: a stopped sandbox's IP may
	// already belong to another pod.
	if len(m.IPs) > 0 && !st.NetworkDown {
		out.Network.Ip = m.IPs[0]
		for _, ip := range m.IPs[1:] {
			out.Network.AdditionalIps = append(out.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return out
}

// sandboxInfo is the verbose "info" of a sandbox, shaped like containerd's
// so tools that read it (crictl inspectp) find the usual keys.
func (s *Service) sandboxInfo(m sandboxMeta, st sandboxStatus) (string, error) {
	cfg, err := protojson.Marshal(m.config)
	if err != nil {
		return "", fmt.Errorf("encode sandbox config: %w: %w", err, errdefs.ErrInternal)
	}
	processStatus := "stopped"
	if m.NoPause {
		processStatus = "none" // no pause: the pinned namespaces hold the pod
	} else if t, err := s.tasks.Get(taskNamespace, m.ID); err == nil {
		select {
		case <-t.Exited():
		default:
			processStatus = "running"
		}
	}
	rtOpts, _ := s.runtimeOpts(m.RuntimeHandler)
	info := struct {
		Pid                int             `json:"pid"`
		ProcessStatus      string          `json:"processStatus"`
		NetNamespaceClosed bool            `json:"netNamespaceClosed"`
		NetNSPath          string          `json:"netnsPath,omitempty"`
		IPCNSPath          string          `json:"ipcnsPath,omitempty"`
		UTSNSPath          string          `json:"utsnsPath,omitempty"`
		RuntimeHandler     string          `json:"runtimeHandler"`
		RuntimeType        string          `json:"runtimeType"`
		SandboxDir         string          `json:"sandboxDir"`
		Config             json.RawMessage `json:"config"`
	}{
		Pid:                st.Pid,
		ProcessStatus:      processStatus,
		NetNamespaceClosed: st.NetworkDown,
		NetNSPath:          m.NetNSPath,
		IPCNSPath:          m.IPCNSPath,
		UTSNSPath:          m.UTSNSPath,
		RuntimeHandler:     m.RuntimeHandler,
		RuntimeType:        rtOpts.Binary,
		SandboxDir:         s.sandboxDir(m.ID),
		Config:             cfg,
	}
	out, err := json.Marshal(info)
	if err != nil {
		return "", fmt.Errorf("encode sandbox info: %w: %w", err, errdefs.ErrInternal)
	}
	return string(out), nil
}
