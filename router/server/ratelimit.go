package server

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/authz"
)

// Rate is a token bucket: PerSecond calls a second on average, up to
// Burst at once. A zero PerSecond is no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

func (r Rate) String() string {
	if r.PerSecond <= 0 {
		return "off"
	}
	return fmt.Sprintf("%g/s, burst %d", r.PerSecond, r.Burst)
}

// IdentityLimits bound what one caller may do, whatever connections it
// spreads its calls over. A caller is a principal's kind, tenant, name
// and region: two certificates of one identity share its limits.
type IdentityLimits struct {
	// Place, Plan and ListAudit limit those calls per caller. A call
	// beyond the rate waits for its token when the token comes within
	// MaxWait (and the call's deadline), and the caller has fewer than
	// MaxWaiting calls waiting; otherwise it is refused at once with
	// RESOURCE_EXHAUSTED and when to retry.
	//
	// Waiting rather than refusing is what makes a caller looping on
	// the method, whatever it does with the refusals, cost the daemon
	// its rate and no more: each waiting call holds its caller's loop.
	// Only a caller with more than MaxWaiting calls in flight sees
	// refusals, and each refusal costs about what a Get does.
	Place, Plan, ListAudit Rate
	MaxWait                time.Duration
	MaxWaiting             int
	// Reads limits every other unary read a caller makes (Get, List,
	// the catalogue's reads, CheckLabel, the change reads), in tokens:
	// one a call, and a List one more per 10 placements its page may
	// hold, since marshalling a page of 1,000 costs about a thousand
	// Gets. A read beyond it waits or is refused as a Place beyond its
	// rate is.
	Reads Rate
	// VerifyAudit limits the whole-log verifications a caller runs:
	// each reads and hashes every entry.
	VerifyAudit Rate
	// AgentReports limits an agent's reports and session starts (each
	// an etcd write). A session start beyond it waits or is refused as
	// a Place beyond its rate is; a report beyond it is held back, not
	// written, and the agent's latest held report is written once the
	// rate allows (agents.go).
	AgentReports Rate
	// AgentAcks limits an agent's acknowledgements that write (each a
	// rewrite of the placement's record, and for FAILED an audit entry):
	// an ack that says what the record already says costs nothing. An
	// ack beyond the rate is held back, the latest per placement, and
	// the held acks are written in turn as the rate allows (agents.go).
	// The burst is for a region whose placements all change at once
	// (a reroute into it, an agent restarted): acks of placements
	// already running cost nothing, and an ACCEPTED held back is
	// replaced by the RUNNING that follows it.
	AgentAcks Rate
	// AgentMessages paces what an agent session reads of its stream,
	// reports and acknowledgements alike: beyond the rate the daemon
	// stops reading, and HTTP/2 flow control stops the agent's sends,
	// so a flood costs the daemon its rate in decoding and no more.
	// Acknowledgements come one per assignment, so it is far above a
	// region's assignments: an agent that reconnects to a region of
	// 10,000 placements acknowledges them in a few seconds.
	AgentMessages Rate
	// Streams caps the streams one caller holds open at once: Watch
	// streams, the health service's Watch, agent sessions, reflection;
	// 0: no cap. Each holds memory and goroutines for as long as it
	// lasts, which may be days. A stream beyond the cap waits, as a call
	// beyond its rate does (MaxWait, MaxWaiting), for one of the
	// caller's streams to end, and is refused only then: a loop opening
	// streams costs the daemon a refusal per MaxWait, not one per
	// round trip.
	Streams int
	// LimitDev holds the development principal (the loopback mode's
	// caller, and every name classroutectl --as gives) to the limits
	// too. Without it that principal is exempt: it exists only on a
	// loopback daemon, where tests and benchmarks run.
	LimitDev bool
}

// DefaultIdentityLimits are the daemon's defaults (cmd/classrouted's
// flags): far above what a person, a pipeline or a region agent
// reporting every -agent-ttl/3 needs, far below what a loop can do.
// Streams: a dashboard or an agent holds a few streams, not dozens.
var DefaultIdentityLimits = IdentityLimits{
	Place:         Rate{PerSecond: 20, Burst: 40},
	Plan:          Rate{PerSecond: 20, Burst: 40},
	ListAudit:     Rate{PerSecond: 5, Burst: 10},
	Reads:         Rate{PerSecond: 500, Burst: 1000},
	VerifyAudit:   Rate{PerSecond: 0.2, Burst: 2},
	AgentReports:  Rate{PerSecond: 2, Burst: 10},
	AgentAcks:     Rate{PerSecond: 10, Burst: 1000},
	AgentMessages: Rate{PerSecond: 2000, Burst: 10000},
	MaxWait:       time.Second,
	MaxWaiting:    16,
	Streams:       32,
}

