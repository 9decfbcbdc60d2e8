// Package server is classroute's gRPC edge: thin handlers that validate, call the state store, and map errors to statuses.
package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/feed"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/state"
)

// Store is what the server needs of the state store.
type Store interface {
	Place(ctx context.Context, requestID string, w *router.Workload) (*router.Placement, error)
	Plan(ctx context.Context, w *router.Workload) (PlanResult, error)
	// GetPlacement and Release name a placement by its tenant and
	// request id; GetPlacement with tenant "" finds the one tenant that
	// used the id (InvalidError on "tenant" when several did).
	GetPlacement(tenant, id string) (*router.Placement, error)
	ListPlacements(f PlacementFilter, pageSize int, pageToken string) (state.PlacementPage, error)
	Release(ctx context.Context, tenant, id string) (*router.Placement, error)
	// WatchPlacements streams the placement changes after a revision.
	WatchPlacements(ctx context.Context, f feed.Filter, after int64) (*feed.Feed, error)

	// PutRegionOperational applies a region change that needs one
	// administrator; the others are proposed and approved (change.go).
	PutRegionOperational(ctx context.Context, r *router.Region) (int64, error)
	ProposeRegionChange(ctx context.Context, r *router.Region, reason string) (*router.Change, error)
	ApproveChange(ctx context.Context, id string) (*router.Change, error)
	RejectChange(ctx context.Context, id, note string) (*router.Change, error)
	GetChange(ctx context.Context, id string) (*router.Change, error)
	ListChanges(ctx context.Context, state string, limit int) ([]*router.Change, error)
	GetRegion(key string) (router.RegionState, error)
	ListRegions() ([]router.RegionState, int64)
	DeleteRegion(ctx context.Context, key string) error
	PutProvider(ctx context.Context, p *router.Provider) error
	GetProvider(id string) (*router.Provider, error)
	ListProviders() []*router.Provider
	DeleteProvider(ctx context.Context, id string) error
	PutTenant(ctx context.Context, t *router.Tenant) error
	GetTenant(id string) (*router.Tenant, error)
	ListTenants() []*router.Tenant
	DeleteTenant(ctx context.Context, id string) error

	// ConnectAgent starts a region agent's session; RegionAgent reads
	// what the cache holds of a region's agent.
	ConnectAgent(ctx context.Context, region, agentID string, ttl time.Duration) (*state.AgentSession, error)
	RegionAgent(key string) (*router.RegionLive, *router.Health)

	// Ready is nil while the store can vouch for its state.
	Ready() error
}

// PlanResult is a decision with nothing committed.
type PlanResult = state.Plan

// PlacementFilter selects placements; zero fields match everything.
type PlacementFilter = state.PlacementFilter

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

// DefaultAgentTTL is the default lease TTL of an agent session.
const DefaultAgentTTL = 10 * time.Second

// Option configures a Server.
type Option func(*Server)

// WithAgentTTL sets the lease TTL of agent sessions (default
// DefaultAgentTTL): an agent silent for this long loses its session.
func WithAgentTTL(d time.Duration) Option { return func(s *Server) { s.agentTTL = d } }

// Server implements the Placement, Catalog and Agent services.
type Server struct {
	pb.UnimplementedPlacementServiceServer
	pb.UnimplementedCatalogServiceServer
	pb.UnimplementedAgentServiceServer
	pb.UnimplementedChangeServiceServer
	store    Store
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
}

// New returns a server over store.
func New(store Store, log *slog.Logger, opts ...Option) *Server {
	s := &Server{store: store, log: log, agentTTL: DefaultAgentTTL, watchProgressEvery: DefaultWatchProgressEvery}
	for _, o := range opts {
		o(s)
	}
	s.limits = newLimiter(s.idLimits, s.limitObs)
	s.draining, s.stopWatches = context.WithCancel(context.Background())
	return s
}

// Register adds the services to g.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterPlacementServiceServer(g, s)
	pb.RegisterCatalogServiceServer(g, s)
	pb.RegisterAgentServiceServer(g, s)
	pb.RegisterChangeServiceServer(g, s)
	s.registerAudit(g)
}

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

