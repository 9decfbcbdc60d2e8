package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/classroute/classroute/router/authz"
)

// Authenticator says who the caller of ctx is. An error is returned to
// the caller as UNAUTHENTICATED.
type Authenticator func(ctx context.Context) (*authz.Principal, error)

// WithAuthenticator makes AuthOptions authenticate every call with a.
func WithAuthenticator(a Authenticator) Option { return func(s *Server) { s.authn = a } }

// DevPrincipal is the caller in the loopback development mode, where
// there is no mutual TLS: every role, every tenant. It exists only for a
// daemon on loopback; the daemon refuses it on any other listener.
var DevPrincipal = &authz.Principal{ID: authz.JoinID(authz.DevTrustDomain, authz.KindDev), Kind: authz.KindDev, Name: "dev", Roles: authz.Roles}

// DevAuthenticator authenticates every caller as DevPrincipal, or, when
// the call names itself in authz.DevAsHeader, as the development principal of
// that name (authz.DevID: one path segment of [A-Za-z0-9._-], spelled
// one way) with the same roles. Named "dev", it is the same principal
// as DevPrincipal (authz.Principal.Same).
func DevAuthenticator(ctx context.Context) (*authz.Principal, error) {
	names := metadata.ValueFromIncomingContext(ctx, authz.DevAsHeader)
	switch len(names) {
	case 0:
		return DevPrincipal, nil
	case 1:
	default:
		return nil, fmt.Errorf("%s: %d names; want one", authz.DevAsHeader, len(names))
	}
	id, err := authz.DevID(names[0])
	if err != nil {
		return nil, fmt.Errorf("%s: want one name of 1-%d letters, digits, '.', '_' and '-': %w", authz.DevAsHeader, authz.MaxSegmentBytes, err)
	}
	return &authz.Principal{ID: id, Kind: authz.KindDev, Name: names[0], Roles: authz.Roles}, nil
}

// AuthOptions are the interceptors that authenticate every call with the
// server's Authenticator and authorize it (see authorize and the policy
// table in authorize.go): a call that
// fails either never reaches a handler. Without an Authenticator every
// call is refused. A call admitted is then held to its caller's limits
// (ratelimit.go): a unary call to its rate, a stream to its stream cap.
func (s *Server) AuthOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := s.admit(ctx, info.FullMethod)
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}, s.rateInterceptor),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := s.admit(ss.Context(), info.FullMethod)
			if err != nil {
				return err
			}
			return h(srv, &principalStream{ServerStream: ss, ctx: ctx})
		}, s.streamInterceptor),
	}
}

// admit authenticates and authorizes one call and returns its context
// carrying the principal.
func (s *Server) admit(ctx context.Context, method string) (context.Context, error) {
	if s.authn == nil {
		return nil, status.Error(codes.Unauthenticated, "no authenticator configured: every call is refused")
	}
	p, err := s.authn(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "%v", err)
	}
	if p == nil {
		return nil, status.Error(codes.Unauthenticated, "no identity")
	}
	p, err = s.authorize(ctx, method, p)
	if err != nil {
		return nil, err
	}
	return authz.NewContext(ctx, p), nil
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }
