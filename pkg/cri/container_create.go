package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/host"
	"github.com/cri-runtime/cri-runtime/pkg/cri/spec"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/runtime"
)

// CreateContainer creates a container in a ready sandbox: its rootfs from
// the image, its OCI spec, and its task (created, not started).
func (s *Service) CreateContainer(ctx context.Context, r *runtimeapi.CreateContainerRequest) (_ *runtimeapi.CreateContainerResponse, retErr error) {
	cfg := r.GetConfig()
	if err := validateContainerConfig(cfg); err != nil {
		return nil, err
	}
	sb, err := s.getSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if err := requireReady(sb); err != nil {
		return nil, err
	}
	digest, raw, err := configDigest(cfg)
	if err != nil {
		return nil, err
	}
	id := newID()
	name := containerName(cfg.GetMetadata(), sb.Meta.Name)
	res, holder, err := s.containerNames.Reserve(ctx, name, id, digest+"/"+sb.Meta.ID)
	if err != nil {
		return nil, err
	}
	if holder != "" {
		return &runtimeapi.CreateContainerResponse{ContainerId: holder}, nil
	}
	defer func() { res.Done(retErr) }()
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("containerID", id, "podSandboxID", sb.Meta.ID))

	meta := containerMeta{ID: id, Name: name, SandboxID: sb.Meta.ID, ConfigDigest: digest, RawConfig: raw, ImageRef: cfg.GetImage().GetImage(), CreatedAt: time.Now(), config: cfg}
	if err := s.createContainer(ctx, sb, &meta); err != nil {
		return nil, err
	}
	if c, err := s.containers.Get(id); err == nil {
		s.nriNotify(ctx, c, "PostCreateContainer", s.nri.PostCreateContainer)
	}
	klog.FromContext(ctx).V(2).Info("Created container", "name", name)
	s.publishContainerEventByID(ctx, id, evCreated)
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// createContainer does the work of CreateContainer, undoing every step on
// failure.
func (s *Service) createContainer(ctx context.Context, sb *sandbox, meta *containerMeta) (retErr error) {
	var undo rollback
	defer func() {
		if retErr != nil {
			undo.run(ctx, klog.FromContext(ctx))
		}
	}()
	cfg := meta.config
	if err := s.checkContainerFeatures(sb.Meta.RuntimeHandler, cfg); err != nil {
		return err
	}
	if err := host.CheckMountPropagation(cfg.GetMounts()); err != nil {
		return err
	}
	userns, err := openPodUserNS(sb)
	if err != nil {
		return err
	}
	if userns != nil {
		defer userns.file.Close()
	}
	img, err := s.images.Get(ctx, meta.ImageRef)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("image %q is not present: %w", meta.ImageRef, errdefs.ErrNotFound)
		}
		return err
	}
	meta.ImageID, meta.ImageName, meta.StopSignal = img.ID, imageName(img, meta.ImageRef), img.Config.StopSignal
	if meta.LogPath, err = containerLogPath(sb.Meta.config.GetLogDirectory(), cfg.GetLogPath()); err != nil {
		return err
	}
	gid := podRootGID(sb.Meta.config)
	rootfs, err := s.mountRootfs(ctx, rootfsRequest{id: meta.ID, imageID: img.ID, userns: userns, gid: gid}, &undo)
	if err != nil {
		return err
	}
	specCfg, err := s.mountImageVolumes(ctx, meta, gid, &undo)
	if err != nil {
		return err
	}
	in, err := s.containerInput(sb, img, rootfs, cfg)
	if err != nil {
		return err
	}
	in.VolumesDir = s.volumesDir(meta.ID)
	gen, err := spec.ContainerSpec(meta.ID, specCfg, in, spec.WithConfig(s.cfg.Containers), spec.WithOOMScoreAdjFloor(s.oomFloor),
		spec.WithCapabilityBound(s.ownCaps))
	if err != nil {
		return err
	}
	if len(gen.Volumes) > 0 {
		undo.add("remove anonymous volumes", func(context.Context) error { return os.RemoveAll(s.volumesDir(meta.ID)) })
		if err := s.createVolumes(meta.ID, gid, rootfs, gen.Volumes); err != nil {
			return err
		}
	}
	user := gen.CRIUser().GetLinux()
	meta.UID, meta.GID, meta.Groups = user.GetUid(), user.GetGid(), user.GetSupplementalGroups()
	opts, err := s.runtimeOpts(sb.Meta.RuntimeHandler)
	if err != nil {
		return err
	}
	if meta.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(meta.LogPath), 0o755); err != nil {
			return fmt.Errorf("create log dir: %w", err)
		}
	}
	// NRI plugins adjust the spec before the task exists (nri.go).
	unblockNRI, err := s.nriCreateContainer(ctx, &undo, sb, meta, gen.Spec)
	if err != nil {
		return err
	}
	defer unblockNRI()
	if err := spec.ApplyOpts(gen.Spec, spec.WithHugetlbController(s.hugetlb, s.cfg.Containers)); err != nil {
		return err
	}
	task, err := s.tasks.Create(ctx, taskNamespace, meta.ID, runtime.CreateOpts{
		Spec:    gen.Spec,
		IO:      runtime.IO{Terminal: cfg.GetTty(), Stdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(), LogPath: meta.LogPath},
		Runtime: opts,
	})
	if err != nil {
		return err
	}
	undo.add("kill and delete task", func(ctx context.Context) error { return s.killAndDelete(ctx, task) })
	c := s.newContainer(*meta, containerStatus{})
	if err := c.UpdateSync(ctx, func(st containerStatus) (containerStatus, error) { return st, nil }); err != nil {
		return fmt.Errorf("persist container %s: %w", meta.ID, err)
	}
	undo.add("delete container record", func(ctx context.Context) error { return s.deleteContainerRecord(ctx, meta.ID) })
	return s.containers.Add(c)
}

