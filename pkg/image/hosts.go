package image

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Registry hosts directories, in containerd's format (its
// core/remotes/docker/config): [registry] config_path names one or more
// directories (a colon-separated list, the first that has a host's
// directory wins) holding one directory per registry host:
//
//	<config_path>/docker.io/hosts.toml
//	<config_path>/127.0.0.1:5000/hosts.toml   (or 127.0.0.1_5000_/)
//	<config_path>/_default/hosts.toml          (every host without its own)
//
// A hosts.toml lists the hosts to pull from in order, then the upstream
// server:
//
//	server = "https://registry-1.docker.io"   # default https://<host>
//	[host."https://mirror.example.com"]
//	  capabilities = ["pull", "resolve"]      # default: all
//	  ca = "/etc/certs/mirror-ca.pem"          # or a list
//	  client = [["client.cert", "client.key"]] # or "both.pem", or a list of such
//	  skip_verify = false
//	  override_path = false                    # the URL path is the API root
//	  dial_timeout = "5s"
//	  [host."https://mirror.example.com".header]
//	    x-custom = "value"                     # or a list of values
//
// The top-level keys besides server (capabilities, ca, client, ...) apply
// to the server. Relative file names are relative to the host's
// directory. A host directory without hosts.toml is read the Docker way:
// *.crt files are CAs, *.cert files client certificates with the *.key of
// the same name. Unlike containerd, which rereads a host's files on every
// pull and skips a file it cannot parse, cri-runtime reads the whole tree
// at start and on SIGHUP, and refuses a file it cannot parse, naming the
// file and the key, so that a typo never silently sends pulls elsewhere.

// hostCaps is what a host may be used for.
type hostCaps uint8

const (
	capPull hostCaps = 1 << iota
	capResolve
	capPush
	capAll = capPull | capResolve | capPush
)

// hostEntry is one place a hosts.toml says to pull from.
type hostEntry struct {
	scheme string // "https" or "http"
	host   string // host[:port]; "" for a server that defaults to the pulled host
	// apiRoot is where the registry API lives on host: "/v2" unless the
	// URL had a path (then <path>/v2, or <path> with override_path).
	apiRoot string
	caps    hostCaps
	header  http.Header
	// rt carries the entry's own TLS and dial settings; nil: the
	// service's default transports.
	rt http.RoundTripper
	// tls is the entry's TLS config when it sets ca, client or skip_verify.
	tls         *tls.Config
	dialTimeout time.Duration
}

// hostsFile is what one host's directory says.
type hostsFile struct {
	path   string      // the hosts.toml, or the directory of a Docker-style one
	hosts  []hostEntry // in file order
	server hostEntry
}

// hostsDirs is the parsed config_path: one hostsFile per host, by
// "host[:port]", and _default.
type hostsDirs struct {
	files map[string]*hostsFile
	def   *hostsFile
}

// hostFileSettings are the keys of a [host."URL"] table and, for the
// server, of the file's top level.
type hostFileSettings struct {
	Capabilities []string       `toml:"capabilities"`
	CA           any            `toml:"ca"`
	Client       any            `toml:"client"`
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"`
	OverridePath bool           `toml:"override_path"`
	DialTimeout  string         `toml:"dial_timeout"`
}

type hostsFileTOML struct {
	Server string `toml:"server"`
	hostFileSettings
	Host map[string]hostFileSettings `toml:"host"`
}

// hostPortDir is containerd's spelling of host:port in a directory name
// where ':' is not wanted: "host_port_".
var hostPortDir = regexp.MustCompile(`^(.+)_([0-9]+)_$`)

