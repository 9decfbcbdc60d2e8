package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServerOptions are the options every classroute gRPC server uses:
// DefaultLimits, then the interceptors.
func ServerOptions(log *slog.Logger) []grpc.ServerOption {
	return DefaultLimits.ServerOptions(log)
}

// ServerOptions are the options of a classroute gRPC server enforcing l:
// l's Options, then the interceptors.
func (l Limits) ServerOptions(log *slog.Logger) []grpc.ServerOption {
	return append(l.Options(),
		grpc.ChainUnaryInterceptor(recoverInterceptor(log), logInterceptor(log)),
		grpc.ChainStreamInterceptor(recoverStreamInterceptor(log), logStreamInterceptor(log)),
	)
}

func recoverInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", r)
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(ctx, req)
	}
}

func logInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		// A caller's mistakes, and refusals by the limits (counted in
		// the metrics), are not the operator's warnings: a flood of them
		// must not become a flood of log lines.
		lvl := slog.LevelDebug
		if c := status.Code(err); c != codes.OK && c != codes.NotFound && c != codes.InvalidArgument && c != codes.FailedPrecondition && c != codes.ResourceExhausted {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "rpc", "method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start))
		return resp, err
	}
}

func logStreamInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		lvl := slog.LevelDebug
		if c := status.Code(err); c != codes.OK && c != codes.Canceled && c != codes.InvalidArgument && c != codes.ResourceExhausted {
			lvl = slog.LevelWarn
		}
		log.Log(ss.Context(), lvl, "stream", "method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start))
		return err
	}
}

func recoverStreamInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ss.Context(), "panic in handler", "method", info.FullMethod, "panic", r)
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(srv, ss)
	}
}
