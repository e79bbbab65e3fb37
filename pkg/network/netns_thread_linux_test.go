package network

import (
	"fmt"
	"os"
	"testing"
)

// TestNewNetNSLeavesNoThreadBehind: creating namespaces must not leave any
// thread of ours — the main thread above all, which Go parks rather than
// ends — inside one of them, where it would keep the namespace alive
// after Remove.
func TestNewNetNSLeavesNoThreadBehind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Cleanup(func() { unmountAll(dir) })
	for i := range 20 {
		ns, err := NewNamedNetNS(dir, fmt.Sprintf("t%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := ns.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		got, err := os.Readlink(fmt.Sprintf("/proc/self/task/%s/ns/net", task.Name()))
		if err != nil {
			continue // the thread has just ended
		}
		if got != host {
			t.Errorf("thread %s is in %s, not the host's %s", task.Name(), got, host)
		}
	}
}
