package image

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Reference is a normalized image reference: Domain is never empty and
// Docker Hub's official images carry their "library/" prefix, so that
// "busybox" and "docker.io/library/busybox:latest" compare equal.
type Reference struct {
	Domain string // "docker.io", "registry.k8s.io", "127.0.0.1:5000"
	Path   string // "library/busybox"
	Tag    string // "latest"; empty when only Digest is given
	Digest string // "sha256:<hex>" or empty
}

const dockerHub = "docker.io"

var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	tagRE         = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE      = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	domainRE      = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]+)?$`)
)

// ParseReference normalizes an image reference the way the Docker CLI and
// the CRI runtimes do: a missing domain means docker.io, a single-component
// Docker Hub path gets "library/", and a missing tag means "latest" unless
// a digest is given. Errors are of class errdefs.ErrInvalidArgument.
func ParseReference(s string) (Reference, error) {
	bad := func(why string) (Reference, error) {
		return Reference{}, fmt.Errorf("image reference %q: %s: %w", s, why, errdefs.ErrInvalidArgument)
	}
	if s == "" || len(s) > 4096 {
		return bad("empty or too long")
	}
	var r Reference
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
		if !digestRE.MatchString(r.Digest) {
			return bad("digest must be sha256:<64 lowercase hex>")
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		r.Tag = rest[i+1:]
		rest = rest[:i]
		if !tagRE.MatchString(r.Tag) {
			return bad("invalid tag")
		}
	}
	first, remainder, hasSlash := strings.Cut(rest, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.HasPrefix(first, "[")) {
		r.Domain, r.Path = first, remainder
	} else {
		r.Domain, r.Path = dockerHub, rest
	}
	if r.Domain == "index.docker.io" || r.Domain == "registry-1.docker.io" {
		r.Domain = dockerHub
	}
	if !domainRE.MatchString(r.Domain) {
		return bad("invalid registry host")
	}
	if r.Domain == dockerHub && !strings.Contains(r.Path, "/") {
		r.Path = "library/" + r.Path
	}
	for _, c := range strings.Split(r.Path, "/") {
		if !pathComponent.MatchString(c) {
			return bad("invalid repository path")
		}
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// Name is domain/path: "docker.io/library/busybox".
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String is the full normalized reference.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// tagged is name:tag, or "" when r has no tag.
func (r Reference) tagged() string {
	if r.Tag == "" {
		return ""
	}
	return r.Name() + ":" + r.Tag
}

// digested is name@digest for a given manifest digest.
func (r Reference) digested(d string) string { return r.Name() + "@" + d }
