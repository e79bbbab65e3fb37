package image

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Image is a pulled image. It is also the record kept in the store under
// store.KindImages, keyed by ID.
type Image struct {
	// ID is the digest of the image config: "sha256:<hex>".
	ID string `json:"id"`
	// RepoTags are normalized name:tag references ("docker.io/library/busybox:latest").
	RepoTags []string `json:"repoTags,omitempty"`
	// RepoDigests are name@digest references; the digest is the one the
	// registry resolved the pulled reference to (an index for a
	// multi-platform image).
	RepoDigests []string `json:"repoDigests,omitempty"`
	// PulledByDigest are the RepoDigests a pull asked for by that digest
	// (name@digest). They keep the image as a tag does. The other
	// RepoDigests came with a pull by tag, and go with the image's last
	// tag (Remove).
	PulledByDigest []string `json:"pulledByDigest,omitempty"`
	// Size is the bytes fetched for it: manifest, config and compressed layers.
	Size int64 `json:"size"`
	// ManifestDigest is the digest of the platform manifest that was unpacked.
	ManifestDigest string `json:"manifestDigest"`
	// Config holds the fields of the image config that a runtime uses.
	Config ImageConfig `json:"imageConfig"`
	// RawConfig is the image config exactly as the registry served it (its
	// sha256 is ID), for a verbose ImageStatus.
	RawConfig json.RawMessage `json:"rawConfig"`
	// DiffIDs are the uncompressed layer digests, bottom layer first.
	DiffIDs []string `json:"diffIDs"`
	// ChainIDs identify each layer together with the layers under it,
	// bottom first (ChainIDs[0] == DiffIDs[0]).
	ChainIDs []string `json:"chainIDs"`
	// Pinned images are skipped by the kubelet's image GC.
	Pinned bool `json:"pinned,omitempty"`
	// Created is the image's creation time from its config (zero if absent).
	Created time.Time `json:"created"`
	// PulledAt is when this node first stored the image.
	PulledAt time.Time `json:"pulledAt"`
}

// ImageConfig is the runtime part of an image config.
type ImageConfig struct {
	User         string            `json:"user,omitempty"`
	Env          []string          `json:"env,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	Volumes      []string          `json:"volumes,omitempty"`      // sorted
	ExposedPorts []string          `json:"exposedPorts,omitempty"` // sorted, "80/tcp"
	Labels       map[string]string `json:"labels,omitempty"`
}

// clone is a deep copy: what Get and List hand out never aliases the cache.
func (i Image) clone() Image {
	i.RepoTags = slices.Clone(i.RepoTags)
	i.RepoDigests = slices.Clone(i.RepoDigests)
	i.PulledByDigest = slices.Clone(i.PulledByDigest)
	i.RawConfig = slices.Clone(i.RawConfig)
	i.DiffIDs = slices.Clone(i.DiffIDs)
	i.ChainIDs = slices.Clone(i.ChainIDs)
	c := &i.Config
	c.Env = slices.Clone(c.Env)
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.Cmd = slices.Clone(c.Cmd)
	c.Volumes = slices.Clone(c.Volumes)
	c.ExposedPorts = slices.Clone(c.ExposedPorts)
	c.Labels = maps.Clone(c.Labels)
	return i
}

func (i Image) names() int { return len(i.RepoTags) + len(i.RepoDigests) }

// ParseUser splits an image config's User ("1000", "1000:1000", "nobody",
// "nobody:nogroup", "") the way ImageStatus reports it: a numeric user part
// gives uid, anything else is a username. Both are zero when User is empty.
func ParseUser(user string) (uid *int64, username string) {
	u, _, _ := strings.Cut(user, ":")
	if u == "" {
		return nil, ""
	}
	if n, err := strconv.ParseInt(u, 10, 64); err == nil && n >= 0 {
		return &n, ""
	}
	return nil, u
}
