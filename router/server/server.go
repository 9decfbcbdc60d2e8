// Package server is classroute's gRPC edge: thin handlers that validate,
// call the state store, and map errors to statuses. Each service has its
// file, which declares the small interface of the store it calls:
// placement.go (PlacementService, whose Watch stream is watch.go),
// catalog.go, changes.go, agents.go and audit.go. The other files are
// what the services share: authentication and authorization, the
// caller's scope, resume tokens, rate limits, the error mapping, health
// and the gRPC options. It must not be imported by router/state or the
// CLI (router/deps_test.go).
package server

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/state"
)

// DefaultAgentTTL is the default lease TTL of an agent session.
const DefaultAgentTTL = 10 * time.Second

// Option configures a Server.
type Option func(*Server)

// WithAgentTTL sets the lease TTL of agent sessions (default
// DefaultAgentTTL): an agent silent for this long loses its session.
func WithAgentTTL(d time.Duration) Option { return func(s *Server) { s.agentTTL = d } }

// Server is the gRPC edge: one value per service, each holding the
// small interface of the store it calls, and what they share.
type Server struct {
	log      *slog.Logger
	agentTTL time.Duration
	authn    Authenticator
	auditPub ed25519.PublicKey
	resume   resumeTokens

	// watchProgressEvery is how often a tenant user's Watch gets a
	// progress notice (see watch.go).
	watchProgressEvery time.Duration

	auditSkew time.Duration // see WithAuditMaxSkew

	// The identity limits (ratelimit.go).
	idLimits IdentityLimits
	limitObs LimitObserver
	limits   *limiter

	// draining ends when StopWatches is called.
	draining    context.Context
	stopWatches context.CancelFunc

	// What the shared parts read of the store: its readiness (fresh)
	// and, to scope a caller, the catalogue (authorize.go).
	ready  Readier
	scopes scopeStore

	// The services.
	placement *placementService
	catalog   *catalogService
	agents    *agentService
	changes   *changeService
	equivs    *equivalenceService
	edges     *edgeService
	audit     *auditService
}

// New returns a server over store, which serves every service: each
// holds it as the interface it declares.
func New(store *state.Store, log *slog.Logger, opts ...Option) *Server {
	s := &Server{log: log, agentTTL: DefaultAgentTTL, watchProgressEvery: DefaultWatchProgressEvery}
	for _, o := range opts {
		o(s)
	}
	s.limits = newLimiter(s.idLimits, s.limitObs)
	s.draining, s.stopWatches = context.WithCancel(context.Background())
	s.ready, s.scopes, s.resume.keys = store, store, store
	s.placement = &placementService{Server: s, store: store}
	s.catalog = &catalogService{Server: s, store: store}
	s.agents = &agentService{Server: s, store: store}
	s.changes = &changeService{Server: s, store: store}
	s.equivs = &equivalenceService{Server: s, store: store}
	s.edges = &edgeService{Server: s, store: store}
	s.audit = &auditService{store: store, pub: s.auditPub, skew: s.auditSkew, log: s.log, srv: s}
	return s
}

// Register adds the services to g.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterPlacementServiceServer(g, s.placement)
	pb.RegisterCatalogServiceServer(g, s.catalog)
	pb.RegisterAgentServiceServer(g, s.agents)
	pb.RegisterChangeServiceServer(g, s.changes)
	pb.RegisterEquivalenceServiceServer(g, s.equivs)
	pb.RegisterEdgeServiceServer(g, s.edges)
	pb.RegisterAuditServiceServer(g, s.audit)
}

// StopWatches ends every Watch stream and agent session, now and later,
// with UNAVAILABLE, so that a graceful stop need not wait for them; each
// watcher resumes from its last revision, and each agent reconnects, at
// another daemon or after the restart.
func (s *Server) StopWatches() { s.stopWatches() }

func (s *Server) fail(ctx context.Context, err error) error { return toStatus(ctx, s.log, err) }

// fresh refuses a read the store cannot vouch for: a stale cache could
// show a released placement as live, or a downgraded region as it was.
func (s *Server) fresh(ctx context.Context) error {
	if err := s.ready.Ready(); err != nil {
		return s.fail(ctx, err)
	}
	return nil
}
