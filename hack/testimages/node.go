package main

// The images the upstream node conformance suite (e2e_node.test of
// Kubernetes, k8s.io/kubernetes/test/utils/image/manifest.go) pulls, built
// as stand-ins for the upstream images: same names, entrypoints, users,
// files and the programs its specs run (see docs/testing.md, "The node e2e
// images", for which spec needs what).

import (
	"fmt"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// busyboxUpstream is e2e-test-images/busybox:1.37.0-2, a mirror of Docker's
// library busybox:1.37.0: busybox built from source with every applet
// (defconfig), each a hard link in /bin (specs run /bin/sysctl, /bin/top,
// /bin/sleep by path), and buildroot's account files, as that image has.
func busyboxUpstream(in inputs) (*layer, error) {
	l := newLayer()
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "sys", "usr/sbin", "var/spool/mail", "var/www"} {
		l.dir(d, 0o755)
	}
	l.dir("root", 0o700)
	l.dir("tmp", 0o1777)
	if err := l.copyFile("bin/busybox", 0o755, in.busybox); err != nil {
		return nil, err
	}
	applets, err := appletList(in.busybox)
	if err != nil {
		return nil, err
	}
	for _, a := range applets {
		l.hardlink("bin/"+a, "bin/busybox")
	}
	l.file("etc/passwd", 0o644, []byte(buildrootPasswd))
	l.file("etc/group", 0o644, []byte(buildrootGroup))
	l.file("etc/shadow", 0o600, []byte(shadowFor(buildrootPasswd)))
	return l, nil
}

// buildroot's skeleton accounts (system/skeleton/etc), which Docker's
// busybox image ships.
const (
	buildrootPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
		"bin:x:2:2:bin:/bin:/bin/false\n" +
		"sys:x:3:3:sys:/dev:/bin/false\n" +
		"sync:x:4:100:sync:/bin:/bin/sync\n" +
		"mail:x:8:8:mail:/var/spool/mail:/bin/false\n" +
		"www-data:x:33:33:www-data:/var/www:/bin/false\n" +
		"operator:x:37:37:Operator:/var:/bin/false\n" +
		"nobody:x:65534:65534:nobody:/home:/bin/false\n"
	buildrootGroup = "root:x:0:\n" +
		"daemon:x:1:\n" +
		"bin:x:2:\n" +
		"sys:x:3:\n" +
		"adm:x:4:\n" +
		"tty:x:5:\n" +
		"disk:x:6:\n" +
		"lp:x:7:\n" +
		"mail:x:8:\n" +
		"kmem:x:9:\n" +
		"wheel:x:10:root\n" +
		"cdrom:x:11:\n" +
		"dialout:x:18:\n" +
		"floppy:x:19:\n" +
		"video:x:28:\n" +
		"audio:x:29:\n" +
		"tape:x:32:\n" +
		"www-data:x:33:\n" +
		"operator:x:37:\n" +
		"utmp:x:43:\n" +
		"plugdev:x:46:\n" +
		"staff:x:50:\n" +
		"lock:x:54:\n" +
		"netdev:x:82:\n" +
		"users:x:100:\n" +
		"nobody:x:65534:\n"
)

