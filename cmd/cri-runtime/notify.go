package main

import (
	"net"
	"os"

	"k8s.io/klog/v2"
)

// notifier speaks systemd's sd_notify protocol (Type=notify): a datagram
// of "KEY=value" lines to the unix socket NOTIFY_SOCKET names.
//
// It does what go-systemd's daemon.SdNotify does, except that it takes the
// socket out of the environment once, at start, before the daemon spawns
// anything: SdNotify reads the variable at every call, so it would have to
// stay in the environment until READY=1, and every shim, runc and CNI
// plugin started before then would inherit it. runc treats an inherited
// NOTIFY_SOCKET as the container's: `runc start` then waits for the
// container to send READY=1.
type notifier struct {
	addr string // "" when not started by systemd with Type=notify
}

// takeNotifySocket reads NOTIFY_SOCKET and unsets it.
func takeNotifySocket() *notifier {
	n := &notifier{addr: os.Getenv("NOTIFY_SOCKET")}
	os.Unsetenv("NOTIFY_SOCKET")
	return n
}

// notify sends state; without a socket it does nothing. A failure is
// logged, never fatal: the daemon works without systemd.
func (n *notifier) notify(logger klog.Logger, state string) {
	if n == nil || n.addr == "" {
		return
	}
	// A leading '@' is an abstract socket; Go's unix addresses say so too.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		logger.Error(err, "Could not notify systemd", "state", state)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		logger.Error(err, "Could not notify systemd", "state", state)
	}
}
