package cri

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func unixSignalName(s syscall.Signal) string { return unix.SignalName(s) }