// WithIdentityLimits holds every caller to l. Without it a Server
// limits no caller: the daemon always sets it.
func WithIdentityLimits(l IdentityLimits) Option {
	return func(s *Server) { s.idLimits = l }
}

// LimitObserver is told of each call or stream the identity limits
// refuse, and each agent report or ack they hold back, by the limit's
// name (place, plan, list_audit, agent_report, agent_ack or streams):
// never by the caller's.
type LimitObserver interface {
	Limited(limit string)
}

// WithLimitObserver tells o of every refusal by the identity limits.
func WithLimitObserver(o LimitObserver) Option {
	return func(s *Server) { s.limitObs = o }
}

// The names of the limits, in metrics and ErrorInfo metadata.
const (
	limitPlace       = "place"
	limitPlan        = "plan"
	limitListAudit   = "list_audit"
	limitAgentReport = "agent_report"
	limitAgentAck    = "agent_ack"
	limitStreams     = "streams"
	limitRead        = "read"
	limitVerifyAudit = "verify_audit"
)

// LimitNames are every limit's name, as LimitObserver is told them.
var LimitNames = []string{limitPlace, limitPlan, limitListAudit, limitAgentReport, limitAgentAck, limitStreams, limitRead, limitVerifyAudit}

// rateLimited are the unary methods with a rate limit, and which.
var rateLimited = map[string]string{
	pb.PlacementService_Place_FullMethodName:       limitPlace,
	pb.PlacementService_Plan_FullMethodName:        limitPlan,
	pb.AuditService_ListAudit_FullMethodName:       limitListAudit,
	pb.AuditService_VerifyAudit_FullMethodName:     limitVerifyAudit,
	pb.PlacementService_Get_FullMethodName:         limitRead,
	pb.PlacementService_List_FullMethodName:        limitRead,
	pb.CatalogService_GetRegion_FullMethodName:     limitRead,
	pb.CatalogService_ListRegions_FullMethodName:   limitRead,
	pb.CatalogService_GetProvider_FullMethodName:   limitRead,
	pb.CatalogService_ListProviders_FullMethodName: limitRead,
	pb.CatalogService_GetTenant_FullMethodName:     limitRead,
	pb.CatalogService_ListTenants_FullMethodName:   limitRead,
	pb.CatalogService_CheckLabel_FullMethodName:    limitRead,
	pb.ChangeService_GetChange_FullMethodName:      limitRead,
	pb.ChangeService_ListChanges_FullMethodName:    limitRead,
}

// cost is how many of its limit's tokens a call spends: a List one more
// per 10 placements its page may hold (page_size 0 means 100).
func cost(req any) int {
	if l, ok := req.(*pb.ListRequest); ok {
		n := int(l.GetPageSize())
		if n <= 0 {
			n = 100
		}
		return 1 + (n+9)/10
	}
	return 1
}

// identity is what the limits key a caller on.
type identity struct{ kind, tenant, name, region string }

type bucketKey struct {
	limit string
	who   identity
}

// sweepEvery is how often idle buckets are dropped.
const sweepEvery = 30 * time.Second

// limiter enforces IdentityLimits. Its memory is bounded by the callers
// active lately: a bucket that has refilled (one idle for Burst/PerSecond
// seconds) is dropped at the next sweep, which loses nothing, since a new
// bucket starts full; a caller's stream count goes when its last stream
// ends.
type limiter struct {
	cfg     IdentityLimits
	obs     LimitObserver
	now     func() time.Time
	mu      sync.Mutex
	buckets map[bucketKey]*rate.Limiter
	swept   time.Time
	waiting map[bucketKey]int // calls waiting for a token
	streams map[identity]int
	// freed is closed, and replaced, when a stream ends.
	freed chan struct{}
}

