// Command cri-runtime is the CRI runtime daemon: it serves the CRI v1
// RuntimeService and ImageService on a unix socket.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/metrics"
	"github.com/cri-runtime/cri-runtime/pkg/network"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

const (
	defaultConfigPath = "/etc/cri-runtime/config.toml"
	defaultConfigDir  = "/etc/cri-runtime/config.d"
)

type flags struct {
	src    configSource
	root   string
	state  string
	socket string
	// verbosityFlag: -v was given, so [log] verbosity is not applied.
	verbosityFlag bool
}

func main() {
	// The systemd notify socket must not reach anything the daemon starts:
	// runc, seeing NOTIFY_SOCKET, would make every container's start wait
	// for the container itself to say READY=1.
	notifier := takeNotifySocket()
	// SIGHUP before the daemon is ready waits for it instead of killing it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	klog.InitFlags(nil)
	var f flags
	flag.StringVar(&f.src.path, "config", defaultConfigPath, "config file (TOML)")
	flag.StringVar(&f.src.dir, "config-dir", defaultConfigDir, "drop-in dir: its *.toml files are applied over the config file in lexical order")
	flag.StringVar(&f.root, "root", "/var/lib/cri-runtime", "dir for what survives a reboot: metadata, images, container layers")
	flag.StringVar(&f.state, "state", "/run/cri-runtime", "dir for runtime state: task bundles, shim sockets, network namespaces")
	flag.StringVar(&f.socket, "socket", "/run/cri-runtime/cri-runtime.sock", "CRI unix socket")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n       %s [flags] config default|check\n\n", os.Args[0], os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if args := flag.Args(); len(args) > 0 {
		if len(args) < 2 || args[0] != "config" {
			fail(fmt.Errorf("unknown command %q", args))
		}
		// Flags may follow the subcommand too.
		if err := flag.CommandLine.Parse(args[2:]); err != nil || flag.NArg() > 0 {
			fail(fmt.Errorf("unknown command %q", args))
		}
		f.fromCommandLine()
		os.Exit(configCommand(args[1], f.src))
	}
	f.fromCommandLine()
	cfg, files, err := loadConfig(f.src)
	if err != nil {
		fail(err)
	}
	if err := run(f, cfg, files, notifier, hup); err != nil {
		fail(err)
	}
}

// fromCommandLine notes which flags were given explicitly.
func (f *flags) fromCommandLine() {
	flag.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "config":
			f.src.pathExplicit = true
		case "config-dir":
			f.src.dirExplicit = true
		case "v":
			f.verbosityFlag = true
		}
	})
}

