package network

import (
	"fmt"
	"net/netip"

	cnitypes "github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// Result is what ADD gave the sandbox.
type Result struct {
	// IPs are the addresses of the interfaces inside the namespace: the
	// first IPv4 address first, then the others in plugin order.
	IPs []netip.Addr
	// Interfaces are the interfaces inside the namespace.
	Interfaces []Interface
}

// Interface is one interface inside the namespace.
type Interface struct {
	Name string
	MAC  string
}

// PrimaryIP is the first address ("" when none): the CRI PodIP.
func (r *Result) PrimaryIP() string {
	if r == nil || len(r.IPs) == 0 {
		return ""
	}
	return r.IPs[0].String()
}

// convertResult keeps the interfaces inside the namespace and their IPs.
func convertResult(raw cnitypes.Result) (*Result, error) {
	r, err := types100.NewResultFromResult(raw)
	if err != nil {
		return nil, fmt.Errorf("convert cni result: %w", err)
	}
	res := &Result{}
	for _, iface := range r.Interfaces {
		if iface.Sandbox != "" {
			res.Interfaces = append(res.Interfaces, Interface{Name: iface.Name, MAC: iface.Mac})
		}
	}
	for _, ipc := range r.IPs {
		if ipc.Interface != nil {
			i := *ipc.Interface
			if i < 0 || i >= len(r.Interfaces) || r.Interfaces[i].Sandbox == "" {
				continue // a host-side address (e.g. the bridge's gateway)
			}
		}
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok {
			continue
		}
		res.IPs = append(res.IPs, a.Unmap())
	}
	sortIPv4First(res.IPs)
	return res, nil
}

// sortIPv4First moves the first IPv4 address to the front, keeping the
// order of the others (the CRI's PodIP is IPs[0]).
func sortIPv4First(ips []netip.Addr) {
	for i, a := range ips {
		if a.Is4() {
			copy(ips[1:i+1], ips[0:i])
			ips[0] = a
			return
		}
	}
}
