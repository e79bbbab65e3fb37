package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// maxRequest bounds one request line, its newline included.
const maxRequest = 4 << 20

// Serve accepts connections on l until Shutdown was accepted (or l fails).
// It closes l, and returns once every connection handler has finished.
func (s *Service) Serve(l net.Listener) error {
	go func() {
		<-s.shutdown
		l.Close()
	}()
	var err error
	for {
		var conn net.Conn
		conn, err = l.Accept()
		if err != nil {
			break
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.handle(conn)
			if s.requestDone != nil {
				s.requestDone()
			}
		}()
	}
	select {
	case <-s.shutdown:
		err = nil
	default:
	}
	s.conns.Wait()
	return err
}

// streamConn is an Attach connection: reads go through the buffered reader
// that already holds what followed the request line.
type streamConn struct {
	io.Reader
	net.Conn
}

func (c streamConn) Read(p []byte) (int, error) { return c.Reader.Read(p) }

func (s *Service) handle(conn net.Conn) {
	// Small: readLine takes longer lines in chunks, and every open
	// connection's reader (a Wait's lasts the task's life) counts towards
	// the heap that triggers the first GC (see cmd/cri-runtime-shim).
	br := bufio.NewReaderSize(conn, 4*1024)
	line, err := readLine(br)
	if err != nil {
		if errors.Is(err, errdefs.ErrResourceExhausted) {
			writeResponse(conn, nil, err) // the client reads it once its write fails
		}
		conn.Close()
		return
	}
	var req api.Request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(conn, nil, fmt.Errorf("decode request: %w: %w", err, errdefs.ErrInvalidArgument))
		conn.Close()
		return
	}
	if req.Method == api.MethodAttach {
		s.attach(streamConn{br, conn}, req.Params)
		return
	}
	defer conn.Close()
	ctx := s.ctx
	if req.Method == api.MethodWait {
		// The client cancels a Wait by closing the connection.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			io.Copy(io.Discard, br)
			cancel()
		}()
	}
	result, err := s.dispatch(ctx, req)
	writeResponse(conn, result, err)
	if req.Method == api.MethodShutdown && err == nil {
		s.shutdownOnce.Do(func() { close(s.shutdown) })
	}
}

// readLine reads one request line of at most maxRequest bytes; a longer
// one is ErrResourceExhausted, and the rest of it is left unread. The limit
// is checked on every chunk, the last one too: a line that ends in the
// chunk that crosses the limit is over it.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxRequest {
			return nil, fmt.Errorf("request over %d bytes: %w", maxRequest, errdefs.ErrResourceExhausted)
		}
		line = append(line, chunk...)
		if err == nil {
			return bytes.TrimSpace(line), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

func writeResponse(w io.Writer, result any, err error) {
	var resp api.Response
	if err != nil {
		resp.Error = &api.Error{Class: errdefs.ClassName(err), Message: err.Error()}
	} else if result != nil {
		data, merr := json.Marshal(result)
		if merr != nil {
			resp.Error = &api.Error{Class: "Internal", Message: merr.Error()}
		} else {
			resp.Result = data
		}
	}
	data, _ := json.Marshal(resp)
	data = append(data, '\n')
	_, _ = w.Write(data) // a client that went away sees EOF; nothing to do here
}

func decode(params json.RawMessage, v any) error {
	if len(params) == 0 {
		return nil
	}
	if err := json.Unmarshal(params, v); err != nil {
		return fmt.Errorf("decode params: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// call decodes the params into Req and runs fn.
func call[Req any](params json.RawMessage, fn func(Req) (any, error)) (any, error) {
	var req Req
	if err := decode(params, &req); err != nil {
		return nil, err
	}
	return fn(req)
}

func (s *Service) dispatch(ctx context.Context, req api.Request) (any, error) {
	switch req.Method {
	case api.MethodConnect:
		return s.connect(), nil
	case api.MethodCreate:
		return call(req.Params, func(r api.CreateRequest) (any, error) { return s.create(r) })
	case api.MethodStart:
		return call(req.Params, func(r api.ProcessRequest) (any, error) {
			p, err := s.lookup(r.ExecID)
			if err != nil {
				return nil, err
			}
			pid, err := p.Start(s.ctx, s.track)
			return api.StartResponse{Pid: pid}, err
		})
	case api.MethodExec:
		return call(req.Params, func(r api.ExecRequest) (any, error) { return nil, s.exec(r) })
	case api.MethodKill:
		return call(req.Params, func(r api.KillRequest) (any, error) {
			p, err := s.lookup(r.ExecID)
			if err != nil {
				return nil, err
			}
			return nil, p.Kill(s.ctx, int(r.Signal), r.All)
		})
	case api.MethodDelete:
		return call(req.Params, func(r api.ProcessRequest) (any, error) { return s.delete(r) })
	case api.MethodState:
		return call(req.Params, func(r api.ProcessRequest) (any, error) {
			p, err := s.lookup(r.ExecID)
			if err != nil {
				return nil, err
			}
			return p.State(), nil
		})
	case api.MethodPids:
		return s.pids()
	case api.MethodResizePty:
		return call(req.Params, func(r api.ResizePtyRequest) (any, error) {
			p, err := s.lookup(r.ExecID)
			if err != nil {
				return nil, err
			}
			return nil, p.ResizePty(r.Width, r.Height)
		})
	case api.MethodCloseStdin:
		return call(req.Params, func(r api.ProcessRequest) (any, error) {
			p, err := s.lookup(r.ExecID)
			if err != nil {
				return nil, err
			}
			return nil, p.CloseStdin()
		})
	case api.MethodWait:
		return call(req.Params, func(r api.ProcessRequest) (any, error) {
			p, err := s.lookup(r.ExecID)
			if err != nil {
				return nil, err
			}
			return p.Wait(ctx)
		})
	case api.MethodUpdate:
		return call(req.Params, func(r api.UpdateRequest) (any, error) { return nil, s.update(r) })
	case api.MethodReopenLog:
		p, err := s.lookup("")
		if err != nil {
			return nil, err
		}
		return nil, p.ReopenLog()
	case api.MethodShutdown:
		return nil, s.shutdownTask()
	default:
		return nil, fmt.Errorf("method %q: %w", req.Method, errdefs.ErrNotImplemented)
	}
}

func (s *Service) update(r api.UpdateRequest) error {
	if _, err := s.lookup(""); err != nil {
		return err
	}
	var res specs.LinuxResources
	if err := decode(r.Resources, &res); err != nil {
		return err
	}
	return s.procs.Update(s.ctx, &res)
}

// attach answers the Attach request and turns the connection into a Frame
// stream until the process's output ended or the client left.
func (s *Service) attach(conn streamConn, params json.RawMessage) {
	serve, err := func() (func(io.ReadWriteCloser), error) {
		var r api.AttachRequest
		if err := decode(params, &r); err != nil {
			return nil, err
		}
		p, err := s.lookup(r.ExecID)
		if err != nil {
			return nil, err
		}
		return p.Attach(r)
	}()
	writeResponse(conn, nil, err)
	if err != nil {
		conn.Close()
		return
	}
	serve(conn)
}
