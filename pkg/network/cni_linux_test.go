package network

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2/ktesting"

	"github.com/cri-runtime/cri-runtime/internal/testutil"
)

// Integration tests against Debian's containernetworking-plugins. Each test
// has its own conf dir, bridge, subnet, host-local data dir, cache dir and
// netns dir; t.Cleanup removes all of it even when the test fails.

var pluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges and iptables rules")
	}
}

func requirePlugins(t *testing.T) {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		found := false
		for _, d := range pluginDirs {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				found = true
			}
		}
		if !found {
			t.Skipf("CNI plugin %q not in %v: apt-get install containernetworking-plugins (hack/install-deps.sh)", p, pluginDirs)
		}
	}
	for _, b := range []string{"iptables-save", "iptables-restore", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed", b)
		}
	}
}

type testNet struct {
	name     string // CNI network name, also the marker in iptables comments
	bridge   string
	subnet   string // a /24 in 10.2xx
	gateway  string
	confDir  string
	dataDir  string
	netnsDir string
	m        *Manager
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	requireRoot(t)
	requirePlugins(t)
	id := testutil.RandHex(t, 4)
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	tn := &testNet{
		name:     "crt-" + id,
		bridge:   "crt" + id,
		subnet:   fmt.Sprintf("10.%d.%d.0/24", 200+int(b[0])%50, b[1]),
		confDir:  filepath.Join(base, "net.d"),
		dataDir:  filepath.Join(base, "ipam"),
		netnsDir: filepath.Join(base, "netns"),
	}
	tn.gateway = strings.TrimSuffix(tn.subnet, "0/24") + "1"
	t.Cleanup(func() { tn.cleanup(t) })
	tn.writeConf(t)
	m, err := New(Config{
		ConfDir:  tn.confDir,
		BinDirs:  pluginDirs,
		CacheDir: filepath.Join(base, "cache"),
		NetNSDir: tn.netnsDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	tn.m = m
	return tn
}

func (tn *testNet) writeConf(t *testing.T) {
	t.Helper()
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}`, tn.name, tn.bridge, tn.dataDir, tn.subnet)
	if err := os.MkdirAll(tn.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tn.confDir, "10-test.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newNS pins a namespace in the test's netns dir, removed at cleanup.
func (tn *testNet) newNS(t *testing.T) *NetNS {
	t.Helper()
	ns, err := NewNetNS(tn.netnsDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Remove() })
	return ns
}

func (tn *testNet) setup(t *testing.T, ctx context.Context, id string, ns *NetNS, pms ...PortMapping) *Result {
	t.Helper()
	res, err := tn.m.Setup(ctx, SetupRequest{ID: id, NetNS: ns.Path(), Name: "pod-" + id, Namespace: "default", UID: "uid-" + id, PortMappings: pms})
	if err != nil {
		t.Fatalf("Setup(%s): %v", id, err)
	}
	if len(res.IPs) == 0 || !res.IPs[0].Is4() {
		t.Fatalf("Setup(%s) gave no IPv4: %+v", id, res)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].Name != DefaultIfName {
		t.Fatalf("Setup(%s) interfaces = %+v", id, res.Interfaces)
	}
	return res
}

// cleanup removes whatever the plugins may have left: rules and chains
// whose comment names our network, the bridge, the netns mounts, the dirs.
func (tn *testNet) cleanup(t *testing.T) {
	if out, err := exec.Command("iptables-save").Output(); err == nil {
		if restore := testutil.IPTablesCleanup(string(out), tn.name); restore != "" {
			cmd := exec.Command("iptables-restore", "--noflush", "-w")
			cmd.Stdin = strings.NewReader(restore)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Logf("cleanup iptables: %v: %s\n%s", err, out, restore)
			}
		}
	}
	_ = exec.Command("ip", "link", "del", tn.bridge).Run()
	if entries, err := os.ReadDir(tn.netnsDir); err == nil {
		for _, e := range entries {
			_ = unix.Unmount(filepath.Join(tn.netnsDir, e.Name()), unix.MNT_DETACH)
		}
	}
	unmountAll(tn.netnsDir)
}

// unmountAll unmounts every mount stacked on dir.
func unmountAll(dir string) {
	for i := 0; i < 100 && unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW) == nil; i++ {
	}
}

// assertClean checks that nothing of ids is left on the host: no iptables
// rule naming them, no veth on the bridge, no host-local reservation, no
// cache entry, no netns mount.
func (tn *testNet) assertClean(t *testing.T, ids ...string) {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		for _, id := range ids {
			if strings.Contains(line, id) {
				t.Errorf("iptables rule left for %s: %s", id, line)
			}
		}
		if strings.Contains(line, tn.name) {
			t.Errorf("iptables rule left for network %s: %s", tn.name, line)
		}
	}
	if ports, err := os.ReadDir(filepath.Join("/sys/class/net", tn.bridge, "brif")); err == nil && len(ports) > 0 {
		var names []string
		for _, p := range ports {
			names = append(names, p.Name())
		}
		t.Errorf("veths left on bridge %s: %v", tn.bridge, names)
	}
	if entries, err := os.ReadDir(filepath.Join(tn.dataDir, tn.name)); err == nil {
		for _, e := range entries {
			if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
				data, _ := os.ReadFile(filepath.Join(tn.dataDir, tn.name, e.Name()))
				t.Errorf("host-local reservation left: %s (%q)", e.Name(), data)
			}
		}
	}
	for _, id := range ids {
		atts, err := tn.m.cni.GetCachedAttachments(id)
		if err != nil || len(atts) != 0 {
			t.Errorf("cni cache left for %s: %d entries, %v", id, len(atts), err)
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], tn.netnsDir+"/") {
			t.Errorf("netns mount left: %s", f[4])
		}
	}
	if entries, err := os.ReadDir(tn.netnsDir); err == nil && len(entries) > 0 {
		t.Errorf("netns files left: %d", len(entries))
	}
}

// listenIn starts a TCP echo-ish server inside ns: it writes reply to each
// connection and closes it. It is stopped at cleanup.
func listenIn(t *testing.T, ns *NetNS, addr, reply string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, reply)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln
}

func readFrom(addr string) (string, error) {
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestNetNSLifecycle(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() { unmountAll(dir) })
	ns, err := NewNamedNetNS(dir, "one")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Remove() })
	if _, err := NewNamedNetNS(dir, "one"); err == nil {
		t.Fatal("second NewNamedNetNS with the same name succeeded")
	}
	if _, err := NewNamedNetNS(dir, "../escape"); err == nil {
		t.Fatal("NewNamedNetNS accepted a name with a slash")
	}

	var inside, outside uint64
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	outside = st.Ino
	if err := ns.Do(func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		inside = st.Ino
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		if len(ifs) != 1 || ifs[0].Name != "lo" {
			return fmt.Errorf("new netns has interfaces %v", ifs)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(ns.Path(), &st); err != nil || st.Ino != inside || inside == outside {
		t.Fatalf("Do ran in ns %d, pinned file is %d (%v), host is %d", inside, st.Ino, err, outside)
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil || st.Ino != outside {
		t.Fatalf("caller's thread left in ns %d", st.Ino)
	}

	// Survives the process that created it: a child process pins one and
	// exits; we load and use it from its path.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPinNetNS$")
	cmd.Env = append(os.Environ(), "CRT_PIN_NETNS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	pinned, err := LoadNetNS(filepath.Join(dir, "from-child"))
	if err != nil {
		t.Fatalf("LoadNetNS after the creator exited: %v", err)
	}
	t.Cleanup(func() { _ = pinned.Remove() })
	if err := pinned.Do(func() error {
		ifs, err := net.Interfaces()
		if err != nil || len(ifs) != 1 {
			return fmt.Errorf("interfaces %v, %v", ifs, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	for i := 0; i < 2; i++ { // idempotent
		if err := ns.Remove(); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if _, err := LoadNetNS(ns.Path()); err == nil {
		t.Fatal("LoadNetNS of a removed netns succeeded")
	}
	// A plain file is not a netns.
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNetNS(plain); err == nil {
		t.Fatal("LoadNetNS of a plain file succeeded")
	}
}

// TestHelperPinNetNS is run as a child process by TestNetNSLifecycle.
func TestHelperPinNetNS(t *testing.T) {
	dir := os.Getenv("CRT_PIN_NETNS_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	if _, err := NewNamedNetNS(dir, "from-child"); err != nil {
		t.Fatal(err)
	}
}

func TestSetupPingAndConnect(t *testing.T) {
	tn := newTestNet(t)
	_, ctx := ktesting.NewTestContext(t)
	a, b := tn.newNS(t), tn.newNS(t)
	idA, idB := "crt-a-"+testutil.RandHex(t, 6), "crt-b-"+testutil.RandHex(t, 6)
	resA := tn.setup(t, ctx, idA, a)
	resB := tn.setup(t, ctx, idB, b)
	t.Cleanup(func() {
		_ = tn.m.Teardown(context.Background(), SetupRequest{ID: idA, NetNS: a.Path()})
		_ = tn.m.Teardown(context.Background(), SetupRequest{ID: idB, NetNS: b.Path()})
	})
	if resA.PrimaryIP() == resB.PrimaryIP() {
		t.Fatalf("both namespaces got %s", resA.PrimaryIP())
	}

	if out, err := exec.Command("ping", "-c1", "-W2", resA.PrimaryIP()).CombinedOutput(); err != nil {
		t.Fatalf("ping %s from the host: %v\n%s", resA.PrimaryIP(), err, out)
	}

	// Host → A, and B → A over the bridge.
	listenIn(t, a, ":8080", "hello from a")
	if got, err := readFrom(net.JoinHostPort(resA.PrimaryIP(), "8080")); err != nil || got != "hello from a" {
		t.Fatalf("host → a: %q, %v", got, err)
	}
	var got string
	if err := b.Do(func() error {
		var err error
		got, err = readFrom(net.JoinHostPort(resA.PrimaryIP(), "8080"))
		return err
	}); err != nil || got != "hello from a" {
		t.Fatalf("b → a: %q, %v", got, err)
	}

	// CHECK passes on a healthy attachment; CachedResult reports the IPs.
	if err := tn.m.Status(ctx, SetupRequest{ID: idA, NetNS: a.Path()}); err != nil {
		t.Fatalf("Status: %v", err)
	}
	if cached, err := tn.m.CachedResult(idA); err != nil || cached.PrimaryIP() != resA.PrimaryIP() {
		t.Fatalf("CachedResult = %+v, %v", cached, err)
	}

	for _, x := range []struct {
		id string
		ns *NetNS
	}{{idA, a}, {idB, b}} {
		if err := tn.m.Teardown(ctx, SetupRequest{ID: x.id, NetNS: x.ns.Path()}); err != nil {
			t.Fatal(err)
		}
		if err := x.ns.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	tn.assertClean(t, idA, idB)
}

func TestHostPort(t *testing.T) {
	tn := newTestNet(t)
	_, ctx := ktesting.NewTestContext(t)
	ns := tn.newNS(t)
	id := "crt-hp-" + testutil.RandHex(t, 6)
	hostPort := 30000 + int32(time.Now().UnixNano()%20000)
	res := tn.setup(t, ctx, id, ns, PortMapping{ContainerPort: 8080, HostPort: hostPort, Protocol: "TCP"})
	t.Cleanup(func() { _ = tn.m.Teardown(context.Background(), SetupRequest{ID: id, NetNS: ns.Path()}) })
	listenIn(t, ns, ":8080", "via hostport")

	// portmap DNATs locally generated traffic to any local address (the
	// OUTPUT chain, --dst-type LOCAL); the bridge's gateway address is one
	// that exists only because of this test. 127.0.0.1 works too when the
	// plugin's SNAT for localhost is on (its default): it sets
	// route_localnet on the bridge.
	for _, host := range []string{tn.gateway, "127.0.0.1"} {
		addr := net.JoinHostPort(host, fmt.Sprint(hostPort))
		if got, err := readFrom(addr); err != nil || got != "via hostport" {
			t.Errorf("connect %s (→ %s:8080): %q, %v", addr, res.PrimaryIP(), got, err)
		}
	}
	out, _ := exec.Command("iptables-save", "-t", "nat").Output()
	if !strings.Contains(string(out), id) {
		t.Errorf("no portmap rule names %s:\n%s", id, out)
	}

	if err := tn.m.Teardown(ctx, SetupRequest{ID: id, NetNS: ns.Path()}); err != nil {
		t.Fatal(err)
	}
	if _, err := readFrom(net.JoinHostPort(tn.gateway, fmt.Sprint(hostPort))); err == nil {
		t.Error("hostPort still forwards after Teardown")
	}
	if err := ns.Remove(); err != nil {
		t.Fatal(err)
	}
	tn.assertClean(t, id)
}

func TestTeardownIdempotent(t *testing.T) {
	t.Run("twice", func(t *testing.T) {
		tn := newTestNet(t)
		_, ctx := ktesting.NewTestContext(t)
		ns := tn.newNS(t)
		id := "crt-tw-" + testutil.RandHex(t, 6)
		tn.setup(t, ctx, id, ns, PortMapping{ContainerPort: 80, HostPort: 30080})
		for i := 0; i < 2; i++ {
			if err := tn.m.Teardown(ctx, SetupRequest{ID: id, NetNS: ns.Path()}); err != nil {
				t.Fatalf("Teardown #%d: %v", i+1, err)
			}
		}
		if err := ns.Remove(); err != nil {
			t.Fatal(err)
		}
		tn.assertClean(t, id)
	})

	t.Run("netns already removed", func(t *testing.T) {
		tn := newTestNet(t)
		_, ctx := ktesting.NewTestContext(t)
		ns := tn.newNS(t)
		id := "crt-nn-" + testutil.RandHex(t, 6)
		tn.setup(t, ctx, id, ns, PortMapping{ContainerPort: 80, HostPort: 30081})
		if err := ns.Remove(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := tn.m.Teardown(ctx, SetupRequest{ID: id, NetNS: ns.Path()}); err != nil {
				t.Fatalf("Teardown #%d: %v", i+1, err)
			}
		}
		tn.assertClean(t, id)
	})

	t.Run("conf dir emptied and daemon restarted", func(t *testing.T) {
		tn := newTestNet(t)
		_, ctx := ktesting.NewTestContext(t)
		ns := tn.newNS(t)
		id := "crt-cd-" + testutil.RandHex(t, 6)
		res := tn.setup(t, ctx, id, ns, PortMapping{ContainerPort: 80, HostPort: 30082})
		if err := os.RemoveAll(tn.confDir); err != nil {
			t.Fatal(err)
		}
		// A new Manager over the same dirs stands for a restarted daemon;
		// the netns is found again by its path.
		m2, err := New(tn.m.Config())
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Ready(); err == nil {
			t.Fatal("Ready() with no config")
		}
		if cached, err := m2.CachedResult(id); err != nil || cached.PrimaryIP() != res.PrimaryIP() {
			t.Fatalf("CachedResult after restart = %+v, %v", cached, err)
		}
		loaded, err := LoadNetNS(ns.Path())
		if err != nil {
			t.Fatal(err)
		}
		tn.m = m2
		for i := 0; i < 2; i++ {
			if err := m2.Teardown(ctx, SetupRequest{ID: id, NetNS: loaded.Path()}); err != nil {
				t.Fatalf("Teardown #%d: %v", i+1, err)
			}
		}
		if err := loaded.Remove(); err != nil {
			t.Fatal(err)
		}
		tn.assertClean(t, id)
	})

	t.Run("never set up", func(t *testing.T) {
		tn := newTestNet(t)
		_, ctx := ktesting.NewTestContext(t)
		id := "crt-ns-" + testutil.RandHex(t, 6)
		if err := tn.m.Teardown(ctx, SetupRequest{ID: id, NetNS: filepath.Join(tn.netnsDir, "gone")}); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(tn.confDir); err != nil {
			t.Fatal(err)
		}
		if err := tn.m.Teardown(ctx, SetupRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
		tn.assertClean(t, id)
	})
}

// TestSetupFailureUndone: an ADD that fails in the middle of the chain
// (portmap's hostPort conflicts with nothing, so break the chain with a
// plugin that does not exist) leaves nothing behind.
func TestSetupFailureUndone(t *testing.T) {
	tn := newTestNet(t)
	_, ctx := ktesting.NewTestContext(t)
	conf, err := os.ReadFile(filepath.Join(tn.confDir, "10-test.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(conf), `{"type": "loopback"}`, `{"type": "loopback"}, {"type": "crt-no-such-plugin"}`, 1)
	if err := os.WriteFile(filepath.Join(tn.confDir, "10-test.conflist"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := tn.newNS(t)
	id := "crt-fail-" + testutil.RandHex(t, 6)
	if _, err := tn.m.Setup(ctx, SetupRequest{ID: id, NetNS: ns.Path(), PortMappings: []PortMapping{{ContainerPort: 80, HostPort: 30083}}}); err == nil {
		t.Fatal("Setup with a missing plugin succeeded")
	} else if !strings.Contains(err.Error(), "crt-no-such-plugin") {
		t.Fatalf("Setup error does not name the plugin: %v", err)
	}
	if err := ns.Do(func() error {
		if _, err := net.InterfaceByName(DefaultIfName); err == nil {
			return fmt.Errorf("%s left in the netns", DefaultIfName)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if err := ns.Remove(); err != nil {
		t.Fatal(err)
	}
	tn.assertClean(t, id)
}

func TestParallelSetupTeardown(t *testing.T) {
	tn := newTestNet(t)
	_, ctx := ktesting.NewTestContext(t)
	const n = 20
	ids := make([]string, n)
	nss := make([]*NetNS, n)
	ips := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("crt-par%02d-%s", i, testutil.RandHex(t, 4))
	}
	run := func(f func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = f(i) }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s: %v", ids[i], err)
			}
		}
	}
	run(func(i int) error {
		ns, err := NewNetNS(tn.netnsDir)
		if err != nil {
			return err
		}
		nss[i] = ns
		res, err := tn.m.Setup(ctx, SetupRequest{ID: ids[i], NetNS: ns.Path(), Name: ids[i], Namespace: "par",
			PortMappings: []PortMapping{{ContainerPort: 80, HostPort: int32(31000 + i)}}})
		if err != nil {
			return err
		}
		ips[i] = res.PrimaryIP()
		return nil
	})
	seen := map[string]bool{}
	for i, ip := range ips {
		if ip == "" {
			continue
		}
		if seen[ip] {
			t.Errorf("%s got duplicate IP %s", ids[i], ip)
		}
		seen[ip] = true
	}
	if ports, err := os.ReadDir(filepath.Join("/sys/class/net", tn.bridge, "brif")); err != nil || len(ports) != n {
		t.Errorf("bridge has %d ports, want %d (%v)", len(ports), n, err)
	}
	run(func(i int) error {
		if nss[i] == nil {
			return nil
		}
		if err := tn.m.Teardown(ctx, SetupRequest{ID: ids[i], NetNS: nss[i].Path()}); err != nil {
			return err
		}
		return nss[i].Remove()
	})
	tn.assertClean(t, ids...)
}

// TestNewNetNSHasLoopbackUp: lo is up in every pinned namespace, so
// 127.0.0.1 answers in pods whose CNI chain has no loopback plugin
// (Flannel's, Calico's, Cilium's).
func TestNewNetNSHasLoopbackUp(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() { unmountAll(dir) })
	ns, err := NewNamedNetNS(dir, "lo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Remove() })
	if err := ns.Do(func() error {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		if lo.Flags&net.FlagUp == 0 {
			return fmt.Errorf("lo is down: flags %v", lo.Flags)
		}
		// The listener's socket stays in the namespace; dial from here too.
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				_, _ = c.Write([]byte("hello"))
				c.Close()
			}
		}()
		got, err := readFrom(ln.Addr().String())
		if err != nil {
			return fmt.Errorf("127.0.0.1 does not answer: %w", err)
		}
		if got != "hello" {
			return fmt.Errorf("read %q over loopback, want hello", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
