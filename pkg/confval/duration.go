// Package confval holds the value types the config sections of every
// package share. It is a leaf, like pkg/errdefs, so that each package can
// own its Config (STYLE.md §I) without three copies of the same type.
package confval

import (
	"fmt"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Duration is a time.Duration written as "5m", "2s" or "0" in the config
// file (STYLE.md §I.38: never a string parsed later, never bare seconds).
type Duration time.Duration

// UnmarshalText reads a Go duration ("1s", "500ms", "0").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, errdefs.ErrInvalidArgument)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go prints it ("5m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
