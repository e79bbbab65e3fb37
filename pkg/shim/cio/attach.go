package cio

import (
	"io"
	"sync"

	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// ServeAttach streams the process's output to conn as Frames from now on and,
// with req.Stdin, writes the client's StreamStdin frames to the process's
// stdin. It returns, having closed conn, when the output ended or the client
// went away.
func (i *IO) ServeAttach(conn io.ReadWriteCloser, req api.AttachRequest) {
	sub := i.relay.Subscribe(req.Stdout, req.Stderr)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // reader: stdin frames, and noticing the client leave
		defer wg.Done()
		defer i.relay.Unsubscribe(sub)
		i.readStdin(conn, req.Stdin)
	}()
	for done := false; !done; {
		select {
		case c, ok := <-sub.C():
			if !ok {
				done = true
				break
			}
			if err := api.WriteFrame(conn, c.Stream, c.Data); err != nil {
				i.relay.Unsubscribe(sub)
				done = true
			}
		case <-sub.Gone():
			done = true
		}
	}
	conn.Close() // ends the reader too
	wg.Wait()
}

func (i *IO) readStdin(r io.Reader, stdin bool) {
	if stdin {
		defer i.stdinDetached()
	}
	for {
		s, p, err := api.ReadFrame(r)
		if err != nil {
			return
		}
		if !stdin {
			continue
		}
		switch s {
		case api.StreamStdin:
			_ = i.WriteStdin(p) // a closed stdin drops the input, like a closed pipe
		case api.StreamStdinClose:
			_ = i.CloseStdin()
		}
	}
}
