package cri

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/cri/stream"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// maxExecSyncOutput caps what ExecSync returns of stdout and stderr
// together. The kubelet's CRI client takes messages of at most 16 MiB
// (cri-client's maxMsgSize); the rest of the response (field tags, lengths,
// the exit code) takes a few bytes of that, for which 1 KiB is plenty.
const maxExecSyncOutput = 16<<20 - 1<<10

// ExecSync runs a command in a running container through its shim and
// returns its output and exit code. A timeout kills the command. Output
// beyond maxExecSyncOutput (both streams together) is dropped.
func (s *Service) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(r.GetCmd()) == 0 {
		return nil, fmt.Errorf("cmd is empty: %w", errdefs.ErrInvalidArgument)
	}
	task, err := s.runningTask(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	out := stream.NewCappedOutput(maxExecSyncOutput)
	stdout, stderr := out.Stream(), out.Stream()
	code, err := stream.Exec(ctx, streamTask{task}, stream.ExecOpts{Cmd: r.GetCmd(), Timeout: time.Duration(r.GetTimeout()) * time.Second,
		Stdout: stdout, Stderr: stderr, Drain: time.Duration(s.cfg.DrainExecSyncIOTimeout)})
	if err != nil {
		return nil, err
	}
	if out.Dropped() > 0 {
		klog.FromContext(ctx).V(4).Info("Truncated ExecSync output", "containerID", task.ID(), "droppedBytes", out.Dropped(), "limit", maxExecSyncOutput)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// runningTask finds the task of a running container.
func (s *Service) runningTask(id string) (taskHandle, error) {
	c, err := s.getContainer(id)
	if err != nil {
		return nil, err
	}
	if err := requireRunning(c); err != nil {
		return nil, err
	}
	return s.liveTask(c)
}
