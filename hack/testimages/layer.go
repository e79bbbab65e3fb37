package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is every entry's mtime, so a layer built twice from the same inputs
// has the same digest and a second run finds its images already pushed.
var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// entry is one tar header plus its content (regular files only).
type entry struct {
	hdr  tar.Header
	data []byte
}

// layer assembles a filesystem layer in memory. Parent directories are
// added on demand (0755 root:root); later writes to a path replace earlier
// ones, so a layer holds each path once.
type layer struct {
	entries map[string]*entry
}

func newLayer() *layer { return &layer{entries: map[string]*entry{}} }

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

func (l *layer) parents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := l.entries[d]; !ok {
			l.entries[d] = &entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}}
		}
	}
}

// dir adds a directory with the given mode.
func (l *layer) dir(p string, mode int64) {
	p = clean(p)
	l.parents(p)
	l.entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode}}
}

// file adds a regular file owned by root.
func (l *layer) file(p string, mode int64, data []byte) {
	p = clean(p)
	l.parents(p)
	l.entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data))}, data: data}
}

// copyFile adds the host file src (symlinks followed) at p.
func (l *layer) copyFile(p string, mode int64, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	l.file(p, mode, data)
	return nil
}

// symlink adds p as a symbolic link to target (kept as given: relative
// targets resolve against p's directory inside the container).
func (l *layer) symlink(p, target string) {
	p = clean(p)
	l.parents(p)
	l.entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: p, Linkname: target, Mode: 0o777}}
}

// chown sets the owner of an entry already in the layer.
func (l *layer) chown(p string, uid, gid int) {
	if e, ok := l.entries[clean(p)]; ok {
		e.hdr.Uid, e.hdr.Gid = uid, gid
	}
}

// has reports whether p is in the layer.
func (l *layer) has(p string) bool {
	_, ok := l.entries[clean(p)]
	return ok
}

// hardlink adds p as a hard link to target, which must be in this layer.
func (l *layer) hardlink(p, target string) {
	p = clean(p)
	l.parents(p)
	l.entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: p, Linkname: clean(target)}}
}

// tar writes the entries sorted by path, so directories come before their
// content and hard-link targets (sorted earlier or not) are written first.
func (l *layer) tar() ([]byte, error) {
	names := make([]string, 0, len(l.entries))
	for n := range l.entries {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := l.entries[names[i]], l.entries[names[j]]
		// Link entries after everything else, so their targets exist.
		if (a.hdr.Typeflag == tar.TypeLink) != (b.hdr.Typeflag == tar.TypeLink) {
			return b.hdr.Typeflag == tar.TypeLink
		}
		return names[i] < names[j]
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := l.entries[n]
		h := e.hdr
		h.ModTime = epoch
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeLink {
			if _, ok := l.entries[h.Linkname]; !ok {
				return nil, fmt.Errorf("hard link %s: target %s is not in the layer", n, h.Linkname)
			}
		}
		// An entry under a symlinked directory (bin/x with bin -> usr/bin)
		// would be unpacked through the link or refused: a bug in the layer.
		for d := path.Dir(n); d != "." && d != "/"; d = path.Dir(d) {
			if p, ok := l.entries[d]; ok && p.hdr.Typeflag == tar.TypeSymlink {
				return nil, fmt.Errorf("%s is under %s, a symlink", n, d)
			}
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", n, err)
		}
		if len(e.data) > 0 {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("tar data %s: %w", n, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layerCache, when set, is a directory of compressed layers named by the
// sha256 of their tar: gzip is most of a build's time, so a layer whose
// content did not change is read back instead of compressed again.
var layerCache string

// cacheUsed lists the cache files this run used (pruneLayerCache keeps them).
var cacheUsed = map[string]bool{}

// build turns the layer into a gzip-compressed image layer.
func (l *layer) build() (v1.Layer, error) {
	data, err := l.tar()
	if err != nil {
		return nil, err
	}
	fresh := func() (v1.Layer, error) {
		return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
	}
	if layerCache == "" {
		return fresh()
	}
	sum := sha256.Sum256(data)
	name := hex.EncodeToString(sum[:]) + ".tar.gz"
	f := filepath.Join(layerCache, name)
	cacheUsed[name] = true
	if _, err := os.Stat(f); err != nil {
		ly, err := fresh()
		if err != nil {
			return nil, err
		}
		if err := writeCompressed(ly, f); err != nil {
			return nil, err
		}
	}
	return tarball.LayerFromFile(f)
}

// writeCompressed stores a layer's compressed blob at f, atomically.
func writeCompressed(ly v1.Layer, f string) error {
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return err
	}
	rc, err := ly.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(f), ".layer-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, rc); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f)
}

// pruneLayerCache removes the cached layers this run did not use.
func pruneLayerCache() error {
	if layerCache == "" {
		return nil
	}
	des, err := os.ReadDir(layerCache)
	if err != nil {
		return err
	}
	for _, de := range des {
		if !cacheUsed[de.Name()] {
			if err := os.Remove(filepath.Join(layerCache, de.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
