package stats

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// outsideTree makes a dir of many files beside a layer, for symlinks to
// point at: counting any of it is a walk that left the layer.
func outsideTree(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDirUsageDoesNotFollowSymlinks(t *testing.T) {
	outside := outsideTree(t, 100)
	layer := t.TempDir()
	if err := os.WriteFile(filepath.Join(layer, "own"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"root": "/", "out": outside, "rel": "../../.."} {
		if err := os.Symlink(target, filepath.Join(layer, name)); err != nil {
			t.Fatal(err)
		}
	}
	bytes, inodes, err := DirUsage(layer)
	if err != nil {
		t.Fatal(err)
	}
	// layer, own, three symlinks.
	if inodes != 5 {
		t.Errorf("inodes = %d, want 5: the walk left the layer", inodes)
	}
	if bytes > 64<<10 {
		t.Errorf("bytes = %d, want the layer's own few KiB", bytes)
	}
}

// TestDirUsageDirSwappedForSymlink swaps a directory for a symlink to a
// big tree outside in the window between its stat and its open, as a
// container can: the walk must skip it, not walk the target.
func TestDirUsageDirSwappedForSymlink(t *testing.T) {
	outside := outsideTree(t, 100)
	layer := t.TempDir()
	sub := filepath.Join(layer, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	swapped := false
	w := layerWalk{maxEntries: maxLayerEntries, maxDepth: maxLayerDepth, beforeOpen: func(_ int, name string) {
		if name != "sub" || swapped {
			return
		}
		swapped = true
		if err := os.Rename(sub, filepath.Join(t.TempDir(), "moved")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, sub); err != nil {
			t.Fatal(err)
		}
	}}
	if err := w.run(layer); err != nil {
		t.Fatal(err)
	}
	if !swapped {
		t.Fatal("the walk never opened sub")
	}
	// layer and sub (counted as the dir it was at its stat).
	if w.inodes != 2 {
		t.Errorf("inodes = %d, want 2: the walk followed the swapped-in symlink", w.inodes)
	}
}

// TestDirUsageRacingSwaps runs walks while another goroutine keeps
// exchanging a directory and a symlink to a big tree outside
// (renameat2 RENAME_EXCHANGE, atomic): no walk may count the outside.
func TestDirUsageRacingSwaps(t *testing.T) {
	outside := outsideTree(t, 500)
	layer := t.TempDir()
	if err := os.Mkdir(filepath.Join(layer, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"1", "2", "3"} {
		if err := os.WriteFile(filepath.Join(layer, "a", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(layer, "b")); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = unix.Renameat2(unix.AT_FDCWD, filepath.Join(layer, "a"), unix.AT_FDCWD, filepath.Join(layer, "b"), unix.RENAME_EXCHANGE)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	// layer, the dir with its three files, the symlink.
	const most = 6
	for i := 0; i < 3000; i++ {
		_, inodes, err := DirUsage(layer)
		if err != nil {
			t.Fatal(err)
		}
		if inodes > most {
			t.Fatalf("walk %d counted %d inodes, at most %d are the layer's: it walked the symlink's target", i, inodes, most)
		}
	}
}

func TestDirUsageBounds(t *testing.T) {
	layer := t.TempDir()
	for i := 0; i < 10; i++ {
		if err := os.WriteFile(filepath.Join(layer, "f"+string(rune('a'+i))), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deep := layer
	for i := 0; i < 5; i++ {
		deep = filepath.Join(deep, "d")
		if err := os.Mkdir(deep, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := layerWalk{maxEntries: 4, maxDepth: 100}
	if err := w.run(layer); !errors.Is(err, ErrLayerTruncated) {
		t.Fatalf("entries bound: err = %v, want ErrLayerTruncated", err)
	}
	if w.inodes != 5 { // the root and four entries
		t.Errorf("entries bound: inodes = %d, want 5", w.inodes)
	}
	w = layerWalk{maxEntries: 100, maxDepth: 3}
	if err := w.run(layer); !errors.Is(err, ErrLayerTruncated) {
		t.Fatalf("depth bound: err = %v, want ErrLayerTruncated", err)
	}
	// The root, ten files and d, d/d, d/d/d (levels 1-3; the third is
	// counted, not entered).
	if w.inodes != 14 {
		t.Errorf("depth bound: inodes = %d, want 14", w.inodes)
	}
	w = layerWalk{maxEntries: 100, maxDepth: 100}
	if err := w.run(layer); err != nil || w.inodes != 16 {
		t.Errorf("within bounds: inodes = %d, err = %v; want 16, nil", w.inodes, err)
	}
}
