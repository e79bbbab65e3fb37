package cri

import (
	"fmt"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// maxNameLen bounds CRI metadata names (a DNS subdomain's 253, as the
// kubelet's names are).
const maxNameLen = 253

// validateName refuses metadata names that are empty, absurdly long, or
// could act as a path: names end up in reserved names, annotations and
// log lines, and must never be able to climb a directory.
func validateName(field, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s is empty: %w", field, errdefs.ErrInvalidArgument)
	case len(v) > maxNameLen:
		return fmt.Errorf("%s is %d bytes, over %d: %w", field, len(v), maxNameLen, errdefs.ErrInvalidArgument)
	case strings.ContainsAny(v, "/\x00") || v == "." || strings.Contains(v, ".."):
		return fmt.Errorf("%s %q must not contain '/', '..' or NUL: %w", field, v, errdefs.ErrInvalidArgument)
	}
	return nil
}
