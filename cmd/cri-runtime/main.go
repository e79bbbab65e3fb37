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
	"syscall"

	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/network"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

const defaultConfigPath = "/etc/cri-runtime/config.toml"

type flags struct {
	config string
	root   string
	state  string
	socket string
}

func main() {
	klog.InitFlags(nil)
	var f flags
	flag.StringVar(&f.config, "config", defaultConfigPath, "config file (TOML)")
	flag.StringVar(&f.root, "root", "/var/lib/cri-runtime", "dir for what survives a reboot: metadata, images, container layers")
	flag.StringVar(&f.state, "state", "/run/cri-runtime", "dir for runtime state: task bundles, shim sockets, network namespaces")
	flag.StringVar(&f.socket, "socket", "/run/cri-runtime/cri-runtime.sock", "CRI unix socket")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n       %s config default\n\n", os.Args[0], os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	explicitConfig := false
	flag.Visit(func(fl *flag.Flag) {
		if fl.Name == "config" {
			explicitConfig = true
		}
	})

	if args := flag.Args(); len(args) > 0 {
		if len(args) == 2 && args[0] == "config" && args[1] == "default" {
			out, err := encodeConfig(defaultConfig())
			if err != nil {
				fail(err)
			}
			os.Stdout.Write(out)
			return
		}
		fail(fmt.Errorf("unknown command %q", args))
	}
	cfg, err := loadConfig(f.config, explicitConfig)
	if err != nil {
		fail(err)
	}
	if err := run(f, cfg); err != nil {
		fail(err)
	}
}

func fail(err error) {
	klog.Background().Error(err, "cri-runtime failed")
	klog.Flush()
	os.Exit(1)
}

func run(f flags, cfg Config) error {
	logger := klog.Background()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx = klog.NewContext(ctx, logger)

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
	images, err := image.New(f.root, st, imgCfg)
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
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(cri.UnaryInterceptor(svc)),
		grpc.ChainStreamInterceptor(cri.StreamInterceptor(svc)),
	)
	svc.Register(srv)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	logger.Info("Serving CRI", "path", f.socket, "root", f.root, "state", f.state)

	// Restore runs while the socket already answers (Unavailable until it
	// is done), so the kubelet sees a live runtime at once.
	if err := rt.Restore(ctx); err != nil {
		srv.Stop()
		return fmt.Errorf("restore tasks: %w", err)
	}
	if err := svc.Start(ctx); err != nil {
		srv.Stop()
		return err
	}
	logger.Info("Ready")

	select {
	case <-ctx.Done():
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
