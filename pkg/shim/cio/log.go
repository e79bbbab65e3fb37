// Package cio wires a process's stdio inside the shim: the pipes or pty given
// to runc, the CRI-format log file, and the fan-out of output to attached
// clients (and of their input to the process).
package cio

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// MaxLogLine is the longest message one CRI log record carries; a longer
// line is split into partial (P) records followed by a final (F) one.
const MaxLogLine = 16 * 1024

// logRetryInterval is how long records are dropped without trying after a
// write to the log failed (a full or broken file system): a flood into a
// full disk costs one failed write a second, not one per line.
const logRetryInterval = time.Second

// Log is a CRI-format log file (`<RFC3339Nano> <stream> <P|F> <msg>\n`).
// Every record is written with one write under the lock, and Reopen swaps the
// file under the same lock, so a record lands in exactly one file.
//
// A record that cannot be written is dropped and counted, never kept: the
// shim lives outside the container's memory cgroup, so output it buffered
// for a full disk would be charged to the node. After a failure, records are
// dropped for logRetryInterval, then the next one is tried again; the
// failure and the recovery are logged once each, with what was dropped.
type Log struct {
	mu   sync.Mutex
	path string
	f    *os.File
	now  func() time.Time
	log  *slog.Logger

	failing      bool      // the last write failed
	retryAt      time.Time // while failing: when to try a write again
	torn         bool      // a failed write left part of a record in the file
	droppedRecs  uint64    // since the failure began
	droppedBytes uint64
}

// OpenLog opens (appends to) the log file at path, creating its directory.
// The file itself must not be a symlink: it is opened with O_NOFOLLOW
// relative to its directory, so a link planted at the log path (pointing at
// a host file) is refused rather than written through. log receives the
// log's own failures (nil: discarded).
func OpenLog(path string, log *slog.Logger) (*Log, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Log{path: path, now: time.Now, log: log.With("path", path)}
	f, err := l.open()
	if err != nil {
		return nil, err
	}
	l.f = f
	return l, nil
}

// open opens the directory, then the file name in it with O_NOFOLLOW (and
// O_NONBLOCK, so that a FIFO planted there does not block the open); a
// symlink or anything but a regular file is ErrInvalidArgument.
func (l *Log) open() (*os.File, error) {
	dir, name := filepath.Split(l.path)
	if name == "" {
		return nil, fmt.Errorf("log path %q names a directory: %w", l.path, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open log dir %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o640)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("log file %s is a symlink; refusing to write through it: %w", l.path, errdefs.ErrInvalidArgument)
	case errors.Is(err, unix.ENXIO): // a FIFO without a reader
		return nil, fmt.Errorf("log file %s is not a regular file: %w", l.path, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", l.path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat log %s: %w", l.path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("log file %s is not a regular file (mode %#o): %w", l.path, st.Mode&unix.S_IFMT, errdefs.ErrInvalidArgument)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("log %s: %w", l.path, err)
	}
	return os.NewFile(uintptr(fd), l.path), nil
}

// Reopen closes the current file and opens the path again: after a rotation
// (rename) the records that follow go to a fresh file. When the open fails
// the current file stays in use.
func (l *Log) Reopen() error {
	f, err := l.open()
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.torn = false // a torn record stays in the old file
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file; later records are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	if l.failing {
		l.log.Warn("Closed the CRI log while its writes were failing", "droppedRecords", l.droppedRecs, "droppedBytes", l.droppedBytes)
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Dropped is what was dropped since writes began failing (zero when the
// last write succeeded).
func (l *Log) Dropped() (records, bytes uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.droppedRecs, l.droppedBytes
}

// record writes one CRI record. tag is 'P' or 'F'. It never keeps msg: a
// record that cannot be written is dropped (see Log).
func (l *Log) record(stream string, tag byte, msg []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	now := l.now()
	if l.failing && now.Before(l.retryAt) {
		l.drop(tag, msg)
		return
	}
	ts := now.Format(time.RFC3339Nano)
	buf := make([]byte, 0, len(ts)+len(stream)+len(msg)+6)
	if l.torn { // end the torn record's line, so it cannot swallow this one
		buf = append(buf, '\n')
	}
	buf = append(buf, ts...)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ', tag, ' ')
	buf = append(buf, msg...)
	buf = append(buf, '\n')
	n, err := l.f.Write(buf)
	if err != nil {
		l.writeFailed(n, err, now)
		l.drop(tag, msg)
		return
	}
	l.torn = false
	if l.failing {
		l.log.Info("Resumed writing the CRI log", "droppedRecords", l.droppedRecs, "droppedBytes", l.droppedBytes)
		l.failing, l.droppedRecs, l.droppedBytes = false, 0, 0
	}
}

// drop counts a record that was not written, in bytes of the process's
// output (an F record's newline included).
func (l *Log) drop(tag byte, msg []byte) {
	l.droppedRecs++
	l.droppedBytes += uint64(len(msg))
	if tag == 'F' {
		l.droppedBytes++
	}
}

// writeFailed handles a failed write of which n bytes reached the file: it
// cuts them off again (O_APPEND and one writer: they are the file's last n
// bytes), or, if that fails too, has the next record start a new line.
func (l *Log) writeFailed(n int, err error, now time.Time) {
	if n > 0 {
		if fi, serr := l.f.Stat(); serr != nil || l.f.Truncate(fi.Size()-int64(n)) != nil {
			l.torn = true
		}
	}
	if !l.failing {
		l.log.Error("Could not write the CRI log; dropping output until a write succeeds", "err", err, "retryEvery", logRetryInterval.String())
		l.failing = true
	}
	l.retryAt = now.Add(logRetryInterval)
}

// LineWriter cuts one stream's bytes into CRI records. It is not safe for
// concurrent use: each stream has its own copier. It holds at most
// MaxLogLine bytes of an unfinished line, whatever happens to the writes.
type LineWriter struct {
	log    *Log
	stream string
	buf    []byte
}

// Stream returns the LineWriter of the named stream ("stdout" or "stderr").
func (l *Log) Stream(name string) *LineWriter {
	return &LineWriter{log: l, stream: name}
}

// Write buffers p and writes every complete line as an F record, and every
// MaxLogLine bytes of a longer line as a P record. It always consumes all of
// p: records the log cannot write are dropped there.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	rest := w.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i >= 0 && i <= MaxLogLine {
			w.log.record(w.stream, 'F', rest[:i])
			rest = rest[i+1:]
			continue
		}
		// No newline within the first MaxLogLine bytes: emit a partial only
		// once we know more of the line follows, so that a line of exactly
		// MaxLogLine bytes stays one F record.
		if len(rest) > MaxLogLine {
			w.log.record(w.stream, 'P', rest[:MaxLogLine])
			rest = rest[MaxLogLine:]
			continue
		}
		break
	}
	switch {
	case len(rest) == 0:
		w.buf = nil // let a burst's big buffer go
	case len(rest) < len(w.buf):
		w.buf = append(w.buf[:0:0], rest...) // keep only the tail, not the burst
	}
	return len(p), nil
}

// Flush writes a trailing partial line (output ended without a newline) as a
// P record, as containerd does: the kubelet adds a newline only after F
// records, so "printf DONE" reads back as "DONE", not "DONE\n".
func (w *LineWriter) Flush() {
	if len(w.buf) == 0 {
		return
	}
	w.log.record(w.stream, 'P', w.buf)
	w.buf = nil
}
