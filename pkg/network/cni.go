package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// DefaultIfName is the interface CNI creates inside the namespace.
const DefaultIfName = "eth0"

// cleanupTimeout bounds the DEL that undoes a failed ADD; it runs on a
// context detached from the (possibly cancelled) request.
const cleanupTimeout = 2 * time.Minute

// Manager runs CNI for sandboxes. It is safe for concurrent use: calls for
// different sandboxes run in parallel, calls for one sandbox are serialized.
// No Manager-wide lock is held while a plugin runs.
type Manager struct {
	cfg    Config
	ifName string
	cni    *libcni.CNIConfig
	conf   confWatcher
	locks  keyedMutex

	mu      sync.Mutex // guards podCIDR
	podCIDR string
}

// Option configures a Manager.
type Option func(*options)

type options struct {
	exec     invoke.Exec
	cacheDir string
	ifName   string
}

// WithExec replaces the plugin executor, e.g. with one that injects faults.
func WithExec(e invoke.Exec) Option { return func(o *options) { o.exec = e } }

// WithCacheDir overrides Config.CacheDir.
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithIfName overrides DefaultIfName.
func WithIfName(name string) Option { return func(o *options) { o.ifName = name } }

// New validates cfg and returns a Manager. It creates the cache directory;
// a missing or empty conf_dir is not an error (see Ready).
func New(cfg Config, opts ...Option) (*Manager, error) {
	o := options{ifName: DefaultIfName}
	for _, opt := range opts {
		opt(&o)
	}
	if o.cacheDir != "" {
		cfg.CacheDir = o.cacheDir
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.exec == nil {
		// Always set: libcni lazily assigns a default exec on first use,
		// which is a data race under concurrent calls.
		o.exec = &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("create cni cache dir: %w", err)
	}
	cfg.BinDirs = append([]string(nil), cfg.BinDirs...)
	return &Manager{
		cfg:    cfg,
		ifName: o.ifName,
		cni:    libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, o.exec),
		conf:   confWatcher{dir: cfg.ConfDir},
	}, nil
}

// Config returns the configuration the Manager runs with.
func (m *Manager) Config() Config {
	c := m.cfg
	c.BinDirs = append([]string(nil), c.BinDirs...)
	return c
}

// Ready returns nil when conf_dir holds a usable network config whose
// plugins are all installed. Otherwise the error (class
// errdefs.ErrFailedPrecondition) says why, for the CRI NetworkReady
// condition. The config is reloaded when conf_dir changes.
func (m *Manager) Ready() error {
	list, file, err := m.conf.current()
	if err != nil {
		return err
	}
	for _, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, m.cfg.BinDirs); err != nil {
			return fmt.Errorf("cni plugin %q of %s not found in %s: %w",
				p.Network.Type, file, strings.Join(m.cfg.BinDirs, ":"), errdefs.ErrFailedPrecondition)
		}
	}
	return nil
}

// NetworkName is the name of the network new sandboxes join, or "" with
// the reason when there is none.
func (m *Manager) NetworkName() (string, error) {
	list, _, err := m.conf.current()
	if err != nil {
		return "", err
	}
	return list.Name, nil
}

// SetPodCIDR records the node's pod CIDR (CRI UpdateRuntimeConfig). It is
// passed to plugins that declare the "ipRanges" capability on later ADDs.
// An empty cidr clears it.
func (m *Manager) SetPodCIDR(cidr string) error {
	if cidr != "" {
		for _, c := range strings.Split(cidr, ",") {
			if _, err := netip.ParsePrefix(strings.TrimSpace(c)); err != nil {
				return fmt.Errorf("pod cidr %q: %v: %w", cidr, err, errdefs.ErrInvalidArgument)
			}
		}
	}
	m.mu.Lock()
	m.podCIDR = cidr
	m.mu.Unlock()
	return nil
}

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

