package service

import (
	"strings"
	"testing"
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
