package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// usrMerged maps a host path to its place in a merged-/usr Debian tree
// (bin, sbin, lib and lib64 are symlinks into usr there).
func usrMerged(p string) string {
	p = clean(p)
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return "usr/" + p
		}
	}
	return p
}

// debianPackages are the packages of debian:bookworm-slim (the base of
// glibc-dns-testing, and of nonroot through debian-base) whose programs the
// Debian stand-in copies from this Debian 12 host.
var debianPackages = []string{"base-files", "bash", "coreutils", "dash", "debianutils", "diffutils", "findutils",
	"grep", "gzip", "hostname", "libc-bin", "mawk", "sed", "tar"}

// debianBase stands in for debian:bookworm-slim: a merged-/usr tree with
// the programs of debianPackages taken from this Debian 12 host (glibc's
// hostname -f, coreutils' id, dash as /bin/sh), their libraries, the
// files base-files puts in /etc, and base-passwd's accounts.
func debianBase() (*layer, error) {
	l := newLayer()
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		l.dir("usr/"+d, 0o755)
		l.symlink(d, "usr/"+d)
	}
	for _, d := range []string{"boot", "dev", "etc", "home", "media", "mnt", "opt", "proc", "run", "srv", "sys",
		"usr/local/bin", "usr/share", "var/cache", "var/lib", "var/log", "var/mail", "var/spool"} {
		l.dir(d, 0o755)
	}
	l.dir("root", 0o700)
	l.dir("tmp", 0o1777)
	l.dir("var/tmp", 0o1777)
	l.symlink("var/run", "/run")
	for _, pkg := range debianPackages {
		out, err := exec.Command("dpkg-query", "-L", pkg).Output()
		if err != nil {
			return nil, fmt.Errorf("dpkg-query -L %s: %w", pkg, err)
		}
		for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			keep := strings.HasPrefix(f, "/etc/") || f == "/usr/lib/os-release"
			for _, d := range []string{"/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/"} {
				keep = keep || strings.HasPrefix(f, d)
			}
			if !keep {
				continue
			}
			if err := addDebianFile(l, f); err != nil {
				return nil, fmt.Errorf("%s: %w", pkg, err)
			}
		}
	}
	// Alternatives a package's scripts make (update-alternatives).
	l.symlink("usr/bin/awk", "mawk")
	l.symlink("usr/bin/nawk", "mawk")
	// What package scripts write at install: base-passwd's accounts,
	// libc-bin's nsswitch.conf ("hosts: files dns", so hostname -f reads
	// /etc/hosts first).
	for at, src := range map[string]string{
		"etc/passwd":        "/usr/share/base-passwd/passwd.master",
		"etc/group":         "/usr/share/base-passwd/group.master",
		"etc/nsswitch.conf": "/usr/share/libc-bin/nsswitch.conf",
	} {
		if err := l.copyFile(at, 0o644, src); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// addDebianFile copies one file a package owns: regular files with their
// libraries, symlinks as they are, directories skipped (made on demand).
func addDebianFile(l *layer, f string) error {
	fi, err := os.Lstat(f)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // a conffile the admin deleted, or a diverted file
		}
		return err
	}
	p := usrMerged(f)
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(f)
		if err != nil {
			return err
		}
		if strings.HasPrefix(target, "/") {
			target = "/" + usrMerged(target)
		}
		l.symlink(p, target)
	case fi.Mode().IsRegular():
		mode := int64(fi.Mode().Perm())
		if strings.HasPrefix(p, "etc/") || mode&0o111 == 0 {
			return l.copyFile(p, mode, f)
		}
		if fi.Mode()&os.ModeSetuid != 0 {
			mode |= 0o4000
		}
		if fi.Mode()&os.ModeSetgid != 0 {
			mode |= 0o2000
		}
		if err := l.copyFile(p, mode, f); err != nil {
			return err
		}
		libs, err := sharedLibs(f)
		if err != nil {
			return err
		}
		for _, lib := range libs {
			if !l.has(usrMerged(lib)) {
				if err := l.copyFile(usrMerged(lib), 0o755, lib); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
