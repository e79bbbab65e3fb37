// Command cri-runtime-shim is the per-task shim: it owns one container's
// runc lifecycle, stdio and exit status, and outlives the daemon. The daemon
// starts it through pkg/shim/client.Start and talks to it over its socket.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"sync"
	"time"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/reaper"
	"github.com/cri-runtime/cri-runtime/pkg/shim/service"
)

func init() {
	// No allocation profiling: its bucket table costs an idle shim memory.
	goruntime.MemProfileRate = 0
}

// readyFd is the pipe client.Start waits on: "ok\n" or an error text.
const readyFd = 3

func main() {
	var (
		cfg    service.Config
		socket string
		dbg    bool
	)
	flag.StringVar(&cfg.Namespace, "namespace", "", "namespace of the task")
	flag.StringVar(&cfg.ID, "id", "", "task (container) id")
	flag.StringVar(&cfg.Bundle, "bundle", "", "bundle directory (config.json, rootfs)")
	flag.StringVar(&socket, "socket", "", "unix socket to serve the task API on")
	flag.StringVar(&cfg.RuntimeBinary, "runtime", "runc", "OCI runtime binary")
	flag.StringVar(&cfg.RuntimeRoot, "runtime-root", "", "OCI runtime state root (runc --root)")
	flag.BoolVar(&dbg, "debug", false, "debug logging")
	flag.Parse()

	// An idle shim should cost little: few threads, a tight heap. Start
	// passes GOMAXPROCS=1 in the environment (it must not reach runc).
	goruntime.GOMAXPROCS(1)
	os.Unsetenv("GOMAXPROCS")
	debug.SetGCPercent(25)

	level := slog.LevelInfo
	if dbg {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).
		With("namespace", cfg.Namespace, "taskID", cfg.ID)

	ready := os.NewFile(readyFd, "ready")
	if err := run(cfg, socket, ready, log); err != nil {
		log.Error("Shim failed", "err", err)
		if ready != nil {
			fmt.Fprintf(ready, "%v\n", err)
			ready.Close()
		}
		os.Exit(1)
	}
}

func run(cfg service.Config, socket string, ready *os.File, log *slog.Logger) error {
	if cfg.ID == "" || cfg.Bundle == "" || socket == "" {
		return fmt.Errorf("-id, -bundle and -socket are required: %w", errdefs.ErrInvalidArgument)
	}
	if err := reaper.SetSubreaper(); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The reaper must be in place before the first child: it reaps them all,
	// and go-runc gets runc's own exits back through the Monitor. New
	// listens for SIGCHLD at once; were that left to the Run goroutine, a
	// runc that exited before it got going would never be reaped, and its
	// create would hang (seen once in the pkg/cri tests).
	r := reaper.New()
	go r.Run(ctx)
	runc.Monitor = reaper.NewMonitor(r)
	router := reaper.NewRouter()
	go router.Run(r.Subscribe())

	// The shim stays put while the task lives: terminal signals are logged,
	// not obeyed (the daemon asks for Shutdown).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGPIPE)
	go func() {
		for s := range sigs {
			log.Info("Ignored a signal", "signal", s.String())
		}
	}()

	svc := service.New(ctx, cfg, router, log, service.WithRequestDone(idleTrimmer()))
	l, err := listen(socket)
	if err != nil {
		return err
	}
	if ready != nil {
		if _, err := ready.Write([]byte("ok\n")); err != nil {
			log.Warn("Nobody read the ready pipe", "err", err)
		}
		ready.Close()
	}
	log.Info("Shim serving", "path", socket, "pid", os.Getpid())

	served := make(chan error, 1)
	go func() { served <- svc.Serve(l) }()
	select {
	case err = <-served:
	case <-svc.Done():
		// Give connection handlers a moment to finish their answers; an
		// Attach to an exec that never started would otherwise hold us.
		select {
		case err = <-served:
		case <-time.After(5 * time.Second):
		}
	}
	os.Remove(socket)
	log.Info("Shim exiting")
	return err
}

// idleTrimmer returns a hook that, once requests have been quiet for a
// second, gives the heap's free pages back to the OS if a GC ran since the
// last trim: a shim is idle nearly all of its life, and its PSS is what a
// node pays per container.
//
// A shim that never reached its first GC (the usual one: create, start,
// wait) is left alone. Forcing a GC there costs more than the start's
// garbage it frees: it flushes the allocator's per-P span caches into the
// central span sets, which map a 4 KiB block for each size class in use
// (~300 KiB, never returned). runtime.ReadMemStats flushes them too, so the
// check reads the GC count through debug.ReadGCStats, which does not.
func idleTrimmer() func() {
	var mu sync.Mutex
	var t *time.Timer
	var trimMu sync.Mutex // a trim may still run when the timer fires again
	var trimmedAt int64   // NumGC after the last trim
	trim := func() {
		trimMu.Lock()
		defer trimMu.Unlock()
		var st debug.GCStats
		debug.ReadGCStats(&st)
		if st.NumGC == trimmedAt {
			return
		}
		debug.FreeOSMemory()
		debug.ReadGCStats(&st)
		trimmedAt = st.NumGC
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if t == nil {
			t = time.AfterFunc(time.Second, trim)
			return
		}
		t.Reset(time.Second)
	}
}

// listen creates the socket (mode 0600 in a 0700 directory). A stale socket
// from a dead shim is replaced; a live one is an error.
func listen(socket string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	if _, err := os.Stat(socket); err == nil {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s is in use: %w", socket, errdefs.ErrAlreadyExists)
		}
		if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", socket)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
