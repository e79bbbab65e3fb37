package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestWithClass(t *testing.T) {
	plain := errors.New("plugin said no")
	if got := WithClass(plain, ErrUnavailable); !IsUnavailable(got) || got.Error() != "plugin said no: unavailable" {
		t.Fatalf("WithClass on an unclassified error: %v", got)
	}
	classed := fmt.Errorf("x: %w", ErrNotFound)
	if got := WithClass(classed, ErrUnavailable); got != classed {
		t.Fatalf("WithClass replaced an existing class: %v", got)
	}
	if WithClass(nil, ErrInternal) != nil {
		t.Fatal("WithClass(nil) is not nil")
	}
}

func TestWireRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		is   error
	}{
		{"not found", fmt.Errorf("task x: %w", ErrNotFound), ErrNotFound},
		{"exists", fmt.Errorf("task x: %w", ErrAlreadyExists), ErrAlreadyExists},
		{"precondition", fmt.Errorf("start: %w", ErrFailedPrecondition), ErrFailedPrecondition},
		{"deadline", fmt.Errorf("wait: %w", context.DeadlineExceeded), context.DeadlineExceeded},
		{"unclassified", errors.New("boom"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromWire(ClassName(tc.err), tc.err.Error())
			if got.Error() != tc.err.Error() {
				t.Errorf("message %q, want %q", got.Error(), tc.err.Error())
			}
			if tc.is != nil && !errors.Is(got, tc.is) {
				t.Errorf("%v is not %v after the round trip", got, tc.is)
			}
			if tc.is == nil && ClassName(got) != "" {
				t.Errorf("unclassified error gained class %q", ClassName(got))
			}
		})
	}
}
