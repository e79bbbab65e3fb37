package stream

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/cri-runtime/cri-runtime/pkg/network"
)

// runtimeAdapter does the streams the streaming server accepted.
type runtimeAdapter struct {
	b     Backend
	drain time.Duration
}

func (r *runtimeAdapter) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	task, err := r.b.RunningTask(containerID)
	if err != nil {
		return err
	}
	code, err := execStreams(ctx, task, cmd, streams{in: in, out: out, err: errw, tty: tty, resize: resize}, r.drain)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd, code), Code: code}
	}
	return nil
}

func (r *runtimeAdapter) Attach(ctx context.Context, containerID string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	task, err := r.b.RunningTask(containerID)
	if err != nil {
		return err
	}
	att, err := task.Attach(ctx, AttachOpts{Stdin: in != nil, Stdout: out != nil, Stderr: errw != nil && !tty})
	if err != nil {
		return err
	}
	defer att.Close()
	go forwardResize(ctx, resize, task.ResizePty)
	return pump(att, streams{in: in, out: out, err: errw, tty: tty})
}

func (r *runtimeAdapter) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	netns, err := r.b.PodNetNS(podSandboxID)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	}
	if netns == "" {
		err = dial()
	} else {
		ns, lerr := network.LoadNetNS(netns)
		if lerr != nil {
			return lerr
		}
		err = ns.Do(dial)
	}
	if err != nil {
		return fmt.Errorf("connect to port %d of pod sandbox %s: %w", port, podSandboxID, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = io.Copy(stream, conn)
	stream.Close()
	wg.Wait()
	return nil
}
