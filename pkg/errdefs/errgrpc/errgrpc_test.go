package errgrpc

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestCodeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		class error
		code  codes.Code
	}{
		{errdefs.ErrNotFound, codes.NotFound},
		{errdefs.ErrAlreadyExists, codes.AlreadyExists},
		{errdefs.ErrInvalidArgument, codes.InvalidArgument},
		{errdefs.ErrFailedPrecondition, codes.FailedPrecondition},
		{errdefs.ErrUnavailable, codes.Unavailable},
		{errdefs.ErrResourceExhausted, codes.ResourceExhausted},
		{errdefs.ErrNotImplemented, codes.Unimplemented},
		{errdefs.ErrInternal, codes.Internal},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			err := ToGRPC(fmt.Errorf("thing x: %w", tc.class))
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code %v, want %v", got, tc.code)
			}
			if back := ToNative(err); !errors.Is(back, tc.class) {
				t.Fatalf("ToNative lost the class: %v", back)
			}
		})
	}
	if got := Code(errors.New("plain")); got != codes.Unknown {
		t.Fatalf("unclassified error mapped to %v, want Unknown", got)
	}
}
