package cri

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/index"
	"github.com/cri-runtime/cri-runtime/pkg/cri/lifecycle"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// sandboxMeta is what never changes about a sandbox once it runs.
type sandboxMeta struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"` // <name>_<namespace>_<uid>_<attempt>
	ConfigDigest   string   `json:"configDigest"`
	RawConfig      []byte   `json:"config"` // proto-encoded PodSandboxConfig
	RuntimeHandler string   `json:"runtimeHandler"`
	NetNSPath      string   `json:"netnsPath,omitempty"`
	IPs            []string `json:"ips,omitempty"`
	// NoPause is set for a pod without a pause process (spec.NeedsPause
	// false): its IPC and UTS namespaces are pinned as files (IPCNSPath,
	// UTSNSPath; "" where the pod uses the host's) next to its netns.
	// Records from before there was a choice have a pause.
	NoPause   bool   `json:"noPause,omitempty"`
	IPCNSPath string `json:"ipcnsPath,omitempty"`
	UTSNSPath string `json:"utsnsPath,omitempty"`
	// PauseImage is the sandbox_image the pause runs from ("" for the
	// built-in pause); its rootfs is released with the sandbox.
	PauseImage string    `json:"pauseImage,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`

	config *runtimeapi.PodSandboxConfig // decoded RawConfig
}

// sandboxStatus is a sandbox's status: its facts, its operation flags,
// and the transitions and preconditions of pkg/cri/lifecycle.
type sandboxStatus = lifecycle.Sandbox

type sandbox = index.Object[sandboxMeta, sandboxStatus]

// containerMeta is what never changes about a container.
type containerMeta struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"` // the name reserved: <name>_<sandbox name>
	SandboxID    string    `json:"sandboxID"`
	ConfigDigest string    `json:"configDigest"`
	RawConfig    []byte    `json:"config"`   // proto-encoded ContainerConfig
	ImageRef     string    `json:"imageRef"` // as requested
	ImageID      string    `json:"imageID"`
	ImageName    string    `json:"imageName"` // a repo tag or digest of ImageID
	LogPath      string    `json:"logPath,omitempty"`
	StopSignal   string    `json:"stopSignal,omitempty"`
	UID          int64     `json:"uid"`
	GID          int64     `json:"gid"`
	Groups       []int64   `json:"groups,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	// ImageVolumes are the config's mounts of images (image volumes).
	ImageVolumes []imageVolume `json:"imageVolumes,omitempty"`

	config *runtimeapi.ContainerConfig // decoded RawConfig
}

// containerStatus is a container's status: its facts, its operation
// flags, and the transitions and preconditions of pkg/cri/lifecycle.
type containerStatus = lifecycle.Container

type container = index.Object[containerMeta, containerStatus]

// record is what the store keeps of a sandbox or container.
type record[M any, S any] struct {
	Meta   M `json:"meta"`
	Status S `json:"status"`
}

func persistFunc[M any, S any](st recordStore, kind store.Kind, idOf func(M) string) func(context.Context, M, S) error {
	return func(ctx context.Context, m M, s S) error {
		return st.Put(context.WithoutCancel(ctx), kind, idOf(m), record[M, S]{Meta: m, Status: s})
	}
}

func (s *Service) newSandbox(meta sandboxMeta, st sandboxStatus) *sandbox {
	return index.NewObject(meta, st, persistFunc[sandboxMeta, sandboxStatus](s.store, store.KindSandboxes, func(m sandboxMeta) string { return m.ID }))
}

func (s *Service) newContainer(meta containerMeta, st containerStatus) *container {
	return index.NewObject(meta, st, persistFunc[containerMeta, containerStatus](s.store, store.KindContainers, func(m containerMeta) string { return m.ID }))
}

func decodeSandboxConfig(raw []byte) (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{}
	if err := proto.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("decode sandbox config: %w: %w", err, errdefs.ErrInternal)
	}
	return cfg, nil
}

func decodeContainerConfig(raw []byte) (*runtimeapi.ContainerConfig, error) {
	cfg := &runtimeapi.ContainerConfig{}
	if err := proto.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("decode container config: %w: %w", err, errdefs.ErrInternal)
	}
	return cfg, nil
}

// configDigest identifies a config, so a kubelet retry with the same config
// can be told from a name collision.
func configDigest(m proto.Message) (string, []byte, error) {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return "", nil, fmt.Errorf("encode config: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return digestOf(raw), raw, nil
}

// newID returns a random 64-hex-digit id, as the kubelet expects of
// sandbox and container ids.
func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// getSandbox finds a sandbox by id or unique prefix.
func (s *Service) getSandbox(id string) (*sandbox, error) {
	if id == "" {
		return nil, fmt.Errorf("pod_sandbox_id is empty: %w", errdefs.ErrInvalidArgument)
	}
	return s.sandboxes.Get(id)
}

// getContainer finds a container by id or unique prefix.
func (s *Service) getContainer(id string) (*container, error) {
	if id == "" {
		return nil, fmt.Errorf("container_id is empty: %w", errdefs.ErrInvalidArgument)
	}
	return s.containers.Get(id)
}

// containersOf lists the containers of a sandbox.
func (s *Service) containersOf(sandboxID string) []*container {
	var out []*container
	for _, c := range s.containers.List() {
		if c.Meta.SandboxID == sandboxID {
			out = append(out, c)
		}
	}
	return out
}

// maxNameLen bounds CRI metadata names (a DNS subdomain's 253, as the
// kubelet's names are).
const maxNameLen = 253

// validateName refuses metadata names that are empty, absurdly long, or
// could act as a path: names end up in reserved names, annotations and
// log lines, and must never be able to climb a directory.
func validateName(field, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s is empty: %w", field, errdefs.ErrInvalidArgument)
	case len(v) > maxNameLen:
		return fmt.Errorf("%s is %d bytes, over %d: %w", field, len(v), maxNameLen, errdefs.ErrInvalidArgument)
	case strings.ContainsAny(v, "/\x00") || v == "." || strings.Contains(v, ".."):
		return fmt.Errorf("%s %q must not contain '/', '..' or NUL: %w", field, v, errdefs.ErrInvalidArgument)
	}
	return nil
}
