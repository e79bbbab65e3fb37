package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// inputs are the host files the layers are made from.
type inputs struct {
	busyboxRoot   string // Debian's busybox .deb, extracted
	busyboxStatic string // Debian's busybox-static binary
	helpers       string // static C helpers
	busybox       string // busybox built from source, every applet (install-test-tools.sh)
	agnhost       string // agnhost built from the Kubernetes source (install-kube.sh)
	kubeSrc       string // the k8s.io/kubernetes module source (agnhost's porter certs)
}

func (in inputs) helper(n string) string { return filepath.Join(in.helpers, n) }

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// The users critest expects in its busybox-based images: www-data (33) for
// the username images, nobody (65534) for RunAsUsername.
const (
	passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
		"bin:x:2:2:bin:/bin:/bin/false\n" +
		"sys:x:3:3:sys:/dev:/bin/false\n" +
		"www-data:x:33:33:www-data:/var/www:/bin/false\n" +
		"nobody:x:65534:65534:nobody:/home:/bin/false\n"
	group = "root:x:0:\n" +
		"daemon:x:1:\n" +
		"bin:x:2:\n" +
		"sys:x:3:\n" +
		"adm:x:4:\n" +
		"tty:x:5:\n" +
		"wheel:x:10:root\n" +
		"www-data:x:33:\n" +
		"users:x:100:\n" +
		"nobody:x:65534:\n"
)

// spec describes one image: the layers on top of its base, its config, the
// references it is pushed as, and whether it goes up as a single-platform
// index (as upstream's multi-arch images do) or a bare manifest.
type spec struct {
	refs   []string
	base   *layer
	layers []*layer
	config v1.Config
	index  bool
}

// layerSet holds the layers the images share.
type layerSet struct {
	bb, sbb, pause, nginx, httpd, nnp, predefined *layer
	// the node e2e images (node.go)
	bbUp, alpine, debian, agnhost, nginxAlpine, nnpAlpine, ipcUtils *layer

	built map[*layer]v1.Layer
}

// image builds a spec's layers (each once, shared between images) and
// assembles it.
func (ls *layerSet) image(sp spec) (remote.Taggable, error) {
	if ls.built == nil {
		ls.built = map[*layer]v1.Layer{}
	}
	var layers []v1.Layer
	for _, l := range append([]*layer{sp.base}, sp.layers...) {
		b, ok := ls.built[l]
		if !ok {
			var err error
			if b, err = l.build(); err != nil {
				return nil, err
			}
			ls.built[l] = b
		}
		layers = append(layers, b)
	}
	return assemble(sp, layers)
}