// WatchHealth keeps the health service's overall status in step with the
// store's readiness until ctx ends.
func WatchHealth(ctx context.Context, hs *health.Server, store Store, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_SERVING
		if store.Ready() != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		for _, svc := range []string{"", pb.PlacementService_ServiceDesc.ServiceName} {
			hs.SetServingStatus(svc, st)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func (s *Server) fail(ctx context.Context, err error) error { return toStatus(ctx, s.log, err) }

// fresh refuses a read the store cannot vouch for: a stale cache could
// show a released placement as live, or a downgraded region as it was.
func (s *Server) fresh(ctx context.Context) error {
	if err := s.store.Ready(); err != nil {
		return s.fail(ctx, err)
	}
	return nil
}

// workload converts and validates a request's workload.
func workload(w *pb.Workload, v *router.Violations) *router.Workload {
	n := len(*v) // violations of other fields must not hide the workload's
	out := convert.WorkloadFromProto(w, v)
	if out == nil || len(*v) > n {
		return out
	}
	if err := router.ValidateWorkload(out); err != nil {
		if inv, ok := err.(*router.InvalidError); ok {
			*v = append(*v, inv.Violations...)
		} else {
			v.Add("workload", "%v", err)
		}
	}
	return out
}

// Place decides and commits a placement.
func (s *Server) Place(ctx context.Context, req *pb.PlaceRequest) (*pb.PlaceResponse, error) {
	var v router.Violations
	if !requestIDPattern.MatchString(req.GetRequestId()) {
		v.Add("request_id", "required: 1-128 characters of [A-Za-z0-9._:-]")
	}
	w := workload(req.GetWorkload(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := sc.mayActFor(w.Tenant); err != nil {
		return nil, err
	}
	p, err := s.store.Place(ctx, req.GetRequestId(), w)
	var refusal *router.RefusalError
	if errors.As(err, &refusal) && sc.confined() {
		// Name to the caller only the regions it may know of: the
		// decision counted no other (router.Engine), and the
		// revision counts every tenant's writes.
		r := *refusal
		r.Regions, _ = redact(refusal.Regions, s.knownRegions(sc))
		r.Redacted, r.Revision = 0, 0
		err = &r
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "placed", "placement", p, "caller", authz.FromContext(ctx))
	return &pb.PlaceResponse{Placement: sc.placement(p)}, nil
}

// Plan decides without committing.
func (s *Server) Plan(ctx context.Context, req *pb.PlanRequest) (*pb.PlanResponse, error) {
	var v router.Violations
	w := workload(req.GetWorkload(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := sc.mayActFor(w.Tenant); err != nil {
		return nil, err
	}
	res, err := s.store.Plan(ctx, w)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	// The decision was made among the regions the tenant may know of
	// (router.Engine): the refusal summary counts no other, and every
	// eligible region is one of them, so only the verdicts of the
	// others need leaving out, uncounted. The revision counts every
	// tenant's writes: never shown to a confined caller.
	regions, _ := redact(res.Regions, s.knownRegions(sc))
	out := &pb.PlanResponse{
		Label:    convert.LabelToProto(res.Label),
		Revision: sc.revision(res.Revision),
		Regions:  convert.VerdictsToProto(regions),
		Chosen:   res.Chosen,
	}
	if res.Refusal != nil {
		out.Refusal = res.Refusal.Error()
	}
	return out, nil
}

// placementName checks the request id and tenant that name a placement
// in a Get or Release.
func placementName(id, tenant string) error {
	var v router.Violations
	if id == "" {
		v.Add("id", "required")
	}
	if tenant != "" && !tenantPattern.MatchString(tenant) {
		v.Add("tenant", "want a tenant id of lowercase letters, digits and '-', got %q", clip(tenant, maxDescriptionBytes/2))
	}
	return v.Err()
}

// Get returns one placement: the request id's within the caller's
// tenant for a tenant user, within the tenant named otherwise.
func (s *Server) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	if err := placementName(req.GetId(), req.GetTenant()); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	tenant, err := sc.tenantFilter(req.GetTenant())
	if err != nil {
		return nil, err
	}
	p, err := s.store.GetPlacement(tenant, req.GetId())
	if err == nil && !sc.maySee(p) {
		err = notFound("placement", req.GetId())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetResponse{Placement: sc.placement(p)}, nil
}

// List returns placements, filtered and paginated.
func (s *Server) List(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	var v router.Violations
	var f PlacementFilter
	f.Tenant, f.Region = req.GetTenant(), req.GetRegion()
	if f.Region != "" && !strings.Contains(f.Region, "/") {
		v.Add("region", "want a region key provider/id, got %q", f.Region)
	}
	f.State = convert.PlacementStateFromProto(req.GetState(), "state", &v)
	if n := req.GetPageSize(); n < 0 || n > 1000 {
		v.Add("page_size", "must be between 0 and 1000, got %d", n)
	}
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if f.Tenant, err = sc.tenantFilter(f.Tenant); err != nil {
		return nil, err
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	page, err := s.store.ListPlacements(f, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	token, err := s.resumeToken(ctx, sc.tenantID, page.Revision)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &pb.ListResponse{NextPageToken: page.Next, Revision: sc.revision(page.Revision), ResumeToken: token}
	for _, p := range page.Placements {
		out.Placements = append(out.Placements, sc.placement(p))
	}
	return out, nil
}

// Release frees a placement's capacity: the request id's within the
// caller's tenant for a tenant user (it can touch no other tenant's),
// within the tenant named otherwise.
func (s *Server) Release(ctx context.Context, req *pb.ReleaseRequest) (*pb.ReleaseResponse, error) {
	if err := placementName(req.GetId(), req.GetTenant()); err != nil {
		return nil, s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	tenant, err := sc.tenantFilter(req.GetTenant())
	if err != nil {
		return nil, err
	}
	if tenant == "" {
		// An unconfined caller that names no tenant: the one tenant
		// that used the id, as the cache shows (one placed through
		// another daemon a moment ago may not be found: name the
		// tenant to be sure).
		if err := s.fresh(ctx); err != nil {
			return nil, err
		}
		p, err := s.store.GetPlacement("", req.GetId())
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		tenant = p.Tenant
	}
	p, err := s.store.Release(ctx, tenant, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "released", "placement", p, "caller", authz.FromContext(ctx))
	return &pb.ReleaseResponse{Placement: sc.placement(p)}, nil
}

// PutRegion replaces a region with an operational change (status,
// capacity, cost...). Adding a region or changing what it is accredited
// for is FAILED_PRECONDITION (TWO_PERSON_REQUIRED): ChangeService.
func (s *Server) PutRegion(ctx context.Context, req *pb.PutRegionRequest) (*pb.PutRegionResponse, error) {
	var v router.Violations
	r := convert.RegionFromProto(req.GetRegion(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := router.ValidateRegion(r); err != nil {
		return nil, s.fail(ctx, err)
	}
	rev, err := s.store.PutRegionOperational(ctx, r)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	st, err := s.store.GetRegion(r.Key())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "region put", "region", r.Key(), "revision", rev)
	return &pb.PutRegionResponse{Region: s.regionToProto(st), Revision: rev}, nil
}

func regionKey(key string) error {
	if p, id, ok := strings.Cut(key, "/"); !ok || p == "" || id == "" {
		return router.Violations{{Field: "key", Description: "want a region key provider/id, got " + strings.TrimSpace(key)}}.Err()
	}
	return nil
}

// GetRegion returns one region with its usage.
func (s *Server) GetRegion(ctx context.Context, req *pb.GetRegionRequest) (*pb.GetRegionResponse, error) {
	if err := regionKey(req.GetKey()); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.store.GetRegion(req.GetKey())
	if err == nil && !sc.mayKnow(st.Region) {
		err = notFound("region", req.GetKey())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetRegionResponse{Region: s.regionToProto(st)}, nil
}

// ListRegions returns every region, or one provider's.
func (s *Server) ListRegions(ctx context.Context, req *pb.ListRegionsRequest) (*pb.ListRegionsResponse, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	// A region the caller may not know of is left out and counted
	// nowhere, so a filter on a provider it may not know of answers
	// exactly as one on a provider that does not exist.
	regions, rev := s.store.ListRegions()
	out := &pb.ListRegionsResponse{Revision: sc.revision(rev)}
	for _, st := range regions {
		if req.GetProvider() != "" && st.Region.Provider != req.GetProvider() {
			continue
		}
		if !sc.mayKnow(st.Region) {
			continue
		}
		out.Regions = append(out.Regions, s.regionToProto(st))
	}
	return out, nil
}

// regionToProto converts a region with what is known of its agent.
func (s *Server) regionToProto(st router.RegionState) *pb.Region {
	r := convert.RegionToProto(st)
	live, _ := s.store.RegionAgent(r.GetKey())
	r.Health = convert.RegionHealthToProto(live, st.Health)
	return r
}

// DeleteRegion removes a region no placement uses.
func (s *Server) DeleteRegion(ctx context.Context, req *pb.DeleteRegionRequest) (*pb.DeleteRegionResponse, error) {
	if err := regionKey(req.GetKey()); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.DeleteRegion(ctx, req.GetKey()); err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "region deleted", "region", req.GetKey())
	return &pb.DeleteRegionResponse{}, nil
}

// PutProvider creates or replaces a provider.
func (s *Server) PutProvider(ctx context.Context, req *pb.PutProviderRequest) (*pb.PutProviderResponse, error) {
	var v router.Violations
	p := convert.ProviderFromProto(req.GetProvider(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := router.ValidateProvider(p); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.PutProvider(ctx, p); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.PutProviderResponse{Provider: convert.ProviderToProto(p)}, nil
}

// GetProvider returns one provider.
func (s *Server) GetProvider(ctx context.Context, req *pb.GetProviderRequest) (*pb.GetProviderResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	// For a confined caller, the providers it may know of are worked
	// out first, whatever it asked for: a hidden provider and a missing
	// one cost the same.
	var p *router.Provider
	if sc.confined() && !s.knownProviders(sc)[req.GetId()] {
		err = notFound("provider", req.GetId())
	} else {
		p, err = s.store.GetProvider(req.GetId())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetProviderResponse{Provider: convert.ProviderToProto(p)}, nil
}

// ListProviders returns every provider.
func (s *Server) ListProviders(ctx context.Context, _ *pb.ListProvidersRequest) (*pb.ListProvidersResponse, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	known := s.knownProviders(sc)
	out := &pb.ListProvidersResponse{}
	for _, p := range s.store.ListProviders() {
		if sc.confined() && !known[p.ID] {
			continue
		}
		out.Providers = append(out.Providers, convert.ProviderToProto(p))
	}
	return out, nil
}

// DeleteProvider removes a provider that has no regions.
func (s *Server) DeleteProvider(ctx context.Context, req *pb.DeleteProviderRequest) (*pb.DeleteProviderResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	if err := s.store.DeleteProvider(ctx, req.GetId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.DeleteProviderResponse{}, nil
}

// PutTenant creates or replaces a tenant.
func (s *Server) PutTenant(ctx context.Context, req *pb.PutTenantRequest) (*pb.PutTenantResponse, error) {
	var v router.Violations
	t := convert.TenantFromProto(req.GetTenant(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := router.ValidateTenant(t); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.PutTenant(ctx, t); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.PutTenantResponse{Tenant: convert.TenantToProto(t)}, nil
}

// GetTenant returns one tenant.
func (s *Server) GetTenant(ctx context.Context, req *pb.GetTenantRequest) (*pb.GetTenantResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.store.GetTenant(req.GetId())
	if err == nil && sc.confined() && t.ID != sc.tenantID {
		err = notFound("tenant", req.GetId())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetTenantResponse{Tenant: s.tenantToProto(ctx, sc, t)}, nil
}

// ListTenants returns every tenant.
func (s *Server) ListTenants(ctx context.Context, _ *pb.ListTenantsRequest) (*pb.ListTenantsResponse, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	ts := s.store.ListTenants()
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	out := &pb.ListTenantsResponse{}
	for _, t := range ts {
		if sc.confined() && t.ID != sc.tenantID {
			continue
		}
		out.Tenants = append(out.Tenants, s.tenantToProto(ctx, sc, t))
	}
	return out, nil
}

// DeleteTenant removes a tenant with no live placements.
func (s *Server) DeleteTenant(ctx context.Context, req *pb.DeleteTenantRequest) (*pb.DeleteTenantResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	if err := s.store.DeleteTenant(ctx, req.GetId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.DeleteTenantResponse{}, nil
}

// CheckLabel parses a banner marking.
func (s *Server) CheckLabel(ctx context.Context, req *pb.CheckLabelRequest) (*pb.CheckLabelResponse, error) {
	if len(req.GetBanner()) > router.MaxBannerLen {
		return nil, s.fail(ctx, router.Violations{{Field: "banner", Description: fmt.Sprintf("longer than %d bytes", router.MaxBannerLen)}}.Err())
	}
	l, err := label.Parse(req.GetBanner())
	if err != nil {
		return nil, s.fail(ctx, router.Violations{{Field: "banner", Description: err.Error()}}.Err())
	}
	return &pb.CheckLabelResponse{Label: convert.LabelToProto(l)}, nil
}