// Alpine's accounts (alpine-baselayout), the base of agnhost, nginx,
// nonewprivs and ipc-utils upstream. Root's supplementary groups come from
// here when a container runs as root, so they are copied as they are.
const (
	alpinePasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"bin:x:1:1:bin:/bin:/sbin/nologin\n" +
		"daemon:x:2:2:daemon:/sbin:/sbin/nologin\n" +
		"lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin\n" +
		"sync:x:5:0:sync:/sbin:/bin/sync\n" +
		"shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown\n" +
		"halt:x:7:0:halt:/sbin:/sbin/halt\n" +
		"mail:x:8:12:mail:/var/mail:/sbin/nologin\n" +
		"news:x:9:13:news:/usr/lib/news:/sbin/nologin\n" +
		"uucp:x:10:14:uucp:/var/spool/uucppublic:/sbin/nologin\n" +
		"cron:x:16:16:cron:/var/spool/cron:/sbin/nologin\n" +
		"ftp:x:21:21::/var/lib/ftp:/sbin/nologin\n" +
		"sshd:x:22:22:sshd:/dev/null:/sbin/nologin\n" +
		"games:x:35:35:games:/usr/games:/sbin/nologin\n" +
		"ntp:x:123:123:NTP:/var/empty:/sbin/nologin\n" +
		"guest:x:405:100:guest:/dev/null:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/:/sbin/nologin\n"
	alpineGroup = "root:x:0:root\n" +
		"bin:x:1:root,bin,daemon\n" +
		"daemon:x:2:root,bin,daemon\n" +
		"sys:x:3:root,bin\n" +
		"adm:x:4:root,daemon\n" +
		"tty:x:5:\n" +
		"disk:x:6:root\n" +
		"lp:x:7:lp\n" +
		"kmem:x:9:\n" +
		"wheel:x:10:root\n" +
		"floppy:x:11:root\n" +
		"mail:x:12:mail\n" +
		"news:x:13:news\n" +
		"uucp:x:14:uucp\n" +
		"cron:x:16:cron\n" +
		"console:x:17:\n" +
		"audio:x:18:\n" +
		"cdrom:x:19:\n" +
		"dialout:x:20:root\n" +
		"ftp:x:21:\n" +
		"sshd:x:22:\n" +
		"input:x:23:\n" +
		"tape:x:26:root\n" +
		"video:x:27:root\n" +
		"netdev:x:28:\n" +
		"kvm:x:34:kvm\n" +
		"games:x:35:\n" +
		"shadow:x:42:\n" +
		"www-data:x:82:\n" +
		"users:x:100:games\n" +
		"ntp:x:123:\n" +
		"abuild:x:300:\n" +
		"utmp:x:406:\n" +
		"ping:x:999:\n" +
		"nogroup:x:65533:\n" +
		"nobody:x:65534:\n"
)

// shadowFor gives every account of a passwd file a locked password.
func shadowFor(passwd string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(passwd), "\n") {
		user, _, _ := strings.Cut(line, ":")
		fmt.Fprintf(&b, "%s:*:19000:0:99999:7:::\n", user)
	}
	return b.String()
}

// alpineBase stands in for alpine:3.2x: the same busybox 1.37.0 (Alpine's
// is 1.37.0 too), its applets installed as Alpine installs them (absolute
// symlinks to /bin/busybox at each applet's own path: /bin/sh, /sbin/ip,
// /usr/bin/nc, ...), Alpine's directory tree and accounts. musl is not
// there: the programs added on top are the host's glibc builds with their
// libraries (hostProgram).
func alpineBase(in inputs) (*layer, error) {
	l := newLayer()
	for _, d := range []string{"bin", "dev", "etc", "home", "lib", "media/cdrom", "media/floppy", "media/usb", "mnt", "opt",
		"proc", "run", "sbin", "srv", "sys", "usr/bin", "usr/lib", "usr/local/bin", "usr/local/lib", "usr/local/share",
		"usr/sbin", "usr/share", "var/cache", "var/empty", "var/lib", "var/local", "var/log", "var/mail", "var/opt",
		"var/spool/cron"} {
		l.dir(d, 0o755)
	}
	l.dir("root", 0o700)
	l.dir("tmp", 0o1777)
	l.dir("var/tmp", 0o1777)
	l.symlink("var/run", "/run")
	l.symlink("var/spool/mail", "../mail")
	if err := l.copyFile("bin/busybox", 0o755, in.busybox); err != nil {
		return nil, err
	}
	out, err := exec.Command(in.busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", in.busybox, err)
	}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		if p == "bin/busybox" || path.Base(p) == "linuxrc" {
			continue
		}
		l.symlink(p, "/bin/busybox")
		n++
	}
	if n < 300 {
		return nil, fmt.Errorf("%s --list-full lists only %d applets", in.busybox, n)
	}
	l.file("etc/passwd", 0o644, []byte(alpinePasswd))
	l.file("etc/group", 0o644, []byte(alpineGroup))
	l.file("etc/shadow", 0o640, []byte(shadowFor(alpinePasswd)))
	l.chown("etc/shadow", 0, 42)
	l.file("etc/shells", 0o644, []byte("# valid login shells\n/bin/sh\n/bin/ash\n"))
	return l, nil
}

