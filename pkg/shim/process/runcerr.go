package process

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// This file is the only place where runc's error texts are matched: runc
// has no error codes (runtime-spec #1061), so its stderr and log.json are
// turned into errdefs classes here and nowhere else.

// runcErrorClasses maps fragments of runc's messages to classes, first match
// wins.
var runcErrorClasses = []struct {
	fragment string
	class    error
}{
	{"container does not exist", errdefs.ErrNotFound},
	{"does not exist", errdefs.ErrNotFound},
	{"process already finished", errdefs.ErrNotFound},
	{"no such process", errdefs.ErrNotFound},
	{"container not running", errdefs.ErrFailedPrecondition},
	{"not running", errdefs.ErrFailedPrecondition},
	{"cannot exec in a stopped container", errdefs.ErrFailedPrecondition},
	{"is paused", errdefs.ErrFailedPrecondition},
	{"already exists", errdefs.ErrAlreadyExists},
	{"executable file not found", errdefs.ErrInvalidArgument},
	{"no such file or directory", errdefs.ErrInvalidArgument},
	{"permission denied", errdefs.ErrInvalidArgument},
	{"invalid argument", errdefs.ErrInvalidArgument},
	{"json: cannot unmarshal", errdefs.ErrInvalidArgument},
}

// runcError wraps err from a runc command named op. detail, when not empty,
// is runc's own last error (log.json) and replaces go-runc's "exit status 1".
// The result carries the class matched in the message, if any.
func runcError(op string, err error, detail string) error {
	if err == nil {
		return nil
	}
	if errdefs.ClassName(err) != "" { // already classified (e.g. a context error)
		return fmt.Errorf("runc %s: %w", op, err)
	}
	msg := err.Error()
	if detail != "" {
		msg = detail
	}
	lower := strings.ToLower(msg)
	for _, c := range runcErrorClasses {
		if strings.Contains(lower, c.fragment) {
			return fmt.Errorf("runc %s: %s: %w", op, msg, c.class)
		}
	}
	return fmt.Errorf("runc %s: %s", op, msg)
}

// lastRuncError returns the last error-level message in runc's JSON log
// (--log-format json), or "" when there is none.
func lastRuncError(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var last string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) != nil {
			continue
		}
		if entry.Level == "error" || entry.Level == "fatal" {
			last = entry.Msg
		}
	}
	return last
}
