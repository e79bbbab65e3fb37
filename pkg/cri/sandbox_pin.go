package cri

import (
	"context"
	"fmt"
	"os"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/network"
)

// A pod whose containers share no PID and no user namespace needs no pause
// process (spec.NeedsPause): the kubelet's default, PID mode CONTAINER or
// NODE. Its network namespace is pinned as for every pod; its IPC and UTS
// namespaces are pinned the same way, next to it (<netns_dir>/<id>.ipc,
// <id>.uts), with the pod's
// hostname and sysctls set in them; containers join the files by path. No
// task, no shim, no pause: what the pause cost a pod (its shim and its
// start) is gone. CRI-O does the same (drop_infra_ctr, pinns).
//
// Such a sandbox is READY from RunPodSandbox until StopPodSandbox, or
// until a restart finds its pinned namespaces or its sandbox dir gone (a
// reboot: the state dir is a tmpfs).

// runPinnedSandbox finishes RunPodSandbox for a pod without a pause: it
// checks the config as the pause's spec would, pins the namespaces, tells
// NRI and persists the record.
func (s *Service) runPinnedSandbox(ctx context.Context, undo *rollback, meta sandboxMeta) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := meta.config
	meta.NoPause, meta.PauseImage = true, ""
	// The pause's spec is built (and thrown away) so that a config is
	// refused for the same reasons, with the same messages, either way.
	if _, err := spec.SandboxSpec(meta.ID, cfg, spec.SandboxInput{NetNSPath: meta.NetNSPath, Args: pauseArgs, Rootfs: s.pauseRootfs()},
		spec.WithConfig(s.cfg.Containers), spec.WithOOMScoreAdjFloor(s.oomFloor), spec.WithCapabilityBound(s.ownCaps)); err != nil {
		return nil, err
	}
	if err := s.pinSandboxNamespaces(undo, &meta); err != nil {
		return nil, err
	}
	unblockNRI, err := s.nriRunPodSandbox(ctx, undo, meta, 0)
	if err != nil {
		return nil, err
	}
	defer unblockNRI()
	sb, err := s.persistSandbox(ctx, undo, meta, sandboxStatus{})
	if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Ran pod sandbox without a pause", "ips", meta.IPs, "runtimeHandler", meta.RuntimeHandler)
	s.publishSandboxEvent(ctx, sb, evCreated, evStarted)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: meta.ID}, nil
}

// pinSandboxNamespaces pins the pod's IPC namespace (unless it uses the
// host's) and UTS namespace with its hostname (unless on the host
// network), and writes the pod's sysctls into them and its netns, which
// CNI has set up by now (a sysctl may name the pod's interface).
func (s *Service) pinSandboxNamespaces(undo *rollback, meta *sandboxMeta) error {
	cfg := meta.config
	nsOpts := nsOptions(cfg)
	sysctls, err := spec.Sysctls(cfg.GetLinux().GetSysctls(), nsOpts)
	if err != nil {
		return err
	}
	hostname, err := sandboxHostname(cfg)
	if err != nil {
		return err
	}
	undo.add("remove pinned namespaces", func(context.Context) error { return network.RemoveNamespaces(s.netnsDir, meta.ID) })
	ns, err := network.PinNamespaces(s.netnsDir, meta.ID, network.PinOptions{
		IPC: !hostIPC(cfg), UTS: !hostNetwork(cfg), Hostname: hostname,
		NetNS: meta.NetNSPath, Sysctls: sysctls,
	})
	if err != nil {
		return fmt.Errorf("pin the pod's namespaces: %w", err)
	}
	meta.IPCNSPath, meta.UTSNSPath = ns.IPC, ns.UTS
	return nil
}

// pinnedSandboxAlive reports whether what keeps a pod without a pause
// ready survived: its sandbox dir and every namespace it pinned. A reboot
// (or anything else that emptied the state dir) takes them.
func (s *Service) pinnedSandboxAlive(sb *sandbox) bool {
	if _, err := os.Stat(s.sandboxDir(sb.Meta.ID)); err != nil {
		return false
	}
	return network.NamespacesPinned(sb.Meta.NetNSPath, sb.Meta.IPCNSPath, sb.Meta.UTSNSPath)
}
