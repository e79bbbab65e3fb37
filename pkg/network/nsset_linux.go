package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// PinOptions says which namespaces PinNamespaces creates and what it sets
// in them.
type PinOptions struct {
	// IPC and UTS ask for a new IPC and a new UTS namespace.
	IPC, UTS bool
	// Hostname is set in the new UTS namespace.
	Hostname string
	// NetNS is a pinned network namespace (a NetNS's Path) the net.*
	// sysctls are written in; "" when there are none to write.
	NetNS string
	// Sysctls are written in the namespaces they belong to, keys in the
	// dotted form with "/" inside a component ("net.ipv4.conf.eno2/100.rp_filter").
	// net.* need NetNS, the IPC ones IPC, kernel.hostname and
	// kernel.domainname UTS.
	Sysctls map[string]string
}

// Namespaces are the files PinNamespaces pinned; "" for one not asked for.
type Namespaces struct {
	IPC, UTS string
}

// PinNamespaces creates the namespaces o asks for on a locked thread, sets
// the hostname and writes the sysctls there (a thread in a namespace reads
// and writes that namespace's /proc/sys), and pins each by a bind mount of
// its nsfs file at dir/name.ipc and dir/name.uts, as NewNamedNetNS pins a
// network namespace at dir/name (the same shared dir, for the same reason).
// The pins, not a process, keep the namespaces alive. Sysctls are written
// even when no namespace is created (only net.* then). A failure removes
// what was pinned.
func PinNamespaces(dir, name string, o PinOptions) (_ Namespaces, retErr error) {
	var out Namespaces
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return out, fmt.Errorf("namespace name %q: %w", name, errdefs.ErrInvalidArgument)
	}
	if err := checkSysctlNamespaces(o); err != nil {
		return out, err
	}
	if o.IPC || o.UTS {
		if err := prepareNetNSDir(dir); err != nil {
			return out, err
		}
		defer func() {
			if retErr != nil {
				_ = RemoveNamespaces(dir, name)
			}
		}()
		for _, p := range []struct {
			want bool
			ext  string
			dst  *string
		}{{o.IPC, ipcExt, &out.IPC}, {o.UTS, utsExt, &out.UTS}} {
			if !p.want {
				continue
			}
			path := filepath.Join(dir, name+p.ext)
			f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
			if err != nil {
				if errors.Is(err, os.ErrExist) {
					return out, fmt.Errorf("namespace %s: %w", path, errdefs.ErrAlreadyExists)
				}
				return out, fmt.Errorf("create namespace mount point: %w", err)
			}
			f.Close()
			*p.dst = path
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- pinOnThread(o, out) }()
	if err := <-errc; err != nil {
		return out, err
	}
	return out, nil
}

// The suffixes of pinned IPC and UTS namespaces next to network ones.
const (
	ipcExt = ".ipc"
	utsExt = ".uts"
)

// PinnedName is the name PinNamespaces was given for a file it pinned in
// its dir (ok true), or ok false for any other name (a network namespace).
func PinnedName(file string) (name string, ok bool) {
	for _, ext := range []string{ipcExt, utsExt} {
		if n, found := strings.CutSuffix(file, ext); found && n != "" {
			return n, true
		}
	}
	return "", false
}

