package cio

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// TestOpenLogRefusesSymlink: a symlink planted at the log path (to a host
// file, or dangling) is refused on open and on reopen, and nothing is
// written or created through it.
func TestOpenLogRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "host-file")
	if err := os.WriteFile(host, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{host, filepath.Join(dir, "not-there")} {
		path := filepath.Join(t.TempDir(), "c.log")
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		l, err := OpenLog(path, nil)
		if err == nil {
			l.Stream("stdout").Write([]byte("through the link\n"))
			l.Close()
			t.Fatalf("OpenLog through a symlink to %s succeeded", target)
		}
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "symlink") {
			t.Fatalf("OpenLog through a symlink: %v, want InvalidArgument naming the symlink", err)
		}
	}
	if data, _ := os.ReadFile(host); string(data) != "precious\n" {
		t.Fatalf("host file changed: %q", data)
	}
	if _, err := os.Lstat(filepath.Join(dir, "not-there")); !os.IsNotExist(err) {
		t.Fatalf("a dangling link's target was created: %v", err)
	}

	// Reopen after a "rotation" that left a symlink in the log's place.
	path := filepath.Join(t.TempDir(), "c.log")
	l, err := OpenLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := l.Stream("stdout")
	w.Write([]byte("before\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, path); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("Reopen onto a symlink: %v, want InvalidArgument naming the symlink", err)
	}
	w.Write([]byte("still old\n")) // the old file stays in use
	l.Close()
	if data, _ := os.ReadFile(host); string(data) != "precious\n" {
		t.Fatalf("host file changed: %q", data)
	}
	if got := readRecords(t, path+".1"); len(got) != 2 || got[1].msg != "still old" {
		t.Fatalf("old file after a refused reopen: %v", got)
	}
}

// TestOpenLogRefusesNonRegular: a FIFO at the log path is refused at once
// (no open that blocks for a reader), and so is a directory.
func TestOpenLogRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.log")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		l, err := OpenLog(fifo, nil)
		if err == nil {
			l.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errdefs.IsInvalidArgument(err) {
			t.Fatalf("OpenLog of a FIFO: %v, want InvalidArgument", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OpenLog of a FIFO blocked")
	}
	if err := os.Mkdir(filepath.Join(dir, "d.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLog(filepath.Join(dir, "d.log"), nil); err == nil {
		t.Fatal("OpenLog of a directory succeeded")
	}
}

// fakeClock is a settable now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestLogFullFilesystem writes into a real full file system (a 64 KiB
// tmpfs): the line writer keeps no more than one line of buffer, dropped
// records are counted, no record is torn, the failure is logged once, and
// once there is room again (after the retry interval) records are written.
func TestLogFullFilesystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	var logged bytes.Buffer
	path := filepath.Join(dir, "c.log")
	l, err := OpenLog(path, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	clock := &fakeClock{t: time.Now()}
	l.now = clock.now

	out, noNL := l.Stream("stdout"), l.Stream("stderr")
	lines := []byte(strings.Repeat("y\n", 4096))
	zeros := bytes.Repeat([]byte{'z'}, 8192)
	for i := 0; i < 256; i++ { // 2 MiB of lines, 2 MiB without a newline
		out.Write(lines)
		noNL.Write(zeros)
		clock.t = clock.t.Add(10 * time.Millisecond) // retries happen on the way
		if len(out.buf) > MaxLogLine || len(noNL.buf) > MaxLogLine {
			t.Fatalf("after %d writes the line writers hold %d and %d bytes", i+1, len(out.buf), len(noNL.buf))
		}
	}
	recs, dropped := l.Dropped()
	if recs == 0 || dropped < 3<<20+1<<19 {
		t.Fatalf("dropped %d records, %d bytes; want most of 4 MiB", recs, dropped)
	}
	before := readRecords(t, path) // every record whole: no torn write left
	if len(before) == 0 {
		t.Fatal("nothing was logged before the file system filled")
	}
	if n := strings.Count(logged.String(), "Could not write the CRI log"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%.2000s", n, logged.String())
	}

	// Room again: records are written once the retry interval passed.
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT, "size=8m"); err != nil {
		t.Fatalf("remount bigger: %v", err)
	}
	out.Write([]byte("dropped: within the retry interval\n"))
	clock.t = clock.t.Add(logRetryInterval)
	out.Write([]byte("after\n"))
	noNL.Write([]byte("tail"))
	noNL.Flush()
	after := readRecords(t, path)
	got := after[len(before):]
	// stdout's line, then stderr's unfinished line (MaxLogLine bytes of z
	// still buffered) and "tail" as P records.
	if len(got) < 2 || got[0] != (record{"stdout", "F", "after"}) {
		t.Fatalf("records after the space came back: %.300v", got)
	}
	var tail strings.Builder
	for _, r := range got[1:] {
		if r.stream != "stderr" || r.tag != "P" || len(r.msg) > MaxLogLine {
			t.Fatalf("record after the space came back: %.300v", r)
		}
		tail.WriteString(r.msg)
	}
	if !strings.HasSuffix(tail.String(), "ztail") {
		t.Fatalf("stderr after the space came back ends %q", tail.String()[max(0, tail.Len()-20):])
	}
	if recs, _ := l.Dropped(); recs != 0 {
		t.Fatalf("dropped count not reset after a write succeeded: %d", recs)
	}
	if n := strings.Count(logged.String(), "Resumed writing the CRI log"); n != 1 {
		t.Fatalf("the recovery was logged %d times, want once:\n%s", n, logged.String())
	}
}
