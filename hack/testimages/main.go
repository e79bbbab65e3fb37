// Command testimages builds the container images that critest and test/e2e
// pull, without docker, and pushes them over plain HTTP to the local test
// registry (hack/registry.sh). The daemon under test reaches them through
// registry mirrors that keep the repository path, so
// registry.k8s.io/e2e-test-images/busybox:1.29-2 is served from
// <registry>/e2e-test-images/busybox:1.29-2 (see docs/testing.md).
//
// Every layer is built from files assembled here: Debian's dynamic busybox
// (its applets as hard links), the host's glibc for it, Debian's
// busybox-static, and small static C helpers (hack/testimages/csrc) built by
// hack/build-test-images.sh. The node e2e suite's images (node.go, debian.go) add
// busybox 1.37.0 built from source, the agnhost binary built from the
// Kubernetes source, and host programs (bash, curl, nc, hostname, ...) with
// their libraries. Builds are reproducible, so an image already in
// the registry with the same digest is not pushed again.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	var (
		registry   = flag.String("registry", "127.0.0.1:5000", "registry host:port to push to (plain HTTP)")
		busyboxDir = flag.String("busybox-root", "", "directory holding Debian's dynamic busybox package, extracted (bin/busybox)")
		static     = flag.String("busybox-static", "/bin/busybox", "Debian's busybox-static binary")
		helpers    = flag.String("helpers", "", "directory holding the static C helpers: pause ipcs pgrep webserver nonewprivs")
		busybox    = flag.String("busybox", "", "busybox built from source with every applet (hack/install-test-tools.sh)")
		agnhost    = flag.String("agnhost", "", "the agnhost binary (hack/install-kube.sh)")
		kubeSrc    = flag.String("kube-src", "", "the k8s.io/kubernetes module source directory (agnhost's porter certificates)")
		cache      = flag.String("layer-cache", "", "directory to keep compressed layers in, reused while their content is the same")
		list       = flag.Bool("list", false, "print the image references and exit")
		export     = flag.String("export", "", "write the flattened filesystem of this pushed reference (e.g. pause:3.9) as a tar to stdout, for debugging")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("testimages: ")

	if *list {
		for _, r := range imageRefs() {
			fmt.Println(r)
		}
		return
	}
	if *export != "" {
		if err := exportFS(*registry, *export, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *busyboxDir == "" || *helpers == "" || *busybox == "" || *agnhost == "" || *kubeSrc == "" {
		log.Fatal("-busybox-root, -helpers, -busybox, -agnhost and -kube-src are required (hack/build-test-images.sh sets them)")
	}
	start := time.Now()
	in := inputs{busyboxRoot: *busyboxDir, busyboxStatic: *static, helpers: *helpers,
		busybox: *busybox, agnhost: *agnhost, kubeSrc: *kubeSrc}
	layerCache = *cache
	set, err := buildAll(in)
	if err != nil {
		log.Fatal(err)
	}
	if err := pruneLayerCache(); err != nil {
		log.Fatal(err)
	}
	pushed, skipped, err := push(*registry, set)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d references pushed, %d already present, in %s", pushed, skipped, time.Since(start).Round(time.Millisecond))
}

// push writes every reference whose digest the registry does not already
// serve under that tag, in one MultiWrite so shared blobs go up once.
func push(registry string, set map[string]remote.Taggable) (pushed, skipped int, err error) {
	todo := map[name.Reference]remote.Taggable{}
	repos := make([]string, 0, len(set))
	for r := range set {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	for _, r := range repos {
		ref, err := name.ParseReference(registry+"/"+r, name.Insecure)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s: %w", r, err)
		}
		want, err := digestOf(set[r])
		if err != nil {
			return 0, 0, fmt.Errorf("digest of %s: %w", r, err)
		}
		if desc, err := remote.Head(ref); err == nil && desc.Digest == want {
			skipped++
			continue
		}
		todo[ref] = set[r]
	}
	if len(todo) == 0 {
		return 0, skipped, nil
	}
	if err := remote.MultiWrite(todo, remote.WithJobs(4)); err != nil {
		return 0, skipped, fmt.Errorf("push to %s: %w", registry, err)
	}
	for ref := range todo {
		fmt.Fprintf(os.Stderr, "testimages: pushed %s\n", ref)
	}
	return len(todo), skipped, nil
}

// exportFS writes the flattened linux/amd64 filesystem of ref as a tar.
func exportFS(registry, ref string, w io.Writer) error {
	r, err := name.ParseReference(registry+"/"+ref, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(r)
	if err != nil {
		return fmt.Errorf("pull %s: %w", r, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}
