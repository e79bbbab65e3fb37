package network

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// TestPinNamespaces pins an IPC and a UTS namespace with a hostname and
// sysctls of all three kinds, and reads them back from another process
// that joins the pins (as runc joins them for a container): the values are
// there, the host's are untouched, and no thread of ours stays behind in a
// namespace. Removing the pins leaves nothing mounted.
func TestPinNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter (util-linux) to join the pinned namespaces from another process")
	}
	root := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(root, "netns")) })
	net, err := NewNamedNetNS(filepath.Join(root, "netns"), "p")
	if err != nil {
		t.Fatal(err)
	}
	defer net.Remove()
	hostShm, _ := os.ReadFile("/proc/sys/kernel/shmmni")
	hostPort, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	hostName, _ := os.Hostname()
	hostThreads := threadNamespaces(t)

	dir := filepath.Join(root, "netns")
	ns, err := PinNamespaces(dir, "p", PinOptions{
		IPC: true, UTS: true, Hostname: "pinned-host", NetNS: net.Path(),
		Sysctls: map[string]string{"kernel.shmmni": "1234", "net.ipv4.ip_unprivileged_port_start": "80", "kernel.domainname": "pinned.domain"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ns.IPC != filepath.Join(dir, "p.ipc") || ns.UTS != filepath.Join(dir, "p.uts") {
		t.Fatalf("pinned at %+v", ns)
	}
	if !NamespacesPinned(ns.IPC, ns.UTS, net.Path()) {
		t.Fatal("NamespacesPinned = false right after pinning")
	}
	out, err := exec.Command("nsenter", "--ipc="+ns.IPC, "--uts="+ns.UTS, "--net="+net.Path(), "--",
		"sh", "-c", "hostname; cat /proc/sys/kernel/domainname /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_unprivileged_port_start").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	if got, want := strings.Fields(string(out)), []string{"pinned-host", "pinned.domain", "1234", "80"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("inside the pinned namespaces: %q, want %q", got, want)
	}
	if b, _ := os.ReadFile("/proc/sys/kernel/shmmni"); string(b) != string(hostShm) {
		t.Errorf("host kernel.shmmni changed: %q → %q", hostShm, b)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); string(b) != string(hostPort) {
		t.Errorf("host net.ipv4.ip_unprivileged_port_start changed: %q → %q", hostPort, b)
	}
	if h, _ := os.Hostname(); h != hostName {
		t.Errorf("host hostname changed: %q → %q", hostName, h)
	}
	if got := threadNamespaces(t); got != hostThreads {
		t.Errorf("a thread of ours is left in another namespace:\n%s\nwant\n%s", got, hostThreads)
	}

	if err := RemoveNamespaces(dir, "p"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ns.IPC, ns.UTS} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s after RemoveNamespaces: %v", p, err)
		}
	}
	if NamespacesPinned(ns.IPC) {
		t.Error("NamespacesPinned = true after RemoveNamespaces")
	}
	if err := RemoveNamespaces(dir, "p"); err != nil {
		t.Errorf("second RemoveNamespaces: %v", err)
	}
}

// TestPinNamespacesRefuses: a sysctl of a namespace not asked for, or not
// namespaced, is InvalidArgument and pins nothing; a value the kernel
// refuses undoes the pins.
func TestPinNamespacesRefuses(t *testing.T) {
	if _, err := PinNamespaces(t.TempDir(), "../x", PinOptions{IPC: true}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a name with a slash: %v, want InvalidArgument", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces")
	}
	root := t.TempDir()
	t.Cleanup(func() { unmountAll(filepath.Join(root, "ns")) })
	dir := filepath.Join(root, "ns")
	for _, tt := range []struct {
		name string
		o    PinOptions
	}{
		{"net sysctl without netns", PinOptions{IPC: true, Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}},
		{"ipc sysctl without ipc", PinOptions{UTS: true, Sysctls: map[string]string{"kernel.shmmax": "1"}}},
		{"not namespaced", PinOptions{IPC: true, UTS: true, Sysctls: map[string]string{"vm.swappiness": "1"}}},
		{"no such sysctl", PinOptions{IPC: true, Sysctls: map[string]string{"kernel.shmnope": "1"}}},
		{"bad value", PinOptions{IPC: true, Sysctls: map[string]string{"kernel.shmmni": "many"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			_, err := PinNamespaces(dir, name, tt.o)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("PinNamespaces = %v, want InvalidArgument", err)
			}
			for _, ext := range []string{".ipc", ".uts"} {
				if _, err := os.Stat(filepath.Join(dir, name+ext)); !os.IsNotExist(err) {
					t.Errorf("%s%s left behind: %v", name, ext, err)
				}
			}
		})
	}
}

// threadNamespaces lists the ipc, uts and net namespaces of every thread of
// the test process, for comparing before and after.
func threadNamespaces(t *testing.T) string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		for _, n := range []string{"ipc", "uts", "net"} {
			if l, err := os.Readlink(fmt.Sprintf("/proc/self/task/%s/ns/%s", task.Name(), n)); err == nil {
				seen[l] = true
			}
		}
	}
	var out []string
	for l := range seen {
		out = append(out, l)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}
