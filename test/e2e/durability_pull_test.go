package e2e

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pullCrashImages are five distinct test images (hack/testimages): each
// has layers of its own above the shared busybox base.
var pullCrashImages = []string{
	"registry.k8s.io/e2e-test-images/nginx:1.14-2",
	"registry.k8s.io/e2e-test-images/httpd:2.4.39-4",
	"registry.k8s.io/e2e-test-images/nonewprivs:1.3",
	"gcr.io/k8s-staging-cri-tools/test-image-1:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-2:latest",
}

// TestKillDaemonDuringPulls kills the daemon (kill -9) while five pulls
// run: after the restart every image is either complete and usable or
// absent, pulling them again works, and no temporary or partial directory
// is left in the image store.
func TestKillDaemonDuringPulls(t *testing.T) {
	pullImage(t, e2eBusybox)
	ctx := context.Background()
	tmpDir := filepath.Join(env.root, "tmp")
	var caught string
	// The registry is local and the layers small: a pull takes a few ms.
	// Try a few rounds to kill while a layer is being unpacked (a
	// tmp/layer-* dir exists); the last round kills whatever the state.
	for round := 0; round < 5; round++ {
		for _, ref := range pullCrashImages {
			if _, err := env.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
				t.Fatalf("RemoveImage %s: %v", ref, err)
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		done := 0
		start := time.Now()
		for _, ref := range pullCrashImages {
			wg.Add(1)
			go func(ref string) {
				defer wg.Done()
				_, err := env.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
				if err == nil {
					mu.Lock()
					done++
					mu.Unlock()
				}
			}(ref)
		}
		// Spin (no sleep: the window is short) until a layer is in flight.
		inFlight := ""
		for time.Since(start) < 10*time.Second {
			if es, _ := os.ReadDir(tmpDir); len(es) > 0 {
				inFlight = es[0].Name()
				break
			}
			mu.Lock()
			all := done == len(pullCrashImages)
			mu.Unlock()
			if all {
				break
			}
		}
		if inFlight == "" && round < 4 {
			wg.Wait()
			continue
		}
		restartDaemon(t, syscall.SIGKILL, 0)
		wg.Wait()
		mu.Lock()
		caught = "round " + itoa(round+1) + ", " + time.Since(start).Round(time.Millisecond).String() + " after the pulls began, " + itoa(done) + " of 5 pulls had returned"
		mu.Unlock()
		if inFlight != "" {
			caught += ", " + inFlight + " being unpacked"
		} else {
			caught += ", no layer seen in flight"
		}
		break
	}
	t.Logf("killed the daemon: %s", caught)

	// Every image is complete (its status answers and a container runs
	// from it) or absent.
	p := runPod(t, "pull-crash")
	complete := 0
	for i, ref := range pullCrashImages {
		st, err := env.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			t.Fatalf("ImageStatus %s: %v", ref, err)
		}
		if st.GetImage() == nil {
			continue
		}
		complete++
		cfg := &runtimeapi.ContainerConfig{Command: []string{"sh", "-c", "ls / >/dev/null"}, Image: &runtimeapi.ImageSpec{Image: ref}}
		id := p.container(t, "from-"+itoa(i), cfg, true)
		if st := waitExited(t, id, 20*time.Second); st.GetExitCode() != 0 {
			t.Errorf("%s is listed but a container from it exited %d", ref, st.GetExitCode())
		}
	}
	t.Logf("after the restart: %d of 5 images complete, the rest absent", complete)
	list, err := env.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range list.GetImages() {
		if img.GetSize() == 0 {
			t.Errorf("image %s (%v) is listed with size 0", img.GetId(), img.GetRepoTags())
		}
	}
	// Pulling again completes every image.
	for _, ref := range pullCrashImages {
		pullImage(t, ref)
	}
	if left := imageStoreLeftovers(); len(left) > 0 {
		t.Fatalf("left in the image store after the second pulls: %v", left)
	}
}

// imageStoreLeftovers lists what a finished pull must not leave in the
// image store (docs/image.md's layout): anything in tmp/ or trash/, a
// *.tmp record, a short link that leads nowhere, a layer dir without diff/.
func imageStoreLeftovers() []string {
	var out []string
	for _, d := range []string{"tmp", "trash"} {
		es, _ := os.ReadDir(filepath.Join(env.root, d))
		for _, e := range es {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	for _, d := range []string{"imagemounts", "containers"} {
		_ = filepath.WalkDir(filepath.Join(env.root, d), func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if de.IsDir() && (de.Name() == "upper" || de.Name() == "work") {
				return fs.SkipDir // a container's own files
			}
			if strings.HasSuffix(de.Name(), ".tmp") {
				out = append(out, p)
			}
			return nil
		})
	}
	links, _ := os.ReadDir(filepath.Join(env.root, "l"))
	for _, l := range links {
		if _, err := os.Stat(filepath.Join(env.root, "l", l.Name())); err != nil {
			out = append(out, "dangling link l/"+l.Name())
		}
	}
	layers, _ := os.ReadDir(filepath.Join(env.root, "layers"))
	for _, l := range layers {
		if _, err := os.Stat(filepath.Join(env.root, "layers", l.Name(), "diff")); err != nil {
			out = append(out, "layer without diff/: layers/"+l.Name())
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