// containerInput gathers what spec generation needs besides the config.
func (s *Service) containerInput(sb *sandbox, img image.Image, rootfs string, cfg *runtimeapi.ContainerConfig) (spec.ContainerInput, error) {
	sbCfg := sb.Meta.config
	nsOpts := sbCfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	info := spec.SandboxInfo{
		ID:             sb.Meta.ID,
		Config:         sbCfg,
		Pid:            sb.Status().Pid,
		NetNSPath:      sb.Meta.NetNSPath,
		IPCNSPath:      sb.Meta.IPCNSPath,
		UTSNSPath:      sb.Meta.UTSNSPath,
		ResolvConfPath: s.existingSandboxFile(sb.Meta.ID, sandboxResolvFile),
		HostsPath:      s.existingSandboxFile(sb.Meta.ID, sandboxHostsFile),
		HostnamePath:   s.existingSandboxFile(sb.Meta.ID, sandboxHostnameFile),
		ShmPath:        s.existingSandboxFile(sb.Meta.ID, sandboxShmDir),
	}
	if nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE {
		info.ShmPath = "/dev/shm"
	}
	in := spec.ContainerInput{
		Sandbox: info,
		Image: spec.ImageConfig{
			Name: imageName(img, cfg.GetImage().GetImage()), User: img.Config.User, Env: img.Config.Env,
			Entrypoint: img.Config.Entrypoint, Cmd: img.Config.Cmd, WorkingDir: img.Config.WorkingDir,
			StopSignal: img.Config.StopSignal, Volumes: img.Config.Volumes,
		},
		Rootfs: rootfs,
	}
	if target := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetTargetId(); target != "" {
		t, err := s.tasks.Get(taskNamespace, target)
		if err != nil {
			return in, fmt.Errorf("namespace target container %s: %w", target, err)
		}
		in.TargetPID = t.Pid()
	}
	return in, nil
}

