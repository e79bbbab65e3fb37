package cri

import (
	"context"
	"encoding/json"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus reports a container's state, exit and config.
func (s *Service) ContainerStatus(ctx context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.getContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	st := c.Status()
	resp := &runtimeapi.ContainerStatusResponse{Status: toCRIContainerStatus(c.Meta, st)}
	if r.GetVerbose() {
		info, err := json.Marshal(containerInfo{
			SandboxID: c.Meta.SandboxID, Pid: st.Pid, ImageID: c.Meta.ImageID,
			RuntimeHandler: s.sandboxHandler(c.Meta.SandboxID), Config: c.Meta.config,
		})
		if err == nil {
			resp.Info = map[string]string{"info": string(info)}
		}
	}
	return resp, nil
}

type containerInfo struct {
	SandboxID      string                      `json:"sandboxID"`
	Pid            int                         `json:"pid"`
	ImageID        string                      `json:"imageID"`
	RuntimeHandler string                      `json:"runtimeHandler"`
	Config         *runtimeapi.ContainerConfig `json:"config"`
}

func (s *Service) sandboxHandler(id string) string {
	if sb, err := s.sandboxes.Get(id); err == nil {
		return sb.Meta.RuntimeHandler
	}
	return ""
}

// toCRIContainerStatus converts a container's record to its CRI status.
func toCRIContainerStatus(m containerMeta, st containerStatus) *runtimeapi.ContainerStatus {
	cfg := m.config
	out := &runtimeapi.ContainerStatus{
		Id:          m.ID,
		Metadata:    cfg.GetMetadata(),
		State:       st.State(),
		CreatedAt:   m.CreatedAt.UnixNano(),
		StartedAt:   st.StartedAt,
		FinishedAt:  st.FinishedAt,
		ExitCode:    st.ExitCode,
		Image:       &runtimeapi.ImageSpec{Image: m.ImageName, Annotations: cfg.GetImage().GetAnnotations(), UserSpecifiedImage: m.ImageRef},
		ImageRef:    m.ImageID,
		ImageId:     m.ImageID,
		Reason:      st.Reason,
		Message:     st.Message,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		Mounts:      statusMounts(m),
		LogPath:     m.LogPath,
		User: &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
			Uid: m.UID, Gid: m.GID, SupplementalGroups: m.Groups,
		}},
		StopSignal: cfg.GetStopSignal(),
	}
	res := cfg.GetLinux().GetResources()
	if st.Resources != "" {
		upd := &runtimeapi.LinuxContainerResources{}
		if protojson.Unmarshal([]byte(st.Resources), upd) == nil {
			res = upd
		}
	}
	if res != nil {
		out.Resources = &runtimeapi.ContainerResources{Linux: res}
	}
	return out
}

// toCRIContainer converts a container's record to its CRI list entry.
func toCRIContainer(m containerMeta, st containerStatus) *runtimeapi.Container {
	cfg := m.config
	return &runtimeapi.Container{
		Id:           m.ID,
		PodSandboxId: m.SandboxID,
		Metadata:     cfg.GetMetadata(),
		Image:        &runtimeapi.ImageSpec{Image: m.ImageName, Annotations: cfg.GetImage().GetAnnotations(), UserSpecifiedImage: m.ImageRef},
		ImageRef:     m.ImageID,
		ImageId:      m.ImageID,
		State:        st.State(),
		CreatedAt:    m.CreatedAt.UnixNano(),
		Labels:       cfg.GetLabels(),
		Annotations:  cfg.GetAnnotations(),
	}
}
