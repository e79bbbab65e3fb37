package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// skeleton adds the directories and account files every image has.
func skeleton(l *layer) {
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "sys", "usr/bin", "usr/sbin", "usr/local/bin", "var/run", "var/www"} {
		l.dir(d, 0o755)
	}
	l.dir("root", 0o700)
	l.dir("tmp", 0o1777)
	l.dir("var/tmp", 0o1777)
	l.file("etc/passwd", 0o644, []byte(passwd))
	l.file("etc/group", 0o644, []byte(group))
}

// dynamicBusybox is the base of the critest images: Debian's dynamic busybox
// with every applet a hard link in /bin (critest's MaskedPaths spec masks
// /bin/ls and expects /bin/sh to fail exec'ing it, which a standalone shell
// running applets in-process would not do), the host's glibc libraries it
// links, and static ipcs and pgrep, which Debian's busybox lacks.
func dynamicBusybox(in inputs) (*layer, error) {
	l := newLayer()
	skeleton(l)
	bb := filepath.Join(in.busyboxRoot, "bin", "busybox")
	if err := l.copyFile("bin/busybox", 0o755, bb); err != nil {
		return nil, err
	}
	applets, err := appletList(bb)
	if err != nil {
		return nil, err
	}
	for _, a := range applets {
		l.hardlink("bin/"+a, "bin/busybox")
	}
	libs, err := sharedLibs(bb)
	if err != nil {
		return nil, err
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("%s is not a dynamic program", bb)
	}
	for _, lib := range libs {
		if err := l.copyFile(lib, 0o755, lib); err != nil {
			return nil, err
		}
	}
	for _, h := range []string{"ipcs", "pgrep"} {
		if err := l.copyFile("bin/"+h, 0o755, in.helper(h)); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// staticBusybox is docker.io/library/busybox: Debian's busybox-static.
func staticBusybox(in inputs) (*layer, error) {
	l := newLayer()
	skeleton(l)
	if err := l.copyFile("bin/busybox", 0o755, in.busyboxStatic); err != nil {
		return nil, err
	}
	applets, err := appletList(in.busyboxStatic)
	if err != nil {
		return nil, err
	}
	for _, a := range applets {
		l.hardlink("bin/"+a, "bin/busybox")
	}
	return l, nil
}

// appletList asks a busybox binary for its applets.
func appletList(bb string) ([]string, error) {
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bb, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	if len(applets) < 50 {
		return nil, fmt.Errorf("%s lists only %d applets", bb, len(applets))
	}
	return applets, nil
}
