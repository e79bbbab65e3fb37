package cio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type record struct {
	stream, tag, msg string
}

func readRecords(t *testing.T, path string) []record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			t.Fatalf("record without newline: %q", line)
		}
		parts := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 4)
		if len(parts) != 4 {
			t.Fatalf("malformed record %q", line)
		}
		if _, err := time.Parse(time.RFC3339Nano, parts[0]); err != nil {
			t.Fatalf("bad timestamp in %q: %v", line, err)
		}
		out = append(out, record{parts[1], parts[2], parts[3]})
	}
	return out
}

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("a", MaxLogLine)
	for _, tc := range []struct {
		name   string
		stream string
		writes []string
		want   []record
	}{
		{"one line", "stdout", []string{"hello\n"}, []record{{"stdout", "F", "hello"}}},
		{"stderr", "stderr", []string{"oops\n"}, []record{{"stderr", "F", "oops"}}},
		{"two lines one write", "stdout", []string{"a\nb\n"}, []record{{"stdout", "F", "a"}, {"stdout", "F", "b"}}},
		{"line across writes", "stdout", []string{"he", "llo", "\n"}, []record{{"stdout", "F", "hello"}}},
		{"empty line", "stdout", []string{"\n"}, []record{{"stdout", "F", ""}}},
		// A last line without a newline stays partial, as in containerd: the
		// kubelet adds a newline after F records only.
		{"trailing partial", "stdout", []string{"a\nno newline"}, []record{{"stdout", "F", "a"}, {"stdout", "P", "no newline"}}},
		{"printf DONE", "stdout", []string{"DONE"}, []record{{"stdout", "P", "DONE"}}},
		{"exactly max", "stdout", []string{long + "\n"}, []record{{"stdout", "F", long}}},
		{"max plus one", "stdout", []string{long + "b\n"}, []record{{"stdout", "P", long}, {"stdout", "F", "b"}}},
		{"two partials", "stderr", []string{long, long, "c\n"}, []record{{"stderr", "P", long}, {"stderr", "P", long}, {"stderr", "F", "c"}}},
		{"long trailing partial", "stdout", []string{long + "tail"}, []record{{"stdout", "P", long}, {"stdout", "P", "tail"}}},
		{"nothing", "stdout", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "c.log")
			l, err := OpenLog(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			w := l.Stream(tc.stream)
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("write: %d, %v", n, err)
				}
			}
			w.Flush()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			got := readRecords(t, path)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records, want %d: %.200v", len(got), len(tc.want), got)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("record %d: got %.80v, want %.80v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestLogReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	l, err := OpenLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := l.Stream("stdout")
	w.Write([]byte("before\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("still old\n"))
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("after\n"))
	l.Close()
	if got := readRecords(t, path+".1"); len(got) != 2 || got[0].msg != "before" || got[1].msg != "still old" {
		t.Fatalf("old file: %v", got)
	}
	if got := readRecords(t, path); len(got) != 1 || got[0].msg != "after" {
		t.Fatalf("new file: %v", got)
	}
}
