package cio

import (
	"io"
	"sync"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// slowSubscriber is how long a chunk may wait for one attached client before
// that client is dropped: a stuck client must not stall the log for long.
const slowSubscriber = 10 * time.Second

// Chunk is a piece of a process's output.
type Chunk struct {
	Stream api.Stream
	Data   []byte
}

// Subscriber receives a process's output from the moment it subscribed. C is
// closed when the output has ended (both streams at EOF); Gone is closed when
// the subscriber was dropped or unsubscribed.
type Subscriber struct {
	c              chan Chunk
	gone           chan struct{}
	once           sync.Once
	stdout, stderr bool
}

// C delivers the chunks; it is closed at the end of the output.
func (s *Subscriber) C() <-chan Chunk { return s.c }

// Gone is closed once the subscriber stopped receiving.
func (s *Subscriber) Gone() <-chan struct{} { return s.gone }

func (s *Subscriber) drop() { s.once.Do(func() { close(s.gone) }) }

// Relay copies a process's stdout and stderr to the CRI log (if any) and to
// every subscriber. With nobody subscribed and no log, output is discarded.
type Relay struct {
	mu    sync.Mutex
	subs  map[*Subscriber]struct{}
	ended bool
	done  chan struct{}
}

// NewRelay returns a relay that has not started copying.
func NewRelay() *Relay {
	return &Relay{subs: map[*Subscriber]struct{}{}, done: make(chan struct{})}
}

// Subscribe adds a subscriber for the chosen streams. After the output ended
// it returns a subscriber whose C is already closed.
func (r *Relay) Subscribe(stdout, stderr bool) *Subscriber {
	s := &Subscriber{c: make(chan Chunk, 64), gone: make(chan struct{}), stdout: stdout, stderr: stderr}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		close(s.c)
		return s
	}
	r.subs[s] = struct{}{}
	return s
}

// Unsubscribe removes s; it never blocks on the copier.
func (r *Relay) Unsubscribe(s *Subscriber) {
	s.drop()
	r.mu.Lock()
	delete(r.subs, s)
	r.mu.Unlock()
}

// Done is closed when both streams reached EOF and everything was written.
func (r *Relay) Done() <-chan struct{} { return r.done }

// Run copies stdout and stderr (either may be nil) until EOF, in two
// goroutines that it owns; when both end it flushes the log's partial lines,
// ends every subscriber and closes Done.
func (r *Relay) Run(stdout, stderr io.Reader, log *Log) {
	var wg sync.WaitGroup
	for _, src := range []struct {
		r      io.Reader
		stream api.Stream
		name   string
	}{{stdout, api.StreamStdout, "stdout"}, {stderr, api.StreamStderr, "stderr"}} {
		if src.r == nil {
			continue
		}
		var lw *LineWriter
		if log != nil {
			lw = log.Stream(src.name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.copy(src.r, src.stream, lw)
		}()
	}
	go func() {
		wg.Wait()
		r.end()
	}()
}

func (r *Relay) copy(src io.Reader, stream api.Stream, lw *LineWriter) {
	buf := make([]byte, 8*1024) // small: an idle shim keeps one per stream
	for {
		n, err := src.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			if lw != nil {
				_, _ = lw.Write(data) // drops what the log cannot take (see Log)
			}
			r.publish(Chunk{Stream: stream, Data: data})
		}
		if err != nil { // io.EOF, or EIO from a pty whose slave side closed
			break
		}
	}
	if lw != nil {
		lw.Flush()
	}
}

func (r *Relay) publish(c Chunk) {
	r.mu.Lock()
	subs := make([]*Subscriber, 0, len(r.subs))
	for s := range r.subs {
		if (c.Stream == api.StreamStdout && s.stdout) || (c.Stream == api.StreamStderr && s.stderr) {
			subs = append(subs, s)
		}
	}
	r.mu.Unlock()
	for _, s := range subs {
		select {
		case s.c <- c:
			continue
		case <-s.gone:
			continue
		default:
		}
		t := time.NewTimer(slowSubscriber)
		select {
		case s.c <- c:
		case <-s.gone:
		case <-t.C:
			r.Unsubscribe(s)
		}
		t.Stop()
	}
}

// end runs once both copiers returned: no send can race the closes below.
func (r *Relay) end() {
	r.mu.Lock()
	r.ended = true
	for s := range r.subs {
		close(s.c)
		delete(r.subs, s)
	}
	r.mu.Unlock()
	close(r.done)
}