func newLimiter(cfg IdentityLimits, obs LimitObserver) *limiter {
	return &limiter{cfg: cfg, obs: obs, now: time.Now, buckets: make(map[bucketKey]*rate.Limiter),
		waiting: make(map[bucketKey]int), streams: make(map[identity]int), freed: make(chan struct{})}
}

func (l *limiter) rate(limit string) Rate {
	switch limit {
	case limitPlace:
		return l.cfg.Place
	case limitPlan:
		return l.cfg.Plan
	case limitListAudit:
		return l.cfg.ListAudit
	case limitAgentReport:
		return l.cfg.AgentReports
	case limitRead:
		return l.cfg.Reads
	case limitVerifyAudit:
		return l.cfg.VerifyAudit
	case limitAgentAck:
		return l.cfg.AgentAcks
	}
	return Rate{}
}

// subject is the identity ctx's caller is limited as; ok is false for a
// caller that is not limited.
func (l *limiter) subject(ctx context.Context) (identity, bool) {
	p := authz.FromContext(ctx)
	if p == nil || (p.Kind == authz.KindDev && !l.cfg.LimitDev) {
		return identity{}, false
	}
	return identity{kind: p.Kind, tenant: p.Tenant, name: p.Name, region: p.Region}, true
}

// allow spends one of the caller's tokens of limit, waiting for it if
// the limits allow (IdentityLimits.MaxWait), or refuses the call with
// RESOURCE_EXHAUSTED saying when a token will be there.
func (l *limiter) allow(ctx context.Context, limit string) error {
	return l.allowN(ctx, limit, 1)
}

// allowN is allow for a call that costs n tokens. A call whose tokens
// come later than MaxWait is refused, but, while fewer than MaxWaiting
// of the caller's calls wait, only after MaxWait: a loop that ignores
// RetryInfo is held to a refusal per MaxWait per call in flight, not
// one per round trip.
func (l *limiter) allowN(ctx context.Context, limit string, n int) error {
	k, res, now, ok := l.reserveN(ctx, limit, n)
	if !ok {
		return nil
	}
	wait := res.DelayFrom(now)
	if wait == 0 {
		return nil
	}
	if l.mayWait(ctx, k) {
		defer l.doneWaiting(k)
		granted := wait <= l.cfg.MaxWait
		if !granted {
			res.CancelAt(now) // refused: the tokens go back now
		}
		t := time.NewTimer(min(wait, l.cfg.MaxWait))
		defer t.Stop()
		select {
		case <-t.C:
			if granted {
				return nil
			}
		case <-ctx.Done():
			if granted {
				res.Cancel()
			}
			return status.FromContextError(ctx.Err()).Err()
		}
		wait -= l.cfg.MaxWait
	} else {
		res.CancelAt(now)
	}
	wait = roundUp(wait)
	l.observe(limit)
	return withDetails(codes.ResourceExhausted,
		fmt.Sprintf("rate limited: %s is limited to %s per caller; retry in %v", limit, l.rate(limit), wait),
		&errdetails.ErrorInfo{Reason: "RATE_LIMITED", Domain: ErrorDomain, Metadata: map[string]string{"limit": limit}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)})
}

// take spends one of the caller's tokens of limit and returns 0, or,
// when there is none, spends nothing and returns how long until there
// is one (roundUp).
func (l *limiter) take(ctx context.Context, limit string) (wait time.Duration) {
	_, res, now, ok := l.reserve(ctx, limit)
	if !ok {
		return 0
	}
	if wait = res.DelayFrom(now); wait == 0 {
		return 0
	}
	res.CancelAt(now)
	return roundUp(wait)
}

// reserve reserves one of the caller's tokens of limit; ok is false when
// the caller is not limited. The reservation's delay says when the token
// is there; one not to be waited for must be cancelled.
func (l *limiter) reserve(ctx context.Context, limit string) (k bucketKey, res *rate.Reservation, now time.Time, ok bool) {
	return l.reserveN(ctx, limit, 1)
}

// reserveN is reserve for n tokens (at most the burst).
func (l *limiter) reserveN(ctx context.Context, limit string, n int) (k bucketKey, res *rate.Reservation, now time.Time, ok bool) {
	r := l.rate(limit)
	who, ok := l.subject(ctx)
	if r.PerSecond <= 0 || !ok {
		return bucketKey{}, nil, time.Time{}, false
	}
	now = l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) >= sweepEvery {
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(b.Burst()) && l.waiting[k] == 0 {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	k = bucketKey{limit: limit, who: who}
	b := l.buckets[k]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(r.PerSecond), max(r.Burst, 1))
		l.buckets[k] = b
	}
	return k, b.ReserveN(now, min(n, b.Burst())), now, true
}

