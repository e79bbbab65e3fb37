package network

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// rebuildInterface prepares a DEL whose network namespace is gone.
//
// CNI allows DEL without a netns, but the bridge and ptp plugins (Debian's
// 1.1.1 and upstream alike, containernetworking/plugins#810) then release
// the IP and skip the teardown of their ipMasq chain: they learn the
// addresses to unmasquerade from the interface inside the namespace. So,
// from the result cached at ADD, rebuild that interface in a scratch
// namespace: a veth named rt.IfName carrying the same addresses. The
// plugins find it, delete it, and remove the rules for exactly those
// addresses. The caller removes the returned namespace after DEL; nil, nil
// means there was nothing to rebuild.
//
// It uses iproute2's ip(8), run inside the scratch namespace. Without it
// the DEL still runs with no netns (best effort, as before).
func (m *Manager) rebuildInterface(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (_ *NetNS, retErr error) {
	raw, err := m.cni.GetNetworkListCachedResult(list, rt)
	if err != nil || raw == nil {
		return nil, err
	}
	res, err := types100.NewResultFromResult(raw)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, ipc := range res.IPs {
		if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(res.Interfaces) {
			continue
		}
		iface := res.Interfaces[*ipc.Interface]
		if iface.Sandbox != "" && iface.Name == rt.IfName {
			addrs = append(addrs, ipc.Address.String())
		}
	}
	if len(addrs) == 0 {
		return nil, nil
	}
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", rt.IfName, err)
	}
	ns, err := NewNetNS(m.cfg.NetNSDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = ns.Remove()
		}
	}()
	// exec from the locked thread that is inside ns: the child inherits
	// the thread's network namespace.
	err = ns.Do(func() error {
		run := func(args ...string) error {
			out, err := exec.CommandContext(ctx, ipBin, args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("ip %v: %w: %s", args, err, out)
			}
			return nil
		}
		if err := run("link", "add", rt.IfName, "type", "veth", "peer", "name", "crt-del-peer"); err != nil {
			return err
		}
		for _, a := range addrs {
			if err := run("addr", "add", a, "dev", rt.IfName); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild %s for DEL: %w", rt.IfName, err)
	}
	return ns, nil
}
