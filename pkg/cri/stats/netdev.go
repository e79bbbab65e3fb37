package stats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// NetDev is one interface's counters from /proc/<pid>/net/dev.
type NetDev struct {
	name                                    string
	rxBytes, rxPackets, rxErrors, rxDropped uint64
	txBytes, txPackets, txErrors, txDropped uint64
}

// usage is the interface as the CRI's stats report it.
func (d NetDev) usage() *runtimeapi.NetworkInterfaceUsage {
	return &runtimeapi.NetworkInterfaceUsage{
		Name:     d.name,
		RxBytes:  &runtimeapi.UInt64Value{Value: d.rxBytes},
		RxErrors: &runtimeapi.UInt64Value{Value: d.rxErrors},
		TxBytes:  &runtimeapi.UInt64Value{Value: d.txBytes},
		TxErrors: &runtimeapi.UInt64Value{Value: d.txErrors},
	}
}

// ReadNetDev reads /proc/<pid>/net/dev: the interfaces of the process's
// network namespace, loopback left out (as cAdvisor leaves it out).
func ReadNetDev(pid int) ([]NetDev, error) {
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

// ReadThreadNetDev reads /proc/thread-self/net/dev: the interfaces of the
// calling thread's network namespace, for a thread that has entered a
// pinned one (a pod without a pause has no process to read them through).
func ReadThreadNetDev() ([]NetDev, error) {
	data, err := os.ReadFile("/proc/thread-self/net/dev")
	if err != nil {
		return nil, err
	}
	return parseNetDev(bytes.NewReader(data))
}

// NetworkUsage is a pod's interfaces as PodSandboxStats reports them:
// eth0, which CNI plugins create, as the default interface.
func NetworkUsage(devs []NetDev, at time.Time) *runtimeapi.NetworkUsage {
	out := &runtimeapi.NetworkUsage{Timestamp: at.UnixNano()}
	for _, d := range devs {
		if d.name == defaultInterface {
			out.DefaultInterface = d.usage()
			continue
		}
		out.Interfaces = append(out.Interfaces, d.usage())
	}
	return out
}

// defaultInterface is the pod interface CNI plugins create, reported as the
// network's default interface.
const defaultInterface = "eth0"

// parseNetDev parses the net/dev format: two header lines, then
// "name: rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed
// rx_multicast tx_bytes tx_packets tx_errs tx_drop …".
func parseNetDev(r io.Reader) ([]NetDev, error) {
	var out []NetDev
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
		d := NetDev{name: name}
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