// Setup runs CNI ADD for the sandbox in req.NetNS with the current network
// config. On failure it runs DEL to undo what the plugins did before it
// returns. The config, args and result are cached (Config.CacheDir) for
// Teardown.
func (m *Manager) Setup(ctx context.Context, req SetupRequest) (_ *Result, retErr error) {
	if err := req.validate(true); err != nil {
		return nil, err
	}
	unlock := m.locks.lock(req.ID)
	defer unlock()

	list, file, err := m.conf.current()
	if err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).WithValues("podSandboxID", req.ID, "network", list.Name)
	rt := m.runtimeConf(req, req.NetNS)
	start := time.Now()
	defer func() {
		if retErr == nil {
			return
		}
		// Undo the plugins that ran, even if ctx is already cancelled.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := m.undoAdd(cctx, list, rt); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("undo cni add: %w", err))
		}
	}()
	raw, err := m.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		return nil, fmt.Errorf("cni add network %q (%s) for sandbox %s: %w", list.Name, file, req.ID, err)
	}
	res, err := convertResult(raw)
	if err != nil {
		return nil, fmt.Errorf("cni add network %q for sandbox %s: %w", list.Name, req.ID, err)
	}
	logger.V(2).Info("Set up pod network", "path", req.NetNS, "ips", res.IPs, "duration", time.Since(start))
	return res, nil
}

// Teardown runs CNI DEL for the sandbox. It is idempotent and succeeds
// when the namespace is gone (DEL then runs without a netns, which CNI
// allows: IPAM and host-side state are still released), when the network
// was only half set up, and when conf_dir no longer has the config: every
// attachment cached at ADD is deleted with the exact config and args that
// ADD used. Without a cache entry the current config is used; without
// either there is nothing to tear down.
func (m *Manager) Teardown(ctx context.Context, req SetupRequest) error {
	if err := req.validate(false); err != nil {
		return err
	}
	unlock := m.locks.lock(req.ID)
	defer unlock()
	logger := klog.FromContext(ctx).WithValues("podSandboxID", req.ID)

	netns := req.NetNS
	if netns != "" {
		if err := checkNetNS(netns); err != nil {
			logger.V(4).Info("Tearing down pod network without its netns", "path", netns, "reason", err.Error())
			netns = ""
		}
	}
	rt := m.runtimeConf(req, netns)

	atts, err := m.cni.GetCachedAttachments(req.ID)
	if err != nil {
		return fmt.Errorf("read cni cache for sandbox %s: %w", req.ID, err)
	}
	if len(atts) > 0 {
		var errs []error
		for _, att := range atts {
			list, err := libcni.ConfListFromBytes(att.Config)
			if err != nil {
				errs = append(errs, fmt.Errorf("cached cni config of network %q: %w", att.Network, err))
				continue
			}
			art := *rt
			art.IfName = att.IfName
			if att.CniArgs != nil {
				art.Args = att.CniArgs
			}
			if att.CapabilityArgs != nil {
				art.CapabilityArgs = att.CapabilityArgs
			}
			if netns == "" {
				scratch, err := m.rebuildInterface(ctx, list, &art)
				if err != nil {
					logger.V(2).Info("Could not rebuild the sandbox interface for DEL; plugins that read it (bridge ipMasq) may leave rules behind", "err", err)
				} else if scratch != nil {
					art.NetNS = scratch.Path()
					defer func() { _ = scratch.Remove() }()
				}
			}
			if err := m.cni.DelNetworkList(ctx, list, &art); err != nil {
				errs = append(errs, fmt.Errorf("cni del network %q for sandbox %s: %w", list.Name, req.ID, err))
				continue
			}
			logger.V(2).Info("Tore down pod network", "network", list.Name, "source", "cache")
		}
		return errors.Join(errs...)
	}

	list, _, err := m.conf.current()
	if err != nil {
		// Never set up through us (or the cache is gone) and no config to
		// guess with: nothing we could undo.
		logger.V(4).Info("No cached or current cni config; nothing to tear down", "reason", err.Error())
		return nil
	}
	if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("cni del network %q for sandbox %s: %w", list.Name, req.ID, err)
	}
	logger.V(2).Info("Tore down pod network", "network", list.Name, "source", "conf_dir")
	return nil
}

