package cri

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/host"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/network"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// undoTimeout bounds the rollback of a failed create and the teardown of a
// stop; both run detached from the request's context.
const undoTimeout = 2 * time.Minute

// RunPodSandbox creates and starts a pod sandbox: its dir with hostname,
// hosts and resolv.conf, its /dev/shm, its network namespace and CNI
// network, and either the pause task that holds its namespaces or, for a
// pod that needs none (no shared PID or user namespace), its IPC and UTS
// namespaces pinned as files (sandbox_pin.go). A kubelet retry
// with the same config gets the id of the create in flight; any failure
// undoes every step.
func (s *Service) RunPodSandbox(ctx context.Context, r *runtimeapi.RunPodSandboxRequest) (_ *runtimeapi.RunPodSandboxResponse, retErr error) {
	cfg := r.GetConfig()
	if err := validateSandboxConfig(cfg); err != nil {
		return nil, err
	}
	rtOpts, err := s.runtimeOpts(r.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	if err := s.checkSandboxFeatures(r.GetRuntimeHandler(), cfg); err != nil {
		return nil, err
	}
	hostNet := hostNetwork(cfg)
	if !hostNet {
		if err := s.network.Ready(); err != nil {
			return nil, fmt.Errorf("pod network is not ready: %w", errdefs.WithClass(err, errdefs.ErrFailedPrecondition))
		}
	}
	digest, raw, err := configDigest(cfg)
	if err != nil {
		return nil, err
	}
	md := cfg.GetMetadata()
	name := fmt.Sprintf("%s_%s_%s_%d", md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt())
	id := newID()
	res, holder, err := s.sandboxNames.Reserve(ctx, name, id, digest)
	if err != nil {
		return nil, err
	}
	if holder != "" {
		klog.FromContext(ctx).V(4).Info("Returned the pod sandbox of an earlier identical request", "podSandboxID", holder)
		return &runtimeapi.RunPodSandboxResponse{PodSandboxId: holder}, nil
	}
	defer func() { res.Done(retErr) }() // a failure releases the name

	logger := klog.LoggerWithValues(klog.FromContext(ctx), "podSandboxID", id)
	ctx = klog.NewContext(ctx, logger)
	var undo rollback
	defer func() {
		if retErr != nil {
			undo.run(ctx, logger)
		}
	}()
	meta := sandboxMeta{
		ID: id, Name: name, ConfigDigest: digest, RawConfig: raw,
		RuntimeHandler: r.GetRuntimeHandler(), CreatedAt: time.Now(), config: cfg,
		PauseImage: s.cfg.SandboxImage,
	}
	if err := s.prepareSandboxDir(&undo, id, cfg); err != nil {
		return nil, err
	}
	if !hostNet {
		if meta.NetNSPath, meta.IPs, err = s.setupPodNetwork(ctx, &undo, id, cfg); err != nil {
			return nil, err
		}
	}
	if err := s.writeSandboxFiles(id, cfg, meta.IPs); err != nil {
		return nil, err
	}
	if !spec.NeedsPause(cfg) {
		return s.runPinnedSandbox(ctx, &undo, meta)
	}
	t, err := s.startPauseTask(ctx, &undo, meta, rtOpts)
	if err != nil {
		return nil, err
	}
	// NRI plugins see the sandbox before anyone else can (nri.go).
	unblockNRI, err := s.nriRunPodSandbox(ctx, &undo, meta, t.Pid())
	if err != nil {
		return nil, err
	}
	defer unblockNRI()
	sb, err := s.persistSandbox(ctx, &undo, meta, sandboxStatus{Pid: t.Pid()})
	if err != nil {
		return nil, err
	}
	// The pause may have died before the sandbox was in the index, where
	// the event handler would have found it.
	select {
	case <-t.Exited():
		if e, err := t.Wait(ctx); err == nil {
			_ = sandboxStopped(ctx, sb, exitOf(e).At)
		}
	default:
	}
	logger.V(2).Info("Ran pod sandbox", "pid", t.Pid(), "ips", meta.IPs, "runtimeHandler", r.GetRuntimeHandler())
	s.publishSandboxEvent(ctx, sb, evCreated, evStarted)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// validateSandboxConfig checks what the facade relies on; errors are
// InvalidArgument naming the field.
func validateSandboxConfig(cfg *runtimeapi.PodSandboxConfig) error {
	if cfg == nil {
		return fmt.Errorf("config is missing: %w", errdefs.ErrInvalidArgument)
	}
	md := cfg.GetMetadata()
	for _, f := range []struct{ field, v string }{
		{"config.metadata.name", md.GetName()},
		{"config.metadata.namespace", md.GetNamespace()},
		{"config.metadata.uid", md.GetUid()},
	} {
		if err := validateName(f.field, f.v); err != nil {
			return err
		}
	}
	if d := cfg.GetLogDirectory(); d != "" && (!filepath.IsAbs(d) || slices.Contains(strings.Split(d, "/"), "..") || strings.ContainsRune(d, 0)) {
		return fmt.Errorf("config.log_directory %q must be an absolute path without \"..\": %w", d, errdefs.ErrInvalidArgument)
	}
	if h := cfg.GetHostname(); h != "" {
		if _, err := network.Hostname(h); err != nil {
			return fmt.Errorf("config.hostname: %w", err)
		}
	}
	if dns := cfg.GetDnsConfig(); dns != nil {
		if _, err := network.ResolvConf(dns.GetServers(), dns.GetSearches(), dns.GetOptions()); err != nil {
			return fmt.Errorf("config.dns_config: %w", err)
		}
	}
	return nil
}

func nsOptions(cfg *runtimeapi.PodSandboxConfig) *runtimeapi.NamespaceOption {
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
}

func hostNetwork(cfg *runtimeapi.PodSandboxConfig) bool {
	return nsOptions(cfg).GetNetwork() == runtimeapi.NamespaceMode_NODE
}

func hostIPC(cfg *runtimeapi.PodSandboxConfig) bool {
	return nsOptions(cfg).GetIpc() == runtimeapi.NamespaceMode_NODE
}

// sandboxHostname is the pod's hostname: the configured one, or the
// node's with host network.
func sandboxHostname(cfg *runtimeapi.PodSandboxConfig) (string, error) {
	if h := cfg.GetHostname(); h != "" {
		return h, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	return h, nil
}

// prepareSandboxDir creates the sandbox dir and, unless the pod uses the
// host's IPC namespace, mounts its /dev/shm tmpfs.
func (s *Service) prepareSandboxDir(undo *rollback, id string, cfg *runtimeapi.PodSandboxConfig) error {
	// The dir holds what the pod's containers write (hosts, /dev/shm): it
	// is private to root, or to the pod's root (hostdirs.go).
	dir := s.sandboxDir(id)
	if err := host.EnsureSharedDir(s.sandboxesParentDir()); err != nil {
		return err
	}
	if err := os.Mkdir(dir, host.PrivateDirMode); err != nil {
		return fmt.Errorf("create sandbox dir: %w", err)
	}
	undo.add("remove sandbox dir", func(context.Context) error { return os.RemoveAll(dir) })
	if err := host.SetPrivateDir(dir, podRootGID(cfg)); err != nil {
		return err
	}
	if hostIPC(cfg) {
		return nil
	}
	shm := s.sandboxFile(id, sandboxShmDir)
	size := s.cfg.Containers.ShmSize
	if size == "" {
		size = "64m"
	}
	if err := mountShm(shm, size); err != nil {
		return err
	}
	undo.add("unmount shm", func(context.Context) error { return unmountShm(shm) })
	return nil
}

// setupPodNetwork pins the pod's network namespace and runs CNI ADD in it.
func (s *Service) setupPodNetwork(ctx context.Context, undo *rollback, id string, cfg *runtimeapi.PodSandboxConfig) (string, []string, error) {
	ns, err := network.NewNamedNetNS(s.netnsDir, id)
	if err != nil {
		return "", nil, fmt.Errorf("create network namespace: %w", err)
	}
	undo.add("remove netns", func(context.Context) error { return ns.Remove() })
	req := setupRequest(id, ns.Path(), cfg)
	undo.add("tear down pod network", func(ctx context.Context) error { return s.network.Teardown(ctx, req) })
	res, err := s.network.Setup(ctx, req)
	if err != nil {
		// A plugin failure that says nothing more is the network's being
		// unavailable to this pod, not a bug of ours.
		return "", nil, fmt.Errorf("set up pod network: %w", errdefs.WithClass(err, errdefs.ErrUnavailable))
	}
	ips := make([]string, 0, len(res.IPs))
	for _, ip := range res.IPs {
		ips = append(ips, ip.String())
	}
	return ns.Path(), ips, nil
}

// setupRequest is the network's view of a sandbox; Setup and Teardown take
// the same one.
func setupRequest(id, netns string, cfg *runtimeapi.PodSandboxConfig) network.SetupRequest {
	md := cfg.GetMetadata()
	req := network.SetupRequest{ID: id, NetNS: netns, Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid()}
	for _, pm := range cfg.GetPortMappings() {
		req.PortMappings = append(req.PortMappings, network.PortMapping{
			ContainerPort: pm.GetContainerPort(),
			HostPort:      pm.GetHostPort(),
			Protocol:      pm.GetProtocol().String(),
			HostIP:        pm.GetHostIp(),
		})
	}
	if d := cfg.GetDnsConfig(); d != nil {
		req.DNS = &network.DNS{Servers: d.GetServers(), Searches: d.GetSearches(), Options: d.GetOptions()}
	}
	return req
}

// writeSandboxFiles writes the pod's hostname, hosts and resolv.conf. A
// host-network pod gets the host's /etc/hosts.
func (s *Service) writeSandboxFiles(id string, cfg *runtimeapi.PodSandboxConfig, ips []string) error {
	hostname, err := sandboxHostname(cfg)
	if err != nil {
		return err
	}
	if err := network.WriteHostname(s.sandboxFile(id, sandboxHostnameFile), hostname); err != nil {
		return fmt.Errorf("write hostname: %w", err)
	}
	var dns *network.DNS
	if d := cfg.GetDnsConfig(); d != nil {
		dns = &network.DNS{Servers: d.GetServers(), Searches: d.GetSearches(), Options: d.GetOptions()}
	}
	if err := network.WriteResolvConf(s.sandboxFile(id, sandboxResolvFile), dns, ""); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	hosts := s.sandboxFile(id, sandboxHostsFile)
	if hostNetwork(cfg) {
		data, err := os.ReadFile("/etc/hosts")
		if err != nil {
			return fmt.Errorf("read host /etc/hosts: %w", err)
		}
		return os.WriteFile(hosts, data, 0o644)
	}
	addrs := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil {
			addrs = append(addrs, a)
		}
	}
	if err := network.WriteHosts(hosts, hostname, addrs); err != nil {
		return fmt.Errorf("write hosts: %w", err)
	}
	return nil
}

// startPauseTask creates and starts the pause task in the pod's
// namespaces and cgroup parent.
func (s *Service) startPauseTask(ctx context.Context, undo *rollback, meta sandboxMeta, rtOpts runtime.RuntimeOpts) (taskHandle, error) {
	id := meta.ID
	rootfs, args, err := s.pauseRoot(ctx, undo, meta)
	if err != nil {
		return nil, err
	}
	sp, err := spec.SandboxSpec(id, meta.config, spec.SandboxInput{NetNSPath: meta.NetNSPath, Args: args, Rootfs: rootfs},
		spec.WithConfig(s.cfg.Containers), spec.WithOOMScoreAdjFloor(s.oomFloor), spec.WithCapabilityBound(s.ownCaps))
	if err != nil {
		return nil, err
	}
	t, err := s.tasks.Create(ctx, taskNamespace, id, runtime.CreateOpts{Spec: sp, Runtime: rtOpts})
	if err != nil {
		return nil, fmt.Errorf("create pause task: %w", err)
	}
	undo.add("kill and delete pause task", func(ctx context.Context) error { return s.killAndDelete(ctx, t) })
	if err := t.Start(ctx); err != nil {
		return nil, fmt.Errorf("start pause task: %w", err)
	}
	return t, nil
}

// persistSandbox writes the sandbox's record and adds it to the index.
func (s *Service) persistSandbox(ctx context.Context, undo *rollback, meta sandboxMeta, st sandboxStatus) (*sandbox, error) {
	sb := s.newSandbox(meta, st)
	if err := sb.UpdateSync(ctx, func(st sandboxStatus) (sandboxStatus, error) { return st, nil }); err != nil {
		return nil, fmt.Errorf("persist sandbox: %w", err)
	}
	undo.add("delete sandbox record", func(ctx context.Context) error { return s.deleteSandboxRecord(ctx, meta.ID) })
	if err := s.sandboxes.Add(sb); err != nil {
		return nil, err
	}
	return sb, nil
}
