package process

import (
	"regexp"
	"strings"
	"testing"
)

func TestValidExecID(t *testing.T) {
	re := regexp.MustCompile(execIDPattern)
	for _, id := range []string{
		"", "a", "A9", "9", "e1", "_a", ".a", "-a", "a_b.c-d", "a b", "a/b", "é",
		strings.Repeat("a", 76), strings.Repeat("a", 77), "a\n", "abc\x00",
	} {
		if got, want := validExecID(id), re.MatchString(id); got != want {
			t.Errorf("validExecID(%q) = %v, want %v", id, got, want)
		}
	}
}
