package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
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

// build turns the layer into a gzip-compressed image layer.
func (l *layer) build() (v1.Layer, error) {
	data, err := l.tar()
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}