// agnhostLayer is what agnhost's Dockerfile adds to alpine: /agnhost (the
// entrypoint, CMD pause) and the agnhost-2 symlink the entrypoint specs run,
// /uploads (netexec), porter's localhost.crt and .key, the account
// user-defined-in-image (1000) in group-defined-in-image (50000), the fake
// registry's /var/registry, and the packages' programs the specs run:
// bash (probe scripts run /bin/bash -c), curl (lifecycle hooks and the
// networking specs), OpenBSD nc (`nc -w 1 -u` in the networking specs;
// busybox's nc has no -u), iproute2's ip and ss, util-linux's ipcs.
func agnhostLayer(in inputs, registry map[string]v1.ImageIndex) (*layer, error) {
	l := newLayer()
	if err := l.copyFile("agnhost", 0o755, in.agnhost); err != nil {
		return nil, err
	}
	l.symlink("agnhost-2", "agnhost")
	l.dir("uploads", 0o755)
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		if err := l.copyFile(f, 0o644, filepath.Join(in.kubeSrc, "test/images/agnhost/porter", f)); err != nil {
			return nil, fmt.Errorf("agnhost: %w (k8s.io/kubernetes source, -kube-src)", err)
		}
	}
	for _, pr := range []struct{ at, host string }{
		{"bin/bash", "/bin/bash"},
		{"usr/bin/curl", "/usr/bin/curl"},
		{"usr/bin/nc", "/bin/nc.openbsd"},
		{"sbin/ip", "/bin/ip"},
		{"usr/sbin/ss", "/bin/ss"},
		{"usr/bin/ipcs", "/usr/bin/ipcs"},
		{"usr/bin/ipcmk", "/usr/bin/ipcmk"},
		{"usr/bin/ipcrm", "/usr/bin/ipcrm"},
	} {
		if err := l.hostProgram(pr.at, pr.host, nil); err != nil {
			return nil, fmt.Errorf("agnhost: %w", err)
		}
	}
	// adduser -u 1000 -D user-defined-in-image; addgroup -g 50000
	// group-defined-in-image; addgroup user-defined-in-image group-defined-in-image
	l.file("etc/passwd", 0o644, []byte(alpinePasswd+"user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh\n"))
	l.file("etc/group", 0o644, []byte(alpineGroup+"user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"))
	l.file("etc/shadow", 0o640, []byte(shadowFor(alpinePasswd)+"user-defined-in-image:!:19000:0:99999:7:::\n"))
	l.chown("etc/shadow", 0, 42)
	l.dir("home/user-defined-in-image", 0o2755)
	l.chown("home/user-defined-in-image", 1000, 1000)
	l.dir("var/registry", 0o755)
	if err := fakeRegistry(l, "var/registry", registry); err != nil {
		return nil, fmt.Errorf("agnhost /var/registry: %w", err)
	}
	return l, nil
}