// checkSysctlNamespaces refuses a sysctl whose namespace o does not have.
func checkSysctlNamespaces(o PinOptions) error {
	for k := range o.Sysctls {
		switch ns := sysctlNamespace(k); {
		case ns == "net" && o.NetNS == "", ns == "ipc" && !o.IPC, ns == "uts" && !o.UTS:
			return fmt.Errorf("sysctl %s needs a %s namespace of its own: %w", k, ns, errdefs.ErrInvalidArgument)
		case ns == "":
			return fmt.Errorf("sysctl %s is not namespaced: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// sysctlNamespace names the namespace of a sysctl: "net", "ipc", "uts", or
// "" for one that is not namespaced.
func sysctlNamespace(key string) string {
	switch {
	case strings.HasPrefix(key, "net."):
		return "net"
	case strings.HasPrefix(key, "fs.mqueue."), strings.HasPrefix(key, "kernel.shm"), strings.HasPrefix(key, "kernel.msg"), key == "kernel.sem":
		return "ipc"
	case key == "kernel.hostname", key == "kernel.domainname":
		return "uts"
	}
	return ""
}

// sysctlPath is the /proc/sys file of a dotted key: "." separates, "/"
// stands for a "." inside a component.
func sysctlPath(key string) string {
	return "/proc/sys/" + strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, key)
}

// nsKind is one namespace type a pinning thread moves between.
type nsKind struct {
	name string
	flag int
}

// pinOnThread does PinNamespaces' work on the calling goroutine, which it
// locks to its thread. The thread goes back to its own namespaces before it
// is unlocked; if it cannot, it stays locked and Go ends it with the
// goroutine (see NewNamedNetNS on why not to rely on that alone).
func pinOnThread(o PinOptions, out Namespaces) error {
	runtime.LockOSThread()
	var kinds []nsKind
	if o.IPC {
		kinds = append(kinds, nsKind{"ipc", unix.CLONE_NEWIPC})
	}
	if o.UTS {
		kinds = append(kinds, nsKind{"uts", unix.CLONE_NEWUTS})
	}
	if o.NetNS != "" && len(netSysctls(o.Sysctls)) > 0 {
		kinds = append(kinds, nsKind{"net", unix.CLONE_NEWNET})
	}
	self := fmt.Sprintf("/proc/%d/task/%d/ns/", os.Getpid(), unix.Gettid())
	orig := make([]int, 0, len(kinds))
	defer func() {
		for _, fd := range orig {
			unix.Close(fd)
		}
	}()
	for _, k := range kinds {
		fd, err := unix.Open(self+k.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			return fmt.Errorf("open current %s namespace: %w", k.name, err)
		}
		orig = append(orig, fd)
	}
	err := enterAndPin(o, out, self)
	for i, k := range kinds {
		if e := unix.Setns(orig[i], k.flag); e != nil {
			return errors.Join(err, fmt.Errorf("return to the %s namespace: %w", k.name, e))
		}
	}
	runtime.UnlockOSThread()
	return err
}

// enterAndPin moves the locked thread into new IPC/UTS namespaces and the
// network namespace, sets what o asks, and bind-mounts the new namespaces.
func enterAndPin(o PinOptions, out Namespaces, self string) error {
	flags := 0
	if o.IPC {
		flags |= unix.CLONE_NEWIPC
	}
	if o.UTS {
		flags |= unix.CLONE_NEWUTS
	}
	if flags != 0 {
		if err := unix.Unshare(flags); err != nil {
			return fmt.Errorf("unshare ipc/uts namespaces: %w", err)
		}
	}
	if o.UTS && o.Hostname != "" {
		if err := unix.Sethostname([]byte(o.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", o.Hostname, err)
		}
	}
	if net := netSysctls(o.Sysctls); o.NetNS != "" && len(net) > 0 {
		fd, err := unix.Open(o.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", o.NetNS, err)
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("enter netns %s: %w", o.NetNS, err)
		}
	}
	for k, v := range o.Sysctls {
		if err := writeSysctl(k, v); err != nil {
			return err
		}
	}
	for _, p := range []struct{ name, dst string }{{"ipc", out.IPC}, {"uts", out.UTS}} {
		if p.dst == "" {
			continue
		}
		if err := unix.Mount(self+p.name, p.dst, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s namespace at %s: %w", p.name, p.dst, err)
		}
	}
	return nil
}

func netSysctls(m map[string]string) []string {
	var out []string
	for k := range m {
		if sysctlNamespace(k) == "net" {
			out = append(out, k)
		}
	}
	return out
}

// writeSysctl writes one sysctl in the calling thread's namespaces.
func writeSysctl(key, value string) error {
	fd, err := unix.Open(sysctlPath(key), unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", key, sysctlClass(err))
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("sysctl %s=%q: %w", key, value, sysctlClass(err))
	}
	return nil
}

// sysctlClass classes a failed sysctl write: a key the kernel does not
// have or a value it refuses is the request's fault.
func sysctlClass(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ERANGE) {
		return errdefs.WithClass(err, errdefs.ErrInvalidArgument)
	}
	return err
}

// RemoveNamespaces unmounts and removes what PinNamespaces pinned as name
// in dir. The namespaces are freed once no process is left in them. It is
// idempotent: pins that are gone are success.
func RemoveNamespaces(dir, name string) error {
	var errs []error
	for _, ext := range []string{ipcExt, utsExt} {
		p := filepath.Join(dir, name+ext)
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount namespace %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove namespace %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// NamespacesPinned reports whether every path in paths is a live pinned
// namespace ("" entries are skipped).
func NamespacesPinned(paths ...string) bool {
	for _, p := range paths {
		if p != "" && checkNetNS(p) != nil {
			return false
		}
	}
	return true
}
