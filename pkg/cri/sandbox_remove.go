package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/lifecycle"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/network"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// RemovePodSandbox stops the sandbox if needed, removes its containers,
// its dir and its record, and frees its name. It is idempotent: an absent
// sandbox is success.
func (s *Service) RemovePodSandbox(ctx context.Context, r *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.getSandbox(r.GetPodSandboxId())
	if err != nil {
		if errdefs.IsNotFound(err) {
			klog.FromContext(ctx).V(4).Info("Pod sandbox to remove is gone", "podSandboxID", r.GetPodSandboxId())
			return &runtimeapi.RemovePodSandboxResponse{}, nil
		}
		return nil, err
	}
	ctx = klog.NewContext(ctx, klog.LoggerWithValues(klog.FromContext(ctx), "podSandboxID", sb.Meta.ID))
	if err := sb.Update(sandboxStatus.MarkRemoving); err != nil {
		return nil, lifecycle.WithID(err, sb.Meta.ID)
	}
	defer func() { _ = sb.Update(sandboxStatus.EndRemove) }()
	if err := s.removeSandbox(ctx, sb); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Removed pod sandbox")
	s.publishSandboxEvent(ctx, sb, evDeleted)
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// removeSandbox does the work of a remove; the caller holds the removing
// flag. The record goes last, so a remove that failed half way is found
// and finished by the next one.
func (s *Service) removeSandbox(ctx context.Context, sb *sandbox) error {
	id := sb.Meta.ID
	if err := s.stopSandbox(ctx, sb); err != nil {
		return err
	}
	for _, c := range s.containersOf(id) {
		if err := s.removeContainer(ctx, c); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s of pod sandbox: %w", c.Meta.ID, err)
		}
	}
	if err := s.removeSandboxDir(id); err != nil {
		return err
	}
	if err := s.releaseSandboxImageRootfs(ctx, sb); err != nil {
		return err
	}
	if err := s.deleteSandboxRecord(ctx, id); err != nil {
		return err
	}
	s.sandboxes.Delete(id)
	s.sandboxNames.Release(sb.Meta.Name, id)
	s.nriRemovePodSandbox(ctx, sb)
	return nil
}

// removeSandboxDir unmounts the pod's /dev/shm, if still mounted, removes
// its pinned IPC and UTS namespaces, if any, and removes the sandbox dir.
func (s *Service) removeSandboxDir(id string) error {
	if err := unmountShm(s.sandboxFile(id, sandboxShmDir)); err != nil {
		return err
	}
	if err := network.RemoveNamespaces(s.netnsDir, id); err != nil {
		return err
	}
	if err := os.RemoveAll(s.sandboxDir(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove sandbox dir: %w", err)
	}
	return nil
}

// deleteSandboxRecord deletes the sandbox's record; a missing one is fine.
func (s *Service) deleteSandboxRecord(ctx context.Context, id string) error {
	if err := s.store.Delete(context.WithoutCancel(ctx), store.KindSandboxes, id); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete sandbox record: %w", err)
	}
	return nil
}

// removeOrphanSandboxes tears down what a daemon crash in the middle of
// RunPodSandbox (or of a remove) left without a sandbox record: pinned
// netns (CNI DEL from the cache first, so IPs and host rules are freed),
// pinned IPC/UTS namespaces and sandbox dirs (their /dev/shm unmounted). It runs at start-up, before
// any RPC is served.
func (s *Service) removeOrphanSandboxes(ctx context.Context) {
	logger := klog.FromContext(ctx)
	known := func(id string) bool {
		sb, err := s.sandboxes.Get(id)
		return err == nil && sb.Meta.ID == id
	}
	if entries, err := os.ReadDir(s.netnsDir); err == nil {
		for _, e := range entries {
			id, path := e.Name(), filepath.Join(s.netnsDir, e.Name())
			if name, ok := network.PinnedName(id); ok {
				if !known(name) {
					logger.Info("Removing pinned namespaces that belong to no pod sandbox", "path", path)
					if err := network.RemoveNamespaces(s.netnsDir, name); err != nil {
						logger.Error(err, "Failed to remove orphan pinned namespaces", "podSandboxID", name)
					}
				}
				continue
			}
			if known(id) {
				continue
			}
			logger.Info("Removing a network namespace that belongs to no pod sandbox", "path", path)
			if isSandboxID(id) {
				if err := s.network.Teardown(ctx, network.SetupRequest{ID: id, NetNS: path}); err != nil {
					logger.Error(err, "Failed to tear down the network of an orphan netns", "podSandboxID", id)
					continue
				}
			}
			if err := removeNetNS(path); err != nil {
				logger.Error(err, "Failed to remove an orphan netns", "path", path)
			}
		}
	}
	if entries, err := os.ReadDir(filepath.Dir(s.sandboxDir("x"))); err == nil {
		for _, e := range entries {
			if known(e.Name()) {
				continue
			}
			logger.Info("Removing a sandbox dir that belongs to no pod sandbox", "podSandboxID", e.Name())
			if err := s.removeSandboxDir(e.Name()); err != nil {
				logger.Error(err, "Failed to remove an orphan sandbox dir", "podSandboxID", e.Name())
			}
		}
	}
}

// isSandboxID reports whether name has the form newID gives.
func isSandboxID(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, c := range name {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