// Status runs CNI CHECK for the sandbox's cached attachments. It returns
// an error of class errdefs.ErrNotFound when the sandbox has none, and nil
// for networks whose config disables CHECK.
func (m *Manager) Status(ctx context.Context, req SetupRequest) error {
	if err := req.validate(true); err != nil {
		return err
	}
	unlock := m.locks.lock(req.ID)
	defer unlock()
	atts, err := m.cni.GetCachedAttachments(req.ID)
	if err != nil {
		return fmt.Errorf("read cni cache for sandbox %s: %w", req.ID, err)
	}
	if len(atts) == 0 {
		return fmt.Errorf("network of sandbox %s: %w", req.ID, errdefs.ErrNotFound)
	}
	rt := m.runtimeConf(req, req.NetNS)
	for _, att := range atts {
		list, err := libcni.ConfListFromBytes(att.Config)
		if err != nil {
			return fmt.Errorf("cached cni config of network %q: %w", att.Network, err)
		}
		art := *rt
		art.IfName = att.IfName
		if att.CniArgs != nil {
			art.Args = att.CniArgs
		}
		if att.CapabilityArgs != nil {
			art.CapabilityArgs = att.CapabilityArgs
		}
		if err := m.cni.CheckNetworkList(ctx, list, &art); err != nil {
			return fmt.Errorf("cni check network %q for sandbox %s: %w", list.Name, req.ID, err)
		}
	}
	return nil
}

// CachedResult returns the result ADD cached for the sandbox, so that the
// IPs can be reported after a daemon restart. It returns an error of class
// errdefs.ErrNotFound when there is none.
func (m *Manager) CachedResult(id string) (*Result, error) {
	if id == "" {
		return nil, fmt.Errorf("sandbox id is empty: %w", errdefs.ErrInvalidArgument)
	}
	unlock := m.locks.lock(id)
	defer unlock()
	atts, err := m.cni.GetCachedAttachments(id)
	if err != nil {
		return nil, fmt.Errorf("read cni cache for sandbox %s: %w", id, err)
	}
	res := &Result{}
	for _, att := range atts {
		list, err := libcni.ConfListFromBytes(att.Config)
		if err != nil {
			return nil, fmt.Errorf("cached cni config of network %q: %w", att.Network, err)
		}
		raw, err := m.cni.GetNetworkListCachedResult(list, &libcni.RuntimeConf{ContainerID: id, IfName: att.IfName})
		if err != nil || raw == nil {
			continue
		}
		r, err := convertResult(raw)
		if err != nil {
			return nil, err
		}
		res.IPs = append(res.IPs, r.IPs...)
		res.Interfaces = append(res.Interfaces, r.Interfaces...)
	}
	if len(res.Interfaces) == 0 && len(res.IPs) == 0 {
		return nil, fmt.Errorf("cached network result of sandbox %s: %w", id, errdefs.ErrNotFound)
	}
	sortIPv4First(res.IPs)
	return res, nil
}

// undoAdd runs DEL for each plugin of list separately, last first, so that
// one failing DEL (typically of the plugin whose ADD failed) does not stop
// the others from undoing their part. Plugins that are not installed never
// ran and are skipped.
func (m *Manager) undoAdd(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	var errs []error
	for i := len(list.Plugins) - 1; i >= 0; i-- {
		p := list.Plugins[i]
		if _, err := invoke.FindInPath(p.Network.Type, m.cfg.BinDirs); err != nil {
			continue
		}
		one := &libcni.NetworkConfigList{Name: list.Name, CNIVersion: list.CNIVersion, Plugins: list.Plugins[i : i+1], Bytes: list.Bytes}
		if err := m.cni.DelNetworkList(ctx, one, rt); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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

// keyedMutex serializes calls per key without a global lock across them.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*refMutex{}
	}
	l := k.locks[key]
	if l == nil {
		l = &refMutex{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