// configCommand runs `config default` (print the default config) or
// `config check` (load the config file, its drop-ins and the registry
// hosts dirs they name; non-zero with the offending file and key).
func configCommand(cmd string, src configSource) int {
	switch cmd {
	case "default":
		out, err := encodeConfig(defaultConfig())
		if err != nil {
			fmt.Fprintf(os.Stderr, "cri-runtime: %v\n", err)
			return 1
		}
		os.Stdout.Write(out)
		return 0
	case "check":
		cfg, files, err := loadConfig(src)
		if err == nil {
			err = image.CheckHostsDirs(cfg.Registry.ConfigPath)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cri-runtime: config check: %v\n", err)
			return 1
		}
		if len(files) == 0 {
			fmt.Println("config ok: no config file, all defaults")
		} else {
			fmt.Printf("config ok: %s\n", strings.Join(files, ", "))
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "cri-runtime: unknown command \"config %s\" (want config default or config check)\n", cmd)
	return 2
}

func fail(err error) {
	klog.Background().Error(err, "cri-runtime failed")
	klog.Flush()
	os.Exit(1)
}

// setVerbosity sets klog's -v.
func setVerbosity(v int) error { return flag.Set("v", strconv.Itoa(v)) }

func run(f flags, cfg Config, files []string, notifier *notifier, hup <-chan os.Signal) error {
	if !f.verbosityFlag {
		if err := setVerbosity(cfg.Log.Verbosity); err != nil {
			return err
		}
	}
	logger := klog.Background()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Loaded config", "files", files)

	// Metrics first: a taken address fails the start before anything else
	// is touched. Off, nothing of pkg/metrics is built.
	var m *metrics.Metrics
	if cfg.Metrics.Enabled() {
		m = metrics.New()
		msrv, err := metrics.Listen(cfg.Metrics, m)
		if err != nil {
			return err
		}
		defer msrv.Close()
		go func() {
			if err := msrv.Serve(); err != nil {
				logger.Error(err, "Metrics server failed")
			}
		}()
		logger.Info("Serving metrics", "address", msrv.Addr(), "pprof", cfg.Metrics.Pprof)
	}

	for _, dir := range []string{f.root, f.state} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return err
		}
	}
	st, err := store.Open(filepath.Join(f.root, "meta.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	rt, err := runtime.New(f.state, st, cfg.Runtime)
	if err != nil {
		return err
	}
	defer rt.Close()

	imgCfg := cfg.Image
	imgCfg.Registry = cfg.Registry
	var imgOpts []image.Option
	if m != nil {
		imgOpts = append(imgOpts, image.WithRegistryBytes(m.AddPullBytes))
	}
	images, err := image.New(f.root, st, imgCfg, imgOpts...)
	if err != nil {
		return err
	}
	defer images.Close()
	// The network's dirs follow --root and --state unless the file moved
	// them, so isolated instances do not share CNI caches or netns.
	netCfg := cfg.Network
	if def := network.DefaultConfig(); netCfg.CacheDir == def.CacheDir {
		netCfg.CacheDir = filepath.Join(f.root, "cni")
	}
	if def := network.DefaultConfig(); netCfg.NetNSDir == def.NetNSDir {
		netCfg.NetNSDir = filepath.Join(f.state, "netns")
	}
	netw, err := network.New(netCfg)
	if err != nil {
		return err
	}
	svc, err := cri.New(cfg.CRI, rt, images, netw, st, cri.WithStateDir(f.state), cri.WithRootDir(f.root), cri.WithNetNSDir(netCfg.NetNSDir), cri.WithNRI(cfg.NRI))
	if err != nil {
		return err
	}
	defer svc.Close()
	// Before anything below starts goroutines: listen sets the umask.
	lis, err := listen(f.socket)
	if err != nil {
		return err
	}
	unary := []grpc.UnaryServerInterceptor{cri.UnaryInterceptor(svc)}
	stream := []grpc.StreamServerInterceptor{cri.StreamInterceptor(svc)}
	if m != nil {
		// Outside the facade's: they see the gRPC code it mapped.
		unary = append([]grpc.UnaryServerInterceptor{m.UnaryServerInterceptor()}, unary...)
		stream = append([]grpc.StreamServerInterceptor{m.StreamServerInterceptor()}, stream...)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	svc.Register(srv)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	logger.Info("Serving CRI", "path", f.socket, "root", f.root, "state", f.state)

	// Restore runs while the socket already answers (Unavailable until it
	// is done), so the kubelet sees a live runtime at once.
	restoreStart := time.Now()
	if err := rt.Restore(ctx); err != nil {
		srv.Stop()
		return fmt.Errorf("restore tasks: %w", err)
	}
	if err := svc.Start(ctx); err != nil {
		srv.Stop()
		return err
	}
	if m != nil {
		observeRestore(m, time.Since(restoreStart), rt.RestoreStats(), svc.Counts())
		m.WatchState(func() metrics.State { return stateOf(svc.Counts(), rt) })
	}
	logger.Info("Ready")
	// systemd (Type=notify) starts what is ordered after us, a kubelet,
	// only now: before this every RPC but Version answered Unavailable.
	notifier.notify(logger, "READY=1")

	rl := &reloader{src: f.src, running: cfg, images: images, verbosityFlag: f.verbosityFlag, notifier: notifier}
	for {
		select {
		case <-hup:
			rl.reload(logger)
		case <-ctx.Done():
			// Tell systemd the stop is ours, so it does not count the
			// time the streams take to end as a hang.
			notifier.notify(logger, "STOPPING=1")
			logger.Info("Shutting down; containers keep running")
			// End the event streams first: GracefulStop waits for every open
			// stream, and a kubelet's GetContainerEvents never ends by itself.
			svc.Close()
			srv.GracefulStop()
			return nil
		case err := <-serveErr:
			return err
		}
	}
}

// taskNamespace is the task runtime namespace of the CRI's tasks.
const taskNamespace = "k8s.io"

func observeRestore(m *metrics.Metrics, took time.Duration, rs runtime.RestoreStats, c cri.Counts) {
	sum := func(by map[string]int) int {
		n := 0
		for _, v := range by {
			n += v
		}
		return n
	}
	m.ObserveRestore(took, metrics.RestoreFound{
		PodSandboxes: sum(c.PodSandboxes), Containers: sum(c.Containers),
		TasksRunning: rs.Running, TasksExited: rs.Exited, TasksBundleGone: rs.BundleGone, TasksNeverCreate: rs.NeverCreate,
	})
}

func stateOf(c cri.Counts, rt *runtime.Runtime) metrics.State {
	return metrics.State{
		PodSandboxes: c.PodSandboxes,
		Containers:   c.Containers,
		Shims:        len(rt.Tasks(taskNamespace)),
		SubscribersCutOff: map[string]int64{
			"container_events": c.EventSubscribersCutOff,
			"task_events":      rt.DroppedSubscribers(),
		},
		EventsReplayed: c.EventsReplayed,
	}
}

// listen opens the CRI socket: root-owned, mode 0660, replacing a stale
// socket file of an earlier run. It is bound 0600 (listenPrivate) and
// only then opened to the group, so it is never more open than 0660.
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	lis, err := listenPrivate(path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		lis.Close()
		return nil, err
	}
	return lis, nil
}

// listenPrivate binds a unix socket at path under umask 0177, as the shim
// does, so the socket file is 0600 from the moment it exists (bind(2)
// creates it with 0777 less the umask), and puts the umask back. The
// umask is the process's, not the goroutine's: run calls this before any
// goroutine that creates files is started (task monitors, the event
// handler, streaming and NRI all start after it), and a file created
// meanwhile could only come out more private, never more open.
func listenPrivate(path string) (net.Listener, error) {
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}
