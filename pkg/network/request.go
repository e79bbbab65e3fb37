package network

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// SetupRequest describes one sandbox's attachment. Setup, Teardown and
// Status take the same request; on Teardown and Status the args cached at
// ADD win over the request's.
type SetupRequest struct {
	// ID is the sandbox ID, CNI's container ID.
	ID string
	// NetNS is the path of the pinned network namespace. Teardown accepts
	// a path that no longer exists (or "").
	NetNS string
	// Name, Namespace and UID are the pod's metadata (K8S_POD_* args).
	Name      string
	Namespace string
	UID       string

	PortMappings []PortMapping
	Bandwidth    *Bandwidth
	DNS          *DNS
}

// PortMapping is a hostPort: traffic to HostIP:HostPort (any local address
// when HostIP is empty) is forwarded to ContainerPort in the namespace.
type PortMapping struct {
	ContainerPort int32
	HostPort      int32
	Protocol      string // "tcp", "udp" or "sctp"; any case; "" means tcp
	HostIP        string
}

// Bandwidth limits, in bits per second and bits, for the bandwidth plugin.
type Bandwidth struct {
	IngressRate  uint64
	IngressBurst uint64
	EgressRate   uint64
	EgressBurst  uint64
}

// DNS is the CRI DNSConfig, handed to plugins with the "dns" capability.
type DNS struct {
	Servers  []string
	Searches []string
	Options  []string
}

func (req SetupRequest) validate(needNetNS bool) error {
	if req.ID == "" {
		return fmt.Errorf("sandbox id is empty: %w", errdefs.ErrInvalidArgument)
	}
	if needNetNS && req.NetNS == "" {
		return fmt.Errorf("sandbox %s: netns path is empty: %w", req.ID, errdefs.ErrInvalidArgument)
	}
	for i, pm := range req.PortMappings {
		if pm.ContainerPort <= 0 || pm.ContainerPort > 65535 || pm.HostPort < 0 || pm.HostPort > 65535 {
			return fmt.Errorf("sandbox %s: port mapping %d: port out of range: %w", req.ID, i, errdefs.ErrInvalidArgument)
		}
		switch strings.ToLower(pm.Protocol) {
		case "", "tcp", "udp", "sctp":
		default:
			return fmt.Errorf("sandbox %s: port mapping %d: protocol %q: %w", req.ID, i, pm.Protocol, errdefs.ErrInvalidArgument)
		}
		if pm.HostIP != "" {
			if _, err := netip.ParseAddr(pm.HostIP); err != nil {
				return fmt.Errorf("sandbox %s: port mapping %d: host ip %q: %w", req.ID, i, pm.HostIP, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

// runtimeConf builds libcni's per-call arguments.
func (m *Manager) runtimeConf(req SetupRequest, netns string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: req.ID,
		NetNS:       netns,
		IfName:      m.ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", req.Namespace},
			{"K8S_POD_NAME", req.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", req.ID},
			{"K8S_POD_UID", req.UID},
		},
		CapabilityArgs: map[string]interface{}{},
	}
	// Always present, even empty, like the kubelet's dockershim and
	// containerd: portmap then knows there is nothing to map.
	pms := make([]map[string]interface{}, 0, len(req.PortMappings))
	for _, pm := range req.PortMappings {
		if pm.HostPort <= 0 {
			continue // no hostPort: nothing for the host to forward
		}
		proto := strings.ToLower(pm.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		pms = append(pms, map[string]interface{}{
			"hostPort":      pm.HostPort,
			"containerPort": pm.ContainerPort,
			"protocol":      proto,
			"hostIP":        pm.HostIP,
		})
	}
	rt.CapabilityArgs["portMappings"] = pms
	if b := req.Bandwidth; b != nil {
		rt.CapabilityArgs["bandwidth"] = map[string]interface{}{
			"ingressRate":  b.IngressRate,
			"ingressBurst": b.IngressBurst,
			"egressRate":   b.EgressRate,
			"egressBurst":  b.EgressBurst,
		}
	}
	if d := req.DNS; d != nil {
		rt.CapabilityArgs["dns"] = map[string]interface{}{
			"servers":  d.Servers,
			"searches": d.Searches,
			"options":  d.Options,
		}
	}
	m.mu.Lock()
	cidr := m.podCIDR
	m.mu.Unlock()
	if cidr != "" {
		var ranges [][]map[string]interface{}
		for _, c := range strings.Split(cidr, ",") {
			ranges = append(ranges, []map[string]interface{}{{"subnet": strings.TrimSpace(c)}})
		}
		rt.CapabilityArgs["ipRanges"] = ranges
	}
	return rt
}
