// Package errgrpc maps errdefs classes to gRPC status codes and back. It is
// the one place where that mapping is written.
package errgrpc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Code returns the gRPC code for err's class; errors with no class are Unknown.
func Code(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errdefs.IsNotFound(err):
		return codes.NotFound
	case errdefs.IsAlreadyExists(err):
		return codes.AlreadyExists
	case errdefs.IsInvalidArgument(err):
		return codes.InvalidArgument
	case errdefs.IsFailedPrecondition(err):
		return codes.FailedPrecondition
	case errdefs.IsUnavailable(err):
		return codes.Unavailable
	case errdefs.IsResourceExhausted(err):
		return codes.ResourceExhausted
	case errdefs.IsNotImplemented(err):
		return codes.Unimplemented
	case errdefs.IsInternal(err):
		return codes.Internal
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}

// ToGRPC turns err into a gRPC status error with the code of its class.
// An error that already is a status is returned as it is.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(Code(err), err.Error())
}

// ToNative turns a gRPC status error back into an error of the matching class.
func ToNative(err error) error {
	s, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	var class error
	switch s.Code() {
	case codes.NotFound:
		class = errdefs.ErrNotFound
	case codes.AlreadyExists:
		class = errdefs.ErrAlreadyExists
	case codes.InvalidArgument:
		class = errdefs.ErrInvalidArgument
	case codes.FailedPrecondition:
		class = errdefs.ErrFailedPrecondition
	case codes.Unavailable:
		class = errdefs.ErrUnavailable
	case codes.ResourceExhausted:
		class = errdefs.ErrResourceExhausted
	case codes.Unimplemented:
		class = errdefs.ErrNotImplemented
	case codes.Internal:
		class = errdefs.ErrInternal
	case codes.DeadlineExceeded:
		class = context.DeadlineExceeded
	case codes.Canceled:
		class = context.Canceled
	default:
		return errors.New(s.Message())
	}
	return errdefs.FromWire(errdefs.ClassName(class), s.Message())
}
