package network

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// confExtensions are the file names CNI config discovery considers.
var confExtensions = []string{".conflist", ".conf", ".json"}

// confWatcher finds the pod network config in a directory and reloads it
// when the directory's listing or a candidate file's size or mtime changes.
// The check is a ReadDir plus one stat per candidate file, cheap enough for
// every Setup and every Status poll; no inotify, no goroutine.
type confWatcher struct {
	dir string

	mu          sync.Mutex // guards the fields below; never held across a plugin exec
	fingerprint string
	conf        *libcni.NetworkConfigList
	file        string
	err         error
}

// current returns the network config list to use for new ADDs and the file
// it came from, or an error of class ErrFailedPrecondition saying why there
// is none.
func (w *confWatcher) current() (*libcni.NetworkConfigList, string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	files, fp, err := w.scan()
	if err == nil && fp == w.fingerprint && (w.conf != nil || w.err != nil) {
		return w.conf, w.file, w.err
	}
	w.fingerprint = fp
	w.conf, w.file, w.err = nil, "", nil
	switch {
	case err != nil:
		w.err = fmt.Errorf("cni config uninitialized: read %s: %v: %w", w.dir, err, errdefs.ErrFailedPrecondition)
	case len(files) == 0:
		w.err = fmt.Errorf("cni config uninitialized: no network config (%s) found in %s: %w",
			strings.Join(confExtensions, ", "), w.dir, errdefs.ErrFailedPrecondition)
	default:
		w.file = files[0]
		w.conf, w.err = loadConfList(w.file)
		if w.err != nil {
			w.err = fmt.Errorf("cni config uninitialized: %v: %w", w.err, errdefs.ErrFailedPrecondition)
		}
	}
	return w.conf, w.file, w.err
}

// scan lists the candidate files in name order and fingerprints them.
// Must be called with w.mu held.
func (w *confWatcher) scan() ([]string, string, error) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "missing", nil
		}
		return nil, "", err
	}
	var (
		files []string
		fp    strings.Builder
	)
	for _, e := range entries { // ReadDir sorts by name
		if e.IsDir() || !hasConfExtension(e.Name()) {
			continue
		}
		p := filepath.Join(w.dir, e.Name())
		st, err := os.Stat(p) // follows symlinks, as config managers use them
		if err != nil || st.IsDir() {
			continue
		}
		files = append(files, p)
		fp.WriteString(e.Name())
		fp.WriteByte(0)
		fp.WriteString(strconv.FormatInt(st.Size(), 10))
		fp.WriteByte(0)
		fp.WriteString(strconv.FormatInt(st.ModTime().UnixNano(), 10))
		fp.WriteByte(0)
	}
	sort.Strings(files)
	return files, fp.String(), nil
}

func hasConfExtension(name string) bool {
	for _, ext := range confExtensions {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// loadConfList parses a .conflist, or wraps a single-plugin .conf/.json in
// a list, and checks it has plugins.
func loadConfList(file string) (*libcni.NetworkConfigList, error) {
	var (
		list *libcni.NetworkConfigList
		err  error
	)
	if strings.HasSuffix(file, ".conflist") {
		list, err = libcni.NetworkConfFromFile(file)
	} else {
		var one *libcni.PluginConfig
		data, rerr := os.ReadFile(file)
		if rerr != nil {
			return nil, rerr
		}
		if one, err = libcni.NetworkPluginConfFromBytes(data); err == nil {
			if one.Network.Type == "" {
				return nil, fmt.Errorf("%s: plugin type missing (a .conflist with a .conf extension?)", file)
			}
			list, err = libcni.ConfListFromConf(one) //nolint:staticcheck // .conf files are still shipped by plugins
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", file, err)
	}
	if len(list.Plugins) == 0 {
		return nil, fmt.Errorf("load %s: no plugins", file)
	}
	return list, nil
}
