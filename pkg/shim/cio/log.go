// Package cio wires a process's stdio inside the shim: the pipes or pty given
// to runc, the CRI-format log file, and the fan-out of output to attached
// clients (and of their input to the process).
package cio

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// MaxLogLine is the longest message one CRI log record carries; a longer
// line is split into partial (P) records followed by a final (F) one.
const MaxLogLine = 16 * 1024

// Log is a CRI-format log file (`<RFC3339Nano> <stream> <P|F> <msg>\n`).
// Every record is written with one write under the lock, and Reopen swaps the
// file under the same lock, so a record lands in exactly one file.
type Log struct {
	mu   sync.Mutex
	path string
	f    *os.File
	now  func() time.Time
}

// OpenLog opens (appends to) the log file at path, creating its directory.
func OpenLog(path string) (*Log, error) {
	l := &Log{path: path, now: time.Now}
	f, err := l.open()
	if err != nil {
		return nil, err
	}
	l.f = f
	return l, nil
}

func (l *Log) open() (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// Reopen closes the current file and opens the path again: after a rotation
// (rename) the records that follow go to a fresh file.
func (l *Log) Reopen() error {
	f, err := l.open()
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
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
	err := l.f.Close()
	l.f = nil
	return err
}

// record writes one CRI record. tag is 'P' or 'F'.
func (l *Log) record(stream string, tag byte, msg []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return os.ErrClosed
	}
	ts := l.now().Format(time.RFC3339Nano)
	buf := make([]byte, 0, len(ts)+len(stream)+len(msg)+5)
	buf = append(buf, ts...)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ', tag, ' ')
	buf = append(buf, msg...)
	buf = append(buf, '\n')
	_, err := l.f.Write(buf)
	return err
}

// LineWriter cuts one stream's bytes into CRI records. It is not safe for
// concurrent use: each stream has its own copier.
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
// MaxLogLine bytes of a longer line as a P record.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i >= 0 && i <= MaxLogLine {
			if err := w.log.record(w.stream, 'F', w.buf[:i]); err != nil {
				return len(p), err
			}
			w.buf = w.buf[i+1:]
			continue
		}
		// No newline within the first MaxLogLine bytes: emit a partial only
		// once we know more of the line follows, so that a line of exactly
		// MaxLogLine bytes stays one F record.
		if len(w.buf) > MaxLogLine {
			if err := w.log.record(w.stream, 'P', w.buf[:MaxLogLine]); err != nil {
				return len(p), err
			}
			w.buf = w.buf[MaxLogLine:]
			continue
		}
		break
	}
	if len(w.buf) == 0 {
		w.buf = nil // let a burst's big buffer go
	}
	return len(p), nil
}

// Flush writes a trailing partial line (output ended without a newline) as a
// P record, as containerd does: the kubelet adds a newline only after F
// records, so "printf DONE" reads back as "DONE", not "DONE\n".
func (w *LineWriter) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.log.record(w.stream, 'P', w.buf)
	w.buf = nil
	return err
}
