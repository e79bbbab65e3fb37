package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// NetNS is a network namespace pinned by a bind mount of its nsfs inode onto
// a file. The mount, not a process, keeps the namespace alive, so it outlives
// the daemon: after a restart LoadNetNS(path) gives it back.
type NetNS struct {
	path string
}

// NewNetNS creates a new network namespace and pins it at dir/<random name>.
func NewNetNS(dir string) (*NetNS, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("netns name: %w", err)
	}
	return NewNamedNetNS(dir, "cni-"+hex.EncodeToString(b[:]))
}

// NewNamedNetNS creates a new network namespace and pins it at dir/name. It
// fails with errdefs.ErrAlreadyExists when dir/name exists.
func NewNamedNetNS(dir, name string) (_ *NetNS, retErr error) {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return nil, fmt.Errorf("netns name %q: %w", name, errdefs.ErrInvalidArgument)
	}
	if err := prepareNetNSDir(dir); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("netns %s: %w", p, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("create netns mount point: %w", err)
	}
	f.Close()
	defer func() {
		if retErr != nil {
			_ = os.Remove(p)
		}
	}()

	// unshare(CLONE_NEWNET) moves only the calling thread. Do it on a
	// locked thread, and put the thread back into its namespace before
	// unlocking it. Should that fail, the thread stays locked and the Go
	// runtime ends it with the goroutine — unless it is the main thread,
	// which Go parks instead, holding the new namespace alive: hence the
	// way back rather than relying on thread exit alone.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		// lo comes up here, whatever the CNI chain: Flannel's, Calico's and
		// Cilium's conflists have no loopback plugin (containerd and CRI-O
		// bring lo up themselves too).
		loErr := loopbackUp()
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		mountErr := error(nil)
		if loErr == nil {
			mountErr = unix.Mount(src, p, "none", unix.MS_BIND, "")
		}
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		switch {
		case loErr != nil:
			errc <- loErr
		case mountErr != nil:
			errc <- fmt.Errorf("bind mount netns at %s: %w", p, mountErr)
		default:
			errc <- nil
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return &NetNS{path: p}, nil
}

// loopbackUp sets IFF_UP on lo in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: set flags: %w", err)
	}
	return nil
}

var prepareMu sync.Mutex

// prepareNetNSDir creates dir and makes it a shared mount point, the way
// iproute2 treats /run/netns. Shared propagation lets an unmount of a pinned
// namespace reach the copies that mount namespaces created later (container
// mount namespaces, a daemon re-exec'd in its own) received, so the
// namespace is really freed when Remove unmounts it.
func prepareNetNSDir(dir string) error {
	// Serialized: two callers that both find dir not yet a mount point
	// would otherwise each bind it onto itself, stacking mounts.
	prepareMu.Lock()
	defer prepareMu.Unlock()
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("create netns dir: %w", err)
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	// EINVAL: dir is not a mount point yet. Bind it onto itself
	// (recursively, so existing pins are carried over) and retry.
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mount %s onto itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	return nil
}

// LoadNetNS returns the pinned namespace at path. It fails with
// errdefs.ErrNotFound when path does not exist and with
// errdefs.ErrInvalidArgument when path is not a network namespace.
func LoadNetNS(path string) (*NetNS, error) {
	if err := checkNetNS(path); err != nil {
		return nil, err
	}
	return &NetNS{path: path}, nil
}

// checkNetNS reports whether path is a live network namespace file.
func checkNetNS(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("netns %s: %w", path, errdefs.ErrNotFound)
		}
		return fmt.Errorf("statfs netns %s: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return fmt.Errorf("%s is not a network namespace (not mounted): %w", path, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Path is the file the namespace is pinned at, the path CNI plugins and
// runc's spec are given.
func (n *NetNS) Path() string { return n.path }

// Remove unmounts and deletes the pinned namespace. The namespace itself is
// freed by the kernel once nothing else (a process, another mount) holds it.
// Remove is idempotent: a path that is not mounted or does not exist is
// success.
func (n *NetNS) Remove() error {
	if err := unix.Unmount(n.path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", n.path, err)
	}
	if err := os.Remove(n.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", n.path, err)
	}
	return nil
}

// Do runs fn on a locked OS thread that has entered the namespace, then
// returns the thread to the namespace it came from. Goroutines started by fn
// do not run in the namespace; sockets created by fn stay in it.
func (n *NetNS) Do(fn func() error) error {
	target, err := unix.Open(n.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", n.path, err)
	}
	defer unix.Close(target)

	var (
		wg    sync.WaitGroup
		fnErr error
		nsErr error
	)
	wg.Add(1)
	// A fresh goroutine so that a thread which cannot be restored is
	// discarded (by not unlocking it) without affecting the caller's thread.
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			nsErr = fmt.Errorf("open current netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			nsErr = fmt.Errorf("enter netns %s: %w", n.path, err)
			return
		}
		fnErr = fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			nsErr = fmt.Errorf("return from netns %s: %w", n.path, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	wg.Wait()
	if fnErr != nil {
		return fnErr
	}
	return nsErr
}
