// Package errdefs holds the error classes shared by every layer of
// cri-runtime: the store, the shim, the task runtime and the CRI facade.
//
// A class is attached by wrapping: fmt.Errorf("container %s: %w", id,
// ErrNotFound). It is tested with errors.Is or the IsX helpers. The class is
// mapped to a gRPC code exactly once, in errgrpc. This package is a leaf: it
// imports only the standard library.
package errdefs

import (
	"context"
	"errors"
	"fmt"
)

// The error classes. Wrap them; never compare error strings.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrResourceExhausted  = errors.New("resource exhausted")
	ErrNotImplemented     = errors.New("not implemented")
	ErrInternal           = errors.New("internal")
)

// IsNotFound reports whether err is of class ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsAlreadyExists reports whether err is of class ErrAlreadyExists.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// IsInvalidArgument reports whether err is of class ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }

// IsFailedPrecondition reports whether err is of class ErrFailedPrecondition.
func IsFailedPrecondition(err error) bool { return errors.Is(err, ErrFailedPrecondition) }

// IsUnavailable reports whether err is of class ErrUnavailable.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// IsResourceExhausted reports whether err is of class ErrResourceExhausted.
func IsResourceExhausted(err error) bool { return errors.Is(err, ErrResourceExhausted) }

// IsNotImplemented reports whether err is of class ErrNotImplemented.
func IsNotImplemented(err error) bool { return errors.Is(err, ErrNotImplemented) }

// IsInternal reports whether err is of class ErrInternal.
func IsInternal(err error) bool { return errors.Is(err, ErrInternal) }

// IsContext reports whether err is a context cancellation or deadline.
func IsContext(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// WithClass gives err the class class unless it already has one: for
// errors from code that does not classify its own (plugins, libraries).
func WithClass(err, class error) error {
	if err == nil || ClassName(err) != "" {
		return err
	}
	return fmt.Errorf("%w: %w", err, class)
}

// classes lists every class in a stable order; Class and FromName use it.
var classes = []struct {
	name string
	err  error
}{
	{"NotFound", ErrNotFound},
	{"AlreadyExists", ErrAlreadyExists},
	{"InvalidArgument", ErrInvalidArgument},
	{"FailedPrecondition", ErrFailedPrecondition},
	{"Unavailable", ErrUnavailable},
	{"ResourceExhausted", ErrResourceExhausted},
	{"NotImplemented", ErrNotImplemented},
	{"Internal", ErrInternal},
	{"Canceled", context.Canceled},
	{"DeadlineExceeded", context.DeadlineExceeded},
}

// ClassName names the class of err ("" when it has none). Wire protocols that
// are not gRPC (the shim's) send this name beside the message.
func ClassName(err error) string {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}

// FromWire rebuilds an error that crossed a wire as (class name, message):
// the result has the message as its text and the named class for errors.Is.
func FromWire(class, msg string) error {
	for _, c := range classes {
		if c.name == class {
			return &wireError{msg: msg, class: c.err}
		}
	}
	return errors.New(msg)
}

type wireError struct {
	msg   string
	class error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.class }
