package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
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

// libDirs are where the host's loader finds libraries without ld.so.cache
// (Debian's multiarch and default directories), in its order.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// sharedLibs lists the absolute paths of the dynamic loader and every
// library bin needs, transitively (DT_NEEDED, found in libDirs), as ldd
// would resolve them on this host but without running a program per
// file. Nil for a static program or a file that is not ELF (a script).
func sharedLibs(bin string) ([]string, error) {
	f, err := elf.Open(bin)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, nil // not ELF: a script
		}
		return nil, err
	}
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, fmt.Errorf("%s: interpreter: %w", bin, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		return nil, nil // static
	}
	libs := []string{interp}
	seen := map[string]bool{}
	var walk func(*elf.File, string) error
	walk = func(ef *elf.File, who string) error {
		needed, err := ef.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: %w", who, err)
		}
		for _, n := range needed {
			if seen[n] {
				continue
			}
			seen[n] = true
			found := ""
			for _, d := range libDirs {
				if _, err := os.Stat(filepath.Join(d, n)); err == nil {
					found = filepath.Join(d, n)
					break
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, which is in none of %v", who, n, libDirs)
			}
			if found == interp || filepath.Base(found) == filepath.Base(interp) {
				continue // the loader, already listed
			}
			libs = append(libs, found)
			lf, err := elf.Open(found)
			if err != nil {
				return err
			}
			err = walk(lf, found)
			lf.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(f, bin); err != nil {
		return nil, err
	}
	return libs, nil
}

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

// assemble makes the image (OCI media types when it goes up inside an
// index, Docker schema 2 otherwise, so pulls see both kinds).
func assemble(sp spec, layers []v1.Layer) (remote.Taggable, error) {
	base := empty.Image
	if sp.index {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: l}
		if sp.index {
			adds[i].MediaType = types.OCILayer
		}
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = "amd64"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = sp.config
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	if !sp.index {
		return img, nil
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return mutate.AppendManifests(idx, mutate.IndexAddendum{
		Add: plainImage{img},
		Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Platform:  &v1.Platform{OS: "linux", Architecture: "amd64"},
		},
	}), nil
}

// digestOf is the manifest (or index) digest a Taggable is pushed under.
func digestOf(t remote.Taggable) (v1.Hash, error) {
	switch x := t.(type) {
	case v1.Image:
		return x.Digest()
	case v1.ImageIndex:
		return x.Digest()
	}
	return v1.Hash{}, fmt.Errorf("unexpected %T", t)
}

// plainImage keeps go-containerregistry from writing an artifactType into
// the index entry (it derives one from the config media type): real image
// indexes carry none, and a runtime may take an entry with one for a
// non-image artifact.
type plainImage struct{ v1.Image }

func (plainImage) ArtifactType() (string, error) { return "", nil }
