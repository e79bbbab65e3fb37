package e2e

// The CNI chains the suites run on: ours (bridge, portmap, loopback) and
// one like Flannel's, Calico's and Cilium's, whose chain has no loopback
// plugin, so the runtime itself must bring lo up in every pod.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cniChains are the networks TestCritest and TestKubelet run on, in order;
// E2E_CNI_CHAINS (comma-separated) picks some of them.
func cniChains() []string {
	if v := os.Getenv("E2E_CNI_CHAINS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"ours", "no-loopback"}
}

// useCNIChain makes the daemon's network the named chain until the test
// ends. The daemon reloads its conf_dir when a file in it changes, so pods
// created from now on get the new chain. The network name, bridge and
// subnet stay, so the leak checks find what either chain leaves.
func useCNIChain(t *testing.T, chain string) {
	t.Helper()
	src := filepath.Join(env.repo, "hack", "cni", "10-cri-runtime.conflist")
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var conf []byte
	switch chain {
	case "ours":
		conf = orig
	case "no-loopback":
		var list map[string]any
		if err := json.Unmarshal(orig, &list); err != nil {
			t.Fatal(err)
		}
		var plugins []any
		for _, p := range list["plugins"].([]any) {
			if p.(map[string]any)["type"] != "loopback" {
				plugins = append(plugins, p)
			}
		}
		list["plugins"] = plugins
		if conf, err = json.MarshalIndent(list, "", "  "); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown CNI chain %q (ours, no-loopback)", chain)
	}
	dst := filepath.Join(env.tmp, "cni", "net.d", "10-cri-runtime.conflist")
	write := func(data []byte) {
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// A new mtime even within the same second: the daemon's
		// fingerprint includes it.
		future := time.Now().Add(time.Second)
		_ = os.Chtimes(tmp, future, future)
		if err := os.Rename(tmp, dst); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.ReadFile(dst)
	if err != nil {
		t.Fatalf("the harness's CNI config: %v", err)
	}
	write(conf)
	t.Cleanup(func() { write(before) })
}
