package cri

import (
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    string
		ok   bool
	}{
		{"plain", "nginx-7c9d8", true},
		{"dots inside", "a.b.c", true},
		{"empty", "", false},
		{"slash", "a/b", false},
		{"dotdot", "..", false},
		{"climbing", "x/../../etc", false},
		{"dot", ".", false},
		{"nul", "a\x00b", false},
		{"too long", strings.Repeat("a", 254), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateName("config.metadata.name", tc.v)
			if tc.ok != (err == nil) {
				t.Fatalf("validateName(%q) = %v, want ok=%v", tc.v, err, tc.ok)
			}
			if err != nil && !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error %v is not InvalidArgument", err)
			}
		})
	}
}
