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
