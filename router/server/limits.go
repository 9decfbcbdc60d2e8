package server

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Limits on what one call may carry.
const (
	MaxRecvMsgSize = 4 << 20
	MaxSendMsgSize = 16 << 20
)

// Limits are the gRPC limits that keep one hostile or broken client from
// tying up the daemon. DefaultLimits are what ServerOptions uses.
type Limits struct {
	// MaxConcurrentStreams per connection (HTTP/2 SETTINGS): a grpc-go
	// client waits for a free slot; a stream beyond it is refused
	// (REFUSED_STREAM).
	MaxConcurrentStreams uint32
	// PingMinTime: a client pinging more often, or pinging with no
	// stream open, is sent GOAWAY (ENHANCE_YOUR_CALM, "too_many_pings")
	// after two strikes.
	PingMinTime time.Duration
	// MaxConnectionIdle closes (GOAWAY) a connection with no stream
	// for this long.
	MaxConnectionIdle time.Duration
	// KeepaliveTime and KeepaliveTimeout: the server pings a connection
	// quiet for KeepaliveTime and closes it if no answer comes within
	// KeepaliveTimeout, so a vanished agent's stream ends.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// MaxUnaryDeadline caps every unary call's deadline, whatever the
	// client asks (or none). Streams are exempt: Watch and
	// AgentService.Connect are long-lived by design; the keepalive
	// above ends them when their peer is gone.
	MaxUnaryDeadline time.Duration
	// HandshakeTimeout closes a connection that has not finished its
	// TLS handshake and HTTP/2 preface within it (grpc.ConnectionTimeout),
	// so a connection opened and left silent holds a descriptor for
	// this long at most.
	HandshakeTimeout time.Duration
}

// DefaultLimits: a connection may hold 256 streams (an agent holds one, a
// CLI a few; a proxy multiplexing many clients opens more connections);
// clients may ping every 10s at most (grpc-go's own floor) and only with
// a stream open; idle connections close after 5 minutes; dead peers are
// found within 40s; no unary call runs longer than 60s (a placement
// commits in milliseconds, or fails fast when etcd is unreachable); a
// connection has 10s to finish its handshake.
var DefaultLimits = Limits{
	MaxConcurrentStreams: 256,
	PingMinTime:          10 * time.Second,
	MaxConnectionIdle:    5 * time.Minute,
	KeepaliveTime:        30 * time.Second,
	KeepaliveTimeout:     10 * time.Second,
	MaxUnaryDeadline:     60 * time.Second,
	HandshakeTimeout:     10 * time.Second,
}

// Options are the server options enforcing l, and refusing requests that
// do not decode with INVALID_ARGUMENT (codec.go): that check is the
// first interceptor of each chain.
func (l Limits) Options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(newDecodeCodec()),
		grpc.ChainUnaryInterceptor(decodeUnaryInterceptor),
		grpc.ChainStreamInterceptor(decodeStreamInterceptor),
		grpc.ConnectionTimeout(l.HandshakeTimeout),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxSendMsgSize(MaxSendMsgSize),
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.PingMinTime, PermitWithoutStream: false}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.MaxConnectionIdle,
			Time:              l.KeepaliveTime,
			Timeout:           l.KeepaliveTimeout,
		}),
		grpc.ChainUnaryInterceptor(deadlineInterceptor(l.MaxUnaryDeadline)),
	}
}

// deadlineInterceptor caps a unary call's deadline at max from now.
func deadlineInterceptor(max time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > max {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, max)
			defer cancel()
		}
		return h(ctx, req)
	}
}