// mayWait counts a call in as waiting, or says it may not wait: the
// limits allow no wait, or the caller has MaxWaiting calls waiting.
func (l *limiter) mayWait(ctx context.Context, k bucketKey) bool {
	if l.cfg.MaxWait <= 0 {
		return false
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < min(l.cfg.MaxWait, time.Second) {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiting[k] >= l.cfg.MaxWaiting {
		return false
	}
	l.waiting[k]++
	return true
}

func (l *limiter) doneWaiting(k bucketKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiting[k]--; l.waiting[k] <= 0 {
		delete(l.waiting, k)
	}
}

// roundUp is d in whole milliseconds, rounded up, so that retrying after
// it succeeds (unless another call of the caller takes the token first).
func roundUp(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(float64(d)/float64(time.Millisecond))) * time.Millisecond
}

// openStream counts one more stream of the caller, or refuses it when
// the caller holds the most it may; release, called when the stream
// ends (once or more: it counts once), counts it out.
func (l *limiter) openStream(ctx context.Context) (release func(), err error) {
	who, ok := l.subject(ctx)
	if l.cfg.Streams <= 0 || !ok {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streams[who] >= l.cfg.Streams && l.cfg.MaxWait > 0 {
		// Wait, a bounded number of callers at a time, for one of the
		// caller's streams to end.
		k := bucketKey{limit: limitStreams, who: who}
		if l.waiting[k] < l.cfg.MaxWaiting {
			l.waiting[k]++
			deadline := time.Now().Add(l.cfg.MaxWait)
			for l.streams[who] >= l.cfg.Streams && ctx.Err() == nil {
				d := time.Until(deadline)
				if d <= 0 {
					break
				}
				freed := l.freed
				l.mu.Unlock()
				t := time.NewTimer(d)
				select {
				case <-freed:
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
				l.mu.Lock()
			}
			if l.waiting[k]--; l.waiting[k] <= 0 {
				delete(l.waiting, k)
			}
			if err := ctx.Err(); err != nil {
				return nil, status.FromContextError(err).Err()
			}
		}
	}
	if l.streams[who] >= l.cfg.Streams {
		l.observe(limitStreams)
		return nil, withDetails(codes.ResourceExhausted,
			fmt.Sprintf("too many open streams: at most %d per caller (Watch, health Watch, agent sessions, reflection); end one first", l.cfg.Streams),
			&errdetails.ErrorInfo{Reason: "TOO_MANY_STREAMS", Domain: ErrorDomain, Metadata: map[string]string{"limit": limitStreams}},
			&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
				Subject: "open streams of this caller", Description: fmt.Sprintf("at most %d at once", l.cfg.Streams)}}})
	}
	l.streams[who]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.streams[who]--; l.streams[who] <= 0 {
				delete(l.streams, who)
			}
			close(l.freed)
			l.freed = make(chan struct{})
		})
	}, nil
}

// pacer returns the limiter that paces what one agent session reads
// (IdentityLimits.AgentMessages), or nil when ctx's caller is not held
// to it.
func (l *limiter) pacer(ctx context.Context) *rate.Limiter {
	r := l.cfg.AgentMessages
	if _, ok := l.subject(ctx); !ok || r.PerSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(r.PerSecond), max(r.Burst, 1))
}

func (l *limiter) observe(limit string) {
	if l.obs != nil {
		l.obs.Limited(limit)
	}
}

// rateInterceptor holds the rate-limited unary methods to the caller's
// limits. It runs after authentication: the context carries the caller.
func (s *Server) rateInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	limit, ok := rateLimited[info.FullMethod]
	if !ok {
		return h(ctx, req)
	}
	if err := s.limits.allowN(ctx, limit, cost(req)); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// streamInterceptor holds every stream to its caller's stream cap. It
// runs after authentication: the stream's context carries the caller.
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	release, err := s.limits.openStream(ss.Context())
	if err != nil {
		return err
	}
	defer release()
	return h(srv, ss)
}