// fakeRegistry lays out images as agnhost's fake-registry-server serves
// them from /var/registry (test/images/agnhost/fakeregistryserver, filled
// upstream by prepare_registry.sh from images.txt: "pause 3.10.2 testing"):
// <name>/manifests/<tag> holds the index digest; manifests and blobs sit at
// <name>/{manifests,blobs}/sha256/<2 hex>/<hex>/data. The pause served is
// the local pause:3.10.2 stand-in.
func fakeRegistry(l *layer, dir string, images map[string]v1.ImageIndex) error {
	names := make([]string, 0, len(images))
	for n := range images {
		names = append(names, n)
	}
	sort.Strings(names)
	at := func(dir string, h v1.Hash) string {
		return path.Join(dir, h.Algorithm, h.Hex[:2], h.Hex, "data")
	}
	for _, ref := range names {
		name, tag, _ := strings.Cut(ref, ":")
		idx := images[ref]
		raw, err := idx.RawManifest()
		if err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		l.file(path.Join(dir, name, "manifests", tag), 0o644, []byte(d.String()+"\n"))
		l.file(at(path.Join(dir, name, "manifests"), d), 0o644, raw)
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, desc := range im.Manifests {
			img, err := idx.Image(desc.Digest)
			if err != nil {
				return err
			}
			raw, err := img.RawManifest()
			if err != nil {
				return err
			}
			l.file(at(path.Join(dir, name, "manifests"), desc.Digest), 0o644, raw)
			cfgName, err := img.ConfigName()
			if err != nil {
				return err
			}
			cfg, err := img.RawConfigFile()
			if err != nil {
				return err
			}
			l.file(at(path.Join(dir, name, "blobs"), cfgName), 0o644, cfg)
			layers, err := img.Layers()
			if err != nil {
				return err
			}
			for _, ly := range layers {
				ld, err := ly.Digest()
				if err != nil {
					return err
				}
				rc, err := ly.Compressed()
				if err != nil {
					return err
				}
				data, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					return err
				}
				l.file(at(path.Join(dir, name, "blobs"), ld), 0o644, data)
			}
		}
	}
	return nil
}

// nginxLayer is what nginx's alpine image (nginx:1.27-alpine, 1.28-alpine)
// has that the suite touches: a process named nginx that serves HTTP on
// port 80 until SIGQUIT (the image's STOPSIGNAL) or SIGTERM, started by
// /docker-entrypoint.sh, the nginx user and group (101). It is the
// webserver helper, not nginx: no spec of the node suite depends on more
// than a long-running server (docs/testing.md).
func nginxLayer(in inputs) (*layer, error) {
	l := newLayer()
	if err := l.copyFile("usr/sbin/nginx", 0o755, in.helper("webserver")); err != nil {
		return nil, err
	}
	l.file("docker-entrypoint.sh", 0o775, []byte(dockerEntrypoint))
	l.dir("docker-entrypoint.d", 0o755)
	l.dir("var/cache/nginx", 0o755)
	l.chown("var/cache/nginx", 101, 0)
	l.dir("var/log/nginx", 0o755)
	l.symlink("var/log/nginx/access.log", "/dev/stdout")
	l.symlink("var/log/nginx/error.log", "/dev/stderr")
	l.dir("etc/nginx/conf.d", 0o755)
	l.file("usr/share/nginx/html/index.html", 0o644, []byte(nginxIndex))
	l.file("etc/passwd", 0o644, []byte(alpinePasswd+"nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\n"))
	l.file("etc/group", 0o644, []byte(alpineGroup+"nginx:x:101:nginx\n"))
	l.file("etc/shadow", 0o640, []byte(shadowFor(alpinePasswd)+"nginx:!:19000:0:99999:7:::\n"))
	l.chown("etc/shadow", 0, 42)
	return l, nil
}

// dockerEntrypoint mirrors the nginx image's entrypoint: it announces the
// start when it runs nginx, then execs its arguments.
const dockerEntrypoint = `#!/bin/sh
# vim:sw=4:ts=4:et

set -e

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    entrypoint_log "$0: Configuration complete; ready for start up"
fi

exec "$@"
`

const nginxIndex = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
</body>
</html>
`