func (s *Service) existingSandboxFile(id, name string) string {
	p := s.sandboxFile(id, name)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// rootfsRequest names the rootfs mountRootfs makes: for the container
// (or pause) id, from the image imageID; in a pod with its own user
// namespace, idmapped into userns, and its dir open to the group gid (the
// host gid of the pod's root; hostdirs.go).
type rootfsRequest struct {
	id, imageID string
	userns      *podUserNS
	gid         uint32
}

// mountRootfs prepares the container's rootfs from the image and mounts it
// on the host, where spec generation resolves users in it and runc uses it.
// In a pod with its own user namespace the layers are idmapped into it
// (host.IDMapOverlay).
func (s *Service) mountRootfs(ctx context.Context, r rootfsRequest, undo *rollback) (string, error) {
	id := r.id
	mounts, err := s.images.PrepareRootfs(ctx, id, r.imageID)
	if err != nil {
		return "", err
	}
	undo.add("release rootfs", func(ctx context.Context) error { return s.images.RemoveRootfs(ctx, id) })
	if r.userns != nil {
		var done func() error
		mounts, done, err = host.IDMapOverlay(mounts, r.userns.file, r.userns.uid, r.userns.gid, filepath.Join(s.idmapDir(), id))
		if err != nil {
			return "", fmt.Errorf("idmap rootfs of container %s: %w", id, err)
		}
		defer func() {
			if err := done(); err != nil {
				klog.FromContext(ctx).Error(err, "Failed to detach the idmapped layers of a mounted rootfs")
			}
		}()
	}
	if err := host.EnsureSharedDir(s.rootfsParentDir()); err != nil {
		return "", err
	}
	if err := host.EnsurePrivateDir(s.containerRootfsDir(id), r.gid); err != nil {
		return "", err
	}
	undo.add("unmount rootfs", func(context.Context) error { return s.removeRootfsMount(id) })
	target := s.rootfsDir(id)
	if err := os.Mkdir(target, host.PrivateDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	for _, m := range mounts {
		if err := m.Mount(target); err != nil {
			return "", fmt.Errorf("mount rootfs of container %s: %w", id, err)
		}
	}
	return target, nil
}

// deleteContainerRecord removes a container's record; a missing one is fine.
func (s *Service) deleteContainerRecord(ctx context.Context, id string) error {
	if err := s.store.Delete(ctx, "containers", id); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// containerName is the name a container is reserved under: unique per
// sandbox and attempt, as the kubelet expects.
func containerName(m *runtimeapi.ContainerMetadata, sandboxName string) string {
	return fmt.Sprintf("%s_%d_%s", m.GetName(), m.GetAttempt(), sandboxName)
}

// imageName is the name a container's image is reported under: the
// reference as requested when the image has it, else its first tag or
// digest, else its id.
func imageName(img image.Image, requested string) string {
	for _, n := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
		if n == requested || strings.HasSuffix(n, "/"+requested) {
			return n
		}
	}
	switch {
	case len(img.RepoTags) > 0:
		return img.RepoTags[0]
	case len(img.RepoDigests) > 0:
		return img.RepoDigests[0]
	}
	return img.ID
}

// containerLogPath joins the sandbox's log directory and the container's
// relative log path, refusing a path that escapes the directory.
func containerLogPath(dir, rel string) (string, error) {
	if rel == "" || dir == "" {
		return "", nil
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("log_directory %q must be absolute: %w", dir, errdefs.ErrInvalidArgument)
	}
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("log_path %q must be relative to the log directory: %w", rel, errdefs.ErrInvalidArgument)
	}
	p := filepath.Join(dir, rel)
	if r, err := filepath.Rel(filepath.Clean(dir), p); err != nil || r == ".." || strings.HasPrefix(r, "../") || r == "." {
		return "", fmt.Errorf("log_path %q escapes the log directory: %w", rel, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

func validateContainerConfig(cfg *runtimeapi.ContainerConfig) error {
	switch {
	case cfg == nil:
		return fmt.Errorf("config is missing: %w", errdefs.ErrInvalidArgument)
	case cfg.GetImage().GetImage() == "":
		return fmt.Errorf("config.image.image is empty: %w", errdefs.ErrInvalidArgument)
	}
	for i, m := range cfg.GetMounts() {
		if err := validateImageVolume(i, m); err != nil {
			return err
		}
	}
	return validateName("config.metadata.name", cfg.GetMetadata().GetName())
}
