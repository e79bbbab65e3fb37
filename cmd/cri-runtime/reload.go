package main

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// liveKeys are the config keys a SIGHUP applies without a restart: a key
// matches an entry equal to it or below it. Everything else that changed
// is logged as needing a restart. A new pull_progress_timeout applies to
// pulls that start after the reload.
var liveKeys = []string{"registry", "log.verbosity", "image.pull_progress_timeout"}

func isLive(key string) bool {
	for _, k := range liveKeys {
		if key == k || strings.HasPrefix(key, k+".") {
			return true
		}
	}
	return false
}

// registrySetter is what a reload needs of the image service.
type registrySetter interface {
	SetRegistry(image.RegistryConfig) error
	SetPullProgressTimeout(time.Duration)
}

// reloader re-reads the config on SIGHUP and applies what can change live.
type reloader struct {
	src configSource
	// running is the config in force: the start-up config with the live
	// keys of each accepted reload applied. Keys that need a restart keep
	// their start-up values, so each reload reports them again.
	running       Config
	images        registrySetter
	verbosityFlag bool // -v was given: [log] verbosity is not applied
	notifier      *notifier
}

// reload loads the main file and the drop-ins again. An invalid file is
// refused, naming the file and the key, and the running config stays; a
// valid one has its live keys applied (the registry hosts dirs are always
// reread: their files may have changed while the config did not) and the
// others logged.
func (r *reloader) reload(logger klog.Logger) {
	r.notifier.notify(logger, "RELOADING=1")
	defer r.notifier.notify(logger, "READY=1")
	next, files, err := loadConfig(r.src)
	if err == nil {
		err = r.images.SetRegistry(next.Registry)
	}
	if err != nil {
		logger.Error(err, "Refused config reload; the running config stays")
		return
	}
	live, restart := partition(changedKeys(r.running, next))
	r.running.Registry = next.Registry
	r.images.SetPullProgressTimeout(time.Duration(next.Image.PullProgressTimeout))
	r.running.Image.PullProgressTimeout = next.Image.PullProgressTimeout
	if !r.verbosityFlag {
		if err := setVerbosity(next.Log.Verbosity); err != nil {
			logger.Error(err, "Could not set the log verbosity")
		} else {
			r.running.Log = next.Log
		}
	}
	logger.Info("Reloaded config", "files", files, "applied", live)
	if len(restart) > 0 {
		logger.Info("Config changes need a restart to apply", "keys", restart)
	}
}

// partition splits changed keys into the live ones and the others.
func partition(keys []string) (live, restart []string) {
	live, restart = []string{}, []string{}
	for _, k := range keys {
		if isLive(k) {
			live = append(live, k)
		} else {
			restart = append(restart, k)
		}
	}
	return live, restart
}

// changedKeys lists, as dotted TOML keys, every leaf that differs between
// a and b (present in one only counts), sorted.
func changedKeys(a, b Config) []string {
	fa, fb := flatten(a), flatten(b)
	var out []string
	for k, va := range fa {
		if vb, ok := fb[k]; !ok || !reflect.DeepEqual(va, vb) {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// flatten encodes cfg as the file would say it and maps each leaf key to
// its value.
func flatten(cfg Config) map[string]any {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		panic(fmt.Sprintf("encode config: %v", err)) // the types are ours; it cannot fail
	}
	var tree map[string]any
	if _, err := toml.Decode(buf.String(), &tree); err != nil {
		panic(fmt.Sprintf("decode encoded config: %v", err))
	}
	out := map[string]any{}
	var walk func(prefix toml.Key, v any)
	walk = func(prefix toml.Key, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k, sub := range m {
				walk(append(slices.Clone(prefix), k), sub)
			}
			return
		}
		out[prefix.String()] = v
	}
	for k, v := range tree {
		walk(toml.Key{k}, v)
	}
	return out
}
