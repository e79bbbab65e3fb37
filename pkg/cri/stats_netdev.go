package cri

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/network"
)

// netDev is one interface's counters from /proc/<pid>/net/dev.
type netDev struct {
	name                                    string
	rxBytes, rxPackets, rxErrors, rxDropped uint64
	txBytes, txPackets, txErrors, txDropped uint64
}

// usage is the interface as the CRI's stats report it.
func (d netDev) usage() *runtimeapi.NetworkInterfaceUsage {
	return &runtimeapi.NetworkInterfaceUsage{
		Name:     d.name,
		RxBytes:  &runtimeapi.UInt64Value{Value: d.rxBytes},
		RxErrors: &runtimeapi.UInt64Value{Value: d.rxErrors},
		TxBytes:  &runtimeapi.UInt64Value{Value: d.txBytes},
		TxErrors: &runtimeapi.UInt64Value{Value: d.txErrors},
	}
}

// readNetDev reads /proc/<pid>/net/dev: the interfaces of the process's
// network namespace, loopback left out (as cAdvisor leaves it out).
func readNetDev(pid int) ([]netDev, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("process %d: %w", pid, errdefs.ErrNotFound)
		}
		return nil, err
	}
	defer f.Close()
	return parseNetDev(f)
}

// readNetDevIn reads the interfaces of a pinned network namespace, from a
// thread that has entered it: /proc/thread-self/net/dev is the thread's
// namespace's (a pod without a pause has no process to read them through).
func readNetDevIn(netnsPath string) ([]netDev, error) {
	ns, err := network.LoadNetNS(netnsPath)
	if err != nil {
		return nil, err
	}
	var out []netDev
	err = ns.Do(func() error {
		data, err := os.ReadFile("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		out, err = parseNetDev(bytes.NewReader(data))
		return err
	})
	return out, err
}

// podNetDevs reads a pod's interfaces: through its pause, or its pinned
// netns when it has none.
func podNetDevs(sb *sandbox) ([]netDev, error) {
	if sb.Meta.NoPause {
		if sb.Meta.NetNSPath == "" {
			return nil, fmt.Errorf("pod sandbox %s has no network namespace: %w", sb.Meta.ID, errdefs.ErrNotFound)
		}
		return readNetDevIn(sb.Meta.NetNSPath)
	}
	pid := sb.Status().Pid
	if pid <= 0 {
		return nil, fmt.Errorf("pod sandbox %s has no pause: %w", sb.Meta.ID, errdefs.ErrNotFound)
	}
	return readNetDev(pid)
}

// parseNetDev parses the net/dev format: two header lines, then
// "name: rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed
// rx_multicast tx_bytes tx_packets tx_errs tx_drop …".
func parseNetDev(r io.Reader) ([]netDev, error) {
	var out []netDev
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue // a header line
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if len(f) < 12 {
			return nil, fmt.Errorf("net/dev: short line for %s", name)
		}
		d := netDev{name: name}
		for idx, dst := range map[int]*uint64{
			0: &d.rxBytes, 1: &d.rxPackets, 2: &d.rxErrors, 3: &d.rxDropped,
			8: &d.txBytes, 9: &d.txPackets, 10: &d.txErrors, 11: &d.txDropped,
		} {
			n, err := strconv.ParseUint(f[idx], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net/dev: %s: %w", name, err)
			}
			*dst = n
		}
		if name == "lo" {
			continue
		}
		out = append(out, d)
	}
	return out, sc.Err()
}