// loadHostsDirs reads every host directory under configPath (a
// colon-separated list; "" means none). A directory that does not exist
// counts as empty, so that an operator may create it later and reload.
func loadHostsDirs(configPath string) (*hostsDirs, error) {
	d := &hostsDirs{files: map[string]*hostsFile{}}
	if configPath == "" {
		return d, nil
	}
	for _, root := range filepath.SplitList(configPath) {
		ents, err := os.ReadDir(root)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("registry hosts dir: %w", err)
		}
		// host_port_ before host:port, as containerd looks them up.
		sort.SliceStable(ents, func(i, j int) bool {
			return hostPortDir.MatchString(ents[i].Name()) && !hostPortDir.MatchString(ents[j].Name())
		})
		for _, e := range ents {
			dir := filepath.Join(root, e.Name())
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				continue
			}
			key := e.Name()
			if m := hostPortDir.FindStringSubmatch(key); m != nil {
				key = m[1] + ":" + m[2]
			}
			if key == "_default" {
				if d.def != nil {
					continue // an earlier root has one
				}
			} else if _, ok := d.files[key]; ok {
				continue
			}
			f, err := loadHostDir(dir)
			if err != nil {
				return nil, err
			}
			if key == "_default" {
				d.def = f
			} else {
				d.files[key] = f
			}
		}
	}
	return d, nil
}

// CheckHostsDirs reads and checks what LoadHostsDirs would use: every
// hosts.toml and every certificate and key file they name. It is what
// `cri-runtime config check` runs.
func CheckHostsDirs(configPath string) error {
	_, err := loadHostsDirs(configPath)
	return err
}

func loadHostDir(dir string) (*hostsFile, error) {
	file := filepath.Join(dir, "hosts.toml")
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return loadCertFiles(dir)
	case err != nil:
		return nil, fmt.Errorf("registry hosts file: %w", err)
	}
	f, err := parseHostsFile(dir, data)
	if err != nil {
		return nil, fmt.Errorf("registry hosts file %s: %w", file, err)
	}
	f.path = file
	return f, nil
}

// parseHostsFile parses a hosts.toml whose relative paths are relative to
// dir. Errors are of class ErrInvalidArgument and name the key.
func parseHostsFile(dir string, data []byte) (*hostsFile, error) {
	var raw hostsFileTOML
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("unknown keys %s: %w", strings.Join(keys, ", "), errdefs.ErrInvalidArgument)
	}
	f := &hostsFile{}
	// The hosts in the order the file lists them (a map loses it).
	var order []string
	for _, k := range md.Keys() {
		if len(k) >= 2 && k[0] == "host" && !slices.Contains(order, k[1]) {
			order = append(order, k[1])
		}
	}
	for _, u := range order {
		e, err := parseHostEntry(u, dir, raw.Host[u])
		if err != nil {
			return nil, fmt.Errorf("host.%q: %w", u, err)
		}
		f.hosts = append(f.hosts, e)
	}
	if f.server, err = parseHostEntry(raw.Server, dir, raw.hostFileSettings); err != nil {
		if raw.Server != "" {
			return nil, fmt.Errorf("server %q: %w", raw.Server, err)
		}
		return nil, err
	}
	// A tag is resolved by the first host that may resolve and pull; with
	// none, every pull by tag would fail. Say so now.
	usable := f.server.caps&(capPull|capResolve) == capPull|capResolve
	for _, e := range f.hosts {
		usable = usable || e.caps&(capPull|capResolve) == capPull|capResolve
	}
	if !usable {
		return nil, fmt.Errorf("no host (nor the server) has both the pull and the resolve capability: %w", errdefs.ErrInvalidArgument)
	}
	return f, nil
}

