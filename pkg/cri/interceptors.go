package cri

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs/errgrpc"
)

// readiness gates RPCs until restore has finished.
type readiness interface {
	Ready() bool
}

// UnaryInterceptor does the generic work of every unary RPC, once: it
// recovers panics as Internal, answers Unavailable until the service has
// restored its state, puts a request-scoped logger into the context, logs
// the outcome and maps the error to its gRPC code.
func UnaryInterceptor(r readiness) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		logger := klog.LoggerWithValues(klog.Background(), "rpc", info.FullMethod)
		ctx = klog.NewContext(ctx, logger)
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic in %s: %v\n%s: %w", info.FullMethod, p, debug.Stack(), errdefs.ErrInternal)
				resp = nil
			}
			err = finish(logger, err, time.Since(start))
		}()
		if !r.Ready() {
			return nil, fmt.Errorf("cri-runtime is restoring its state: %w", errdefs.ErrUnavailable)
		}
		logger.V(6).Info("Received request")
		return handler(ctx, req)
	}
}

// StreamInterceptor is UnaryInterceptor for server-streaming RPCs.
func StreamInterceptor(r readiness) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		logger := klog.LoggerWithValues(klog.Background(), "rpc", info.FullMethod)
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic in %s: %v\n%s: %w", info.FullMethod, p, debug.Stack(), errdefs.ErrInternal)
			}
			err = finish(logger, err, time.Since(start))
		}()
		if !r.Ready() {
			return fmt.Errorf("cri-runtime is restoring its state: %w", errdefs.ErrUnavailable)
		}
		return handler(srv, &loggedStream{ServerStream: ss, ctx: klog.NewContext(ss.Context(), logger)})
	}
}

type loggedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *loggedStream) Context() context.Context { return s.ctx }

// finish logs an RPC's failure once, at a level chosen by its class, and
// maps it to a gRPC status.
func finish(logger klog.Logger, err error, took time.Duration) error {
	if err == nil {
		logger.V(6).Info("Finished request", "duration", took)
		return nil
	}
	gerr := errgrpc.ToGRPC(err)
	switch errgrpc.Code(err) {
	case codes.Unknown, codes.Internal:
		logger.Error(err, "Request failed", "duration", took)
	case codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition, codes.Canceled:
		logger.V(4).Info("Request failed", "err", err, "duration", took)
	default:
		logger.V(2).Info("Request failed", "err", err, "duration", took)
	}
	return gerr
}
