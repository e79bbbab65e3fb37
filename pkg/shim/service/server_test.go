package service

import (
	"bytes"
	"context"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/shim/api"
)

// TestMalformedRequests: a request the shim cannot read gets an answer
// that says why, with its class, and the shim goes on serving.
func TestMalformedRequests(t *testing.T) {
	h := startService(t)
	h.running(t)
	for _, tc := range []struct {
		name  string
		line  string
		class string
		says  string // in the message
	}{
		{"not JSON", "hello shim\n", "InvalidArgument", "decode request"},
		{"empty line", "\n", "InvalidArgument", "decode request"},
		{"truncated JSON", `{"method":"Connect"` + "\n", "InvalidArgument", "decode request"},
		{"unknown method", `{"method":"Reboot"}` + "\n", "NotImplemented", `method "Reboot"`},
		{"no method", `{}` + "\n", "NotImplemented", `method ""`},
		{"method in lower case", `{"method":"connect"}` + "\n", "NotImplemented", `method "connect"`},
		{"params of the wrong type", `{"method":"Start","params":"e1"}` + "\n", "InvalidArgument", "decode params"},
		{"field of the wrong type", `{"method":"Kill","params":{"signal":"KILL"}}` + "\n", "InvalidArgument", "decode params"},
		{"create params", `{"method":"Create","params":[]}` + "\n", "InvalidArgument", "decode params"},
		{"exec params", `{"method":"Exec","params":{"execID":7}}` + "\n", "InvalidArgument", "decode params"},
		{"update resources", `{"method":"Update","params":{"resources":"lots"}}` + "\n", "InvalidArgument", "decode params"},
		{"attach params", `{"method":"Attach","params":{"stdin":"yes"}}` + "\n", "InvalidArgument", "decode params"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, ok := h.rawCall(t, []byte(tc.line))
			if !ok {
				t.Fatal("the shim closed the connection without an answer")
			}
			if resp.Error == nil {
				t.Fatalf("answer %+v, want an error", resp)
			}
			if resp.Error.Class != tc.class || !strings.Contains(resp.Error.Message, tc.says) {
				t.Errorf("error %s %q, want %s saying %q", resp.Error.Class, resp.Error.Message, tc.class, tc.says)
			}
			h.alive(t)
		})
	}
	t.Run("no newline", func(t *testing.T) {
		// A client that leaves mid-request gets nothing and costs nothing.
		if _, ok := h.rawCall(t, []byte(`{"method":"Connect"}`)); ok {
			t.Error("an unterminated request was answered")
		}
		h.alive(t)
	})
	if got := h.procs.proc("").callLog(); len(got) != 1 || got[0] != "Start" {
		t.Errorf("malformed requests reached the init: %q", got)
	}
}

// connectLine is a valid Connect request line of exactly n bytes with its
// newline (Connect ignores its params, which pad it).
func connectLine(n int) []byte {
	head, tail := `{"method":"Connect","params":"`, `"}`+"\n"
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// TestRequestSizeLimit: a request line (newline included) of maxRequest
// bytes is read; one byte more is refused as ResourceExhausted, however far
// past the limit the line ends: the shim reads in 64 KiB chunks, and a line
// whose end falls in the chunk after the limit used to be accepted.
func TestRequestSizeLimit(t *testing.T) {
	h := startService(t)
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{
		{"small", 100, true},
		{"at the limit", maxRequest, true},
		{"one byte over", maxRequest + 1, false},
		{"in the chunk after the limit", maxRequest + 64<<10 - 1, false},
		{"a chunk over", maxRequest + 64<<10, false},
		{"twice the limit", 2 * maxRequest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, ok := h.rawCall(t, connectLine(tc.size))
			if !ok {
				t.Fatal("the shim closed the connection without an answer")
			}
			switch {
			case tc.ok && resp.Error != nil:
				t.Errorf("a %d-byte request was refused: %+v", tc.size, resp.Error)
			case !tc.ok && resp.Error == nil:
				t.Errorf("a %d-byte request was accepted, the limit is %d", tc.size, maxRequest)
			case !tc.ok && (resp.Error.Class != "ResourceExhausted" || !strings.Contains(resp.Error.Message, "4194304")):
				t.Errorf("error %s %q, want ResourceExhausted naming the limit", resp.Error.Class, resp.Error.Message)
			}
			h.alive(t)
		})
	}
}

// TestOversizedRequestThroughClient: the client reads the shim's refusal
// even though the shim stopped reading its request halfway.
func TestOversizedRequestThroughClient(t *testing.T) {
	h := startService(t)
	h.running(t)
	env := bytes.Repeat([]byte("x"), 2*maxRequest)
	spec := &specs.Process{Args: []string{"true"}, Env: []string{"BIG=" + string(env)}}
	err := h.c.Exec(context.Background(), "big", spec, api.IO{})
	if !errdefs.IsResourceExhausted(err) || !strings.Contains(err.Error(), "request over") {
		t.Fatalf("Exec with a %d-byte spec = %v, want ResourceExhausted", len(env), err)
	}
	if p := h.procs.proc("big"); p != nil {
		t.Error("the oversized exec reached the process layer")
	}
	h.alive(t)
}