// parseHostEntry turns one table into a hostEntry; rawURL "" is the
// server of a file that does not name one (the pulled host over https).
func parseHostEntry(rawURL, dir string, c hostFileSettings) (hostEntry, error) {
	bad := func(key, format string, args ...any) (hostEntry, error) {
		return hostEntry{}, fmt.Errorf("%s: %s: %w", key, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
	}
	e := hostEntry{scheme: "https", apiRoot: "/v2"}
	if rawURL != "" {
		if !strings.Contains(rawURL, "://") {
			rawURL = "https://" + rawURL
		}
		u, err := url.Parse(rawURL)
		if err != nil {
			return bad("url", "%v", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return bad("url", "scheme must be http or https")
		}
		if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return bad("url", "want scheme://host[:port][/path]")
		}
		if err := validateHost(u.Host); err != nil {
			return hostEntry{}, err
		}
		e.scheme, e.host = u.Scheme, u.Host
		switch p := u.Path; {
		case c.OverridePath:
			e.apiRoot = strings.TrimSuffix(path.Clean("/"+p), "/")
		case p != "" && p != "/":
			e.apiRoot = path.Clean("/" + p)
			if !strings.HasSuffix(e.apiRoot, "/v2") {
				e.apiRoot += "/v2"
			}
		}
	} else if c.OverridePath {
		return bad("override_path", "needs a server with a path")
	}
	e.caps = capAll
	if len(c.Capabilities) > 0 {
		e.caps = 0
		for _, cp := range c.Capabilities {
			switch strings.ToLower(cp) {
			case "pull":
				e.caps |= capPull
			case "resolve":
				e.caps |= capResolve
			case "push":
				e.caps |= capPush
			default:
				return bad("capabilities", "unknown capability %q (want pull, resolve, push)", cp)
			}
		}
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	var caFiles []string
	switch v := c.CA.(type) {
	case nil:
	case string:
		caFiles = []string{abs(v)}
	case []any:
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				return bad(fmt.Sprintf("ca[%d]", i), "want a file name, got %T", x)
			}
			caFiles = append(caFiles, abs(s))
		}
	default:
		return bad("ca", "want a file name or a list of them, got %T", v)
	}
	var pairs [][2]string
	switch v := c.Client.(type) {
	case nil:
	case string:
		pairs = [][2]string{{abs(v), ""}}
	case []any:
		for i, x := range v {
			switch p := x.(type) {
			case string:
				pairs = append(pairs, [2]string{abs(p), ""})
			case []any:
				cert, ok1 := elem(p, 0)
				key, ok2 := elem(p, 1)
				if len(p) != 2 || !ok1 || !ok2 {
					return bad(fmt.Sprintf("client[%d]", i), "want [cert, key] file names")
				}
				pairs = append(pairs, [2]string{abs(cert), abs(key)})
			default:
				return bad(fmt.Sprintf("client[%d]", i), "want a file name or a [cert, key] pair, got %T", x)
			}
		}
	default:
		return bad("client", "want a file name, a list of them, or a list of [cert, key] pairs, got %T", v)
	}
	if len(c.Header) > 0 {
		e.header = http.Header{}
		for k, v := range c.Header {
			switch hv := v.(type) {
			case string:
				e.header.Add(k, hv)
			case []any:
				for _, x := range hv {
					s, ok := x.(string)
					if !ok {
						return bad(fmt.Sprintf("header.%q", k), "want a string or a list of strings, got %T", x)
					}
					e.header.Add(k, s)
				}
			default:
				return bad(fmt.Sprintf("header.%q", k), "want a string or a list of strings, got %T", v)
			}
		}
	}
	if c.DialTimeout != "" {
		d, err := time.ParseDuration(c.DialTimeout)
		if err != nil || d <= 0 {
			return bad("dial_timeout", "%q is not a positive duration", c.DialTimeout)
		}
		e.dialTimeout = d
	}
	if len(caFiles) > 0 || len(pairs) > 0 || c.SkipVerify != nil {
		cfg, err := loadTLS(caFiles, pairs, c.SkipVerify != nil && *c.SkipVerify)
		if err != nil {
			return hostEntry{}, err
		}
		e.tls = cfg
	}
	return e, nil
}

func elem(xs []any, i int) (string, bool) {
	if i >= len(xs) {
		return "", false
	}
	s, ok := xs[i].(string)
	return s, ok
}