func buildLayers(in inputs) (*layerSet, error) {
	var ls layerSet
	var err error
	if ls.bb, err = dynamicBusybox(in); err != nil {
		return nil, fmt.Errorf("busybox layer: %w", err)
	}
	if ls.sbb, err = staticBusybox(in); err != nil {
		return nil, fmt.Errorf("busybox-static layer: %w", err)
	}
	one := func(build func(*layer) error) (*layer, error) {
		l := newLayer()
		return l, build(l)
	}
	if ls.pause, err = one(func(l *layer) error { return l.copyFile("pause", 0o755, in.helper("pause")) }); err != nil {
		return nil, err
	}
	web := func(path string) (*layer, error) {
		return one(func(l *layer) error {
			l.dir("var/run", 0o755)
			return l.copyFile(path, 0o755, in.helper("webserver"))
		})
	}
	if ls.nginx, err = web("usr/sbin/nginx"); err != nil {
		return nil, err
	}
	if ls.httpd, err = web("usr/local/apache2/bin/httpd"); err != nil {
		return nil, err
	}
	// setuid root: the NoNewPrivs specs read the effective uid it gets.
	if ls.nnp, err = one(func(l *layer) error { return l.copyFile("usr/local/bin/nnp", 0o4755, in.helper("nonewprivs")) }); err != nil {
		return nil, err
	}
	ls.predefined = newLayer()
	ls.predefined.file("etc/passwd", 0o644, []byte(passwd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"))
	ls.predefined.file("etc/group", 0o644, []byte(group+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"))
	ls.predefined.dir("home/default-user", 0o755)

	if ls.bbUp, err = busyboxUpstream(in); err != nil {
		return nil, fmt.Errorf("busybox %s layer: %w", in.busybox, err)
	}
	if ls.alpine, err = alpineBase(in); err != nil {
		return nil, fmt.Errorf("alpine stand-in layer: %w", err)
	}
	if ls.debian, err = debianBase(); err != nil {
		return nil, fmt.Errorf("debian stand-in layer: %w", err)
	}
	// agnhost's fake registry serves pause:3.10.2 as pause:testing.
	pauseIdx, err := ls.image(pauseSpec(&ls, "pause:3.10.2"))
	if err != nil {
		return nil, err
	}
	if ls.agnhost, err = agnhostLayer(in, map[string]v1.ImageIndex{"pause:testing": pauseIdx.(v1.ImageIndex)}); err != nil {
		return nil, err
	}
	if ls.nginxAlpine, err = nginxLayer(in); err != nil {
		return nil, err
	}
	if ls.nnpAlpine, err = one(func(l *layer) error { return l.copyFile("usr/local/bin/nnp", 0o4755, in.helper("nonewprivs")) }); err != nil {
		return nil, err
	}
	// ipc-utils: alpine + util-linux (apk add util-linux), for ipcs -m.
	if ls.ipcUtils, err = one(func(l *layer) error {
		for _, p := range []string{"ipcs", "ipcmk", "ipcrm"} {
			if err := l.hostProgram("usr/bin/"+p, "/usr/bin/"+p, nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return &ls, nil
}

// pauseSpec is the pause image (upstream: scratch + /pause, USER
// 65535:65535) under one reference.
func pauseSpec(ls *layerSet, ref string) spec {
	return spec{refs: []string{ref}, base: ls.pause, index: true,
		config: v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535", Env: []string{defaultPath}}}
}

// specs lists the images; with an empty layerSet it serves for the names.
func specs(ls *layerSet) []spec {
	bb, sbb, nginx, httpd, nnp, predefined := ls.bb, ls.sbb, ls.nginx, ls.httpd, ls.nnp, ls.predefined
	marker := func(n string) *layer {
		l := newLayer()
		l.file(n, 0o644, []byte(n+"\n"))
		return l
	}

	nginxTitle := "WEB_TITLE=nginx: master process nginx -g daemon off;"
	out := []spec{
		{refs: []string{"e2e-test-images/busybox:1.29-2"}, base: bb, index: true,
			config: v1.Config{Cmd: []string{"sh"}, Env: []string{defaultPath}}},
		{refs: []string{"e2e-test-images/nginx:1.14-2"}, base: bb, layers: []*layer{nginx}, index: true,
			config: v1.Config{
				Cmd:          []string{"nginx", "-g", "daemon off;"},
				Env:          []string{defaultPath, "WEB_NAME=nginx", "WEB_PORT=80", "WEB_PIDFILE=/var/run/nginx.pid", nginxTitle},
				ExposedPorts: map[string]struct{}{"80/tcp": {}},
				StopSignal:   "SIGTERM",
			}},
		{refs: []string{"k8s-staging-cri-tools/hostnet-nginx-amd64:latest"}, base: bb, layers: []*layer{nginx},
			config: v1.Config{
				Cmd:          []string{"nginx", "-g", "daemon off;"},
				Env:          []string{defaultPath, "WEB_NAME=nginx", "WEB_PORT=12003", "WEB_PIDFILE=/var/run/nginx.pid", nginxTitle},
				ExposedPorts: map[string]struct{}{"12003/tcp": {}},
				StopSignal:   "SIGTERM",
			}},
		{refs: []string{"e2e-test-images/httpd:2.4.39-4"}, base: bb, layers: []*layer{httpd}, index: true,
			config: v1.Config{
				// apache2/bin first in PATH, as in the upstream image: the
				// busybox base has an httpd applet, which daemonizes and so
				// ends the container at once.
				Cmd:          []string{"httpd"},
				Env:          []string{"PATH=/usr/local/apache2/bin:" + strings.TrimPrefix(defaultPath, "PATH="), "WEB_NAME=httpd", "WEB_PORT=80"},
				WorkingDir:   "/usr/local/apache2",
				ExposedPorts: map[string]struct{}{"80/tcp": {}},
			}},
		{refs: []string{"e2e-test-images/nonewprivs:1.3"}, base: bb, layers: []*layer{nnp}, index: true,
			config: v1.Config{Entrypoint: []string{"/usr/local/bin/nnp"}, Env: []string{defaultPath}}},
		pauseSpec(ls, "pause:3.9"),
		{refs: []string{"library/busybox:latest"}, base: sbb, index: true,
			config: v1.Config{Cmd: []string{"sh"}, Env: []string{defaultPath}}},
		{refs: []string{"k8s-staging-cri-tools/test-image-predefined-group:latest"}, base: bb, layers: []*layer{predefined},
			config: v1.Config{Cmd: []string{"sh"}, Env: []string{defaultPath}, User: "1000"}},
	}
	out = append(out, nodeSpecs(ls)...)
	for _, u := range []struct{ repo, user string }{
		{"test-image-user-uid", "1002"},
		{"test-image-user-username", "www-data"},
		{"test-image-user-uid-group", "1003:1004"},
		{"test-image-user-username-group", "www-data:1004"},
	} {
		out = append(out, spec{refs: []string{"k8s-staging-cri-tools/" + u.repo + ":latest"}, base: bb,
			config: v1.Config{Cmd: []string{"sh"}, Env: []string{defaultPath}, User: u.user}})
	}
	// Upstream's image-test: busybox plus one file named after the image, so
	// each is a distinct image; test-image-tags is one image with 3 tags.
	for _, t := range []struct {
		file string
		refs []string
	}{
		{"test-image-1", []string{"test-image-1:latest"}},
		{"test-image-2", []string{"test-image-2:latest"}},
		{"test-image-3", []string{"test-image-3:latest"}},
		{"test-image-latest", []string{"test-image-latest:latest"}},
		{"test-image-tag-test", []string{"test-image-tag:test"}},
		{"test-image-tag-all", []string{"test-image-tag:all"}},
		{"test-image-tags", []string{"test-image-tags:1", "test-image-tags:2", "test-image-tags:3"}},
		{"test-image-digest", []string{"test-image-digest:latest"}},
	} {
		refs := make([]string, len(t.refs))
		for i, r := range t.refs {
			refs[i] = "k8s-staging-cri-tools/" + r
		}
		out = append(out, spec{refs: refs, base: bb, layers: []*layer{marker(t.file)},
			config: v1.Config{Cmd: []string{"sh"}, Env: []string{defaultPath}}})
	}
	return out
}

// nodeSpecs are the images of the node e2e suite (node.go).
func nodeSpecs(ls *layerSet) []spec {
	nginx := func(version string) spec {
		return spec{refs: []string{"e2e-test-images/nginx:" + version + "-2"}, base: ls.alpine, layers: []*layer{ls.nginxAlpine}, index: true,
			config: v1.Config{
				Entrypoint: []string{"/docker-entrypoint.sh"},
				Cmd:        []string{"nginx", "-g", "daemon off;"},
				Env: []string{defaultPath, "NGINX_VERSION=" + version,
					"WEB_NAME=nginx", "WEB_PORT=80", "WEB_PIDFILE=/var/run/nginx.pid", "WEB_TITLE=nginx: master process nginx -g daemon off;"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}},
				StopSignal:   "SIGQUIT",
			}}
	}
	agnhost := func(version string) spec {
		ports := map[string]struct{}{}
		for _, p := range []string{"80", "8080", "8081", "9376", "5000"} {
			ports[p+"/tcp"] = struct{}{}
		}
		return spec{refs: []string{"e2e-test-images/agnhost:" + version}, base: ls.alpine, layers: []*layer{ls.agnhost}, index: true,
			config: v1.Config{
				Entrypoint:   []string{"/agnhost"},
				Cmd:          []string{"pause"},
				Env:          []string{defaultPath},
				ExposedPorts: ports,
				// Same files in both tags; the label keeps the image IDs
				// apart, as upstream's two versions are.
				Labels: map[string]string{"org.opencontainers.image.version": version},
			}}
	}
	return []spec{
		{refs: []string{"e2e-test-images/busybox:1.37.0-2"}, base: ls.bbUp, index: true,
			config: v1.Config{Cmd: []string{"sh"}, Env: []string{defaultPath}}},
		agnhost("2.66.1"),
		agnhost("2.55"),
		nginx("1.27.0"),
		nginx("1.28.0"),
		{refs: []string{"e2e-test-images/nonewprivs:1.4"}, base: ls.alpine, layers: []*layer{ls.nnpAlpine}, index: true,
			config: v1.Config{Cmd: []string{"nnp"}, Env: []string{defaultPath}}},
		pauseSpec(ls, "pause:3.10.2"),
		{refs: []string{"e2e-test-images/nonroot:1.5"}, base: ls.debian, index: true,
			config: v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{defaultPath}, User: "1234"}},
		{refs: []string{"e2e-test-images/glibc-dns-testing:2.1.1"}, base: ls.debian, index: true,
			config: v1.Config{Cmd: []string{"bash"}, Env: []string{defaultPath}}},
		{refs: []string{"e2e-test-images/ipc-utils:1.4"}, base: ls.alpine, layers: []*layer{ls.ipcUtils}, index: true,
			config: v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{defaultPath}}},
	}
}

// imageRefs lists every reference pushed, relative to the registry.
func imageRefs() []string {
	var refs []string
	for _, sp := range specs(&layerSet{}) {
		refs = append(refs, sp.refs...)
	}
	sort.Strings(refs)
	return refs
}

// buildAll builds every image and returns it by reference.
func buildAll(in inputs) (map[string]remote.Taggable, error) {
	ls, err := buildLayers(in)
	if err != nil {
		return nil, err
	}
	set := map[string]remote.Taggable{}
	for _, sp := range specs(ls) {
		t, err := ls.image(sp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sp.refs[0], err)
		}
		for _, r := range sp.refs {
			set[r] = t
		}
	}
	return set, nil
}
