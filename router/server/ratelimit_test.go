package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
)

// limited counts the refusals a server's identity limits report.
type limited struct{ got chan string }

func (l *limited) Limited(limit string) {
	select {
	case l.got <- limit:
	default:
	}
}

// newLimitedEnv is an env whose server holds callers to lim, with the
// callers of authz_test.go granted their roles.
func newLimitedEnv(t *testing.T, lim server.IdentityLimits, opts ...state.Option) (*env, *limited) {
	t.Helper()
	obs := &limited{got: make(chan string, 1<<12)}
	e := startEnvWith(t, shared, true, []server.Option{server.WithIdentityLimits(lim), server.WithLimitObserver(obs)}, opts...)
	grantMembers(t, e)
	return e, obs
}

// wantRateLimited checks that err is RESOURCE_EXHAUSTED RATE_LIMITED
// for limit, and returns its retry delay.
func wantRateLimited(t *testing.T, err error, limit string) time.Duration {
	t.Helper()
	st := wantCode(t, err, codes.ResourceExhausted)
	info := wantReason(t, st, "RATE_LIMITED")
	if info.GetMetadata()["limit"] != limit {
		t.Errorf("ErrorInfo limit %q; want %q", info.GetMetadata()["limit"], limit)
	}
	retry := detail[*errdetails.RetryInfo](t, st).GetRetryDelay().AsDuration()
	if retry <= 0 || retry > 2*time.Second {
		t.Errorf("RetryInfo %v; want a delay within the bucket's refill (0, 2s]", retry)
	}
	if !strings.Contains(st.Message(), "retry in") {
		t.Errorf("message %q; want it to say when to retry", st.Message())
	}
	return retry
}

// Each rate-limited method: a caller gets its burst, then RESOURCE_EXHAUSTED
// with when to retry, and succeeds again after that; another caller, and
// the development principal, are untouched meanwhile.
func TestRateLimitPerCaller(t *testing.T) {
	one := server.Rate{PerSecond: 2, Burst: 3}
	// forTenant is kenya() for the caller's tenant.
	forTenant := func(tenant string) *pb.Workload {
		w := kenya()
		w.Tenant = tenant
		return w
	}
	tests := []struct {
		limit       string
		lim         server.IdentityLimits
		caller, alt string // alt: another caller with the same roles
		call        func(e *env, c context.Context, tenant string) error
	}{
		{"plan", server.IdentityLimits{Plan: one}, asSubmitter, asOtherSub, func(e *env, c context.Context, tenant string) error {
			_, err := e.place.Plan(c, &pb.PlanRequest{Workload: forTenant(tenant)})
			return err
		}},
		{"place", server.IdentityLimits{Place: one}, asSubmitter, asOtherSub, func(e *env, c context.Context, tenant string) error {
			// One request id per tenant: the repeats are idempotent,
			// but Place calls all the same.
			_, err := e.place.Place(c, &pb.PlaceRequest{RequestId: "rate-" + tenant, Workload: forTenant(tenant)})
			if status.Code(err) == codes.FailedPrecondition {
				return nil // no region for the workload: not the limit
			}
			return err
		}},
		{"list_audit", server.IdentityLimits{ListAudit: one}, asTenantAud, asSecAud, func(e *env, c context.Context, _ string) error {
			_, err := pb.NewAuditServiceClient(e.conn).ListAudit(c, &pb.ListAuditRequest{PageSize: 1})
			return err
		}},
	}
	tenantOf := func(caller string) string {
		if strings.HasPrefix(caller, "/tenant/") {
			return strings.Split(caller, "/")[2]
		}
		return "ke-moh"
	}
	for _, tt := range tests {
		t.Run(tt.limit, func(t *testing.T) {
			e, obs := newLimitedEnv(t, tt.lim)
			call := func(caller string) error { return tt.call(e, callAs(t, caller), tenantOf(caller)) }
			for i := range one.Burst {
				if err := call(tt.caller); err != nil {
					t.Fatalf("call %d of the burst: %v", i+1, err)
				}
			}
			retry := wantRateLimited(t, call(tt.caller), tt.limit)
			select {
			case got := <-obs.got:
				if got != tt.limit {
					t.Errorf("observer told %q; want %q", got, tt.limit)
				}
			default:
				t.Errorf("observer not told of the refusal")
			}
			// Others are untouched: another caller, and the
			// development principal (exempt: it is the loopback mode's).
			if err := call(tt.alt); err != nil {
				t.Errorf("another caller: %v", err)
			}
			for i := range 2 * one.Burst {
				if err := call(asDev); err != nil {
					t.Fatalf("development principal, call %d: %v", i+1, err)
				}
			}
			time.Sleep(retry)
			if err := call(tt.caller); err != nil {
				t.Errorf("after the retry delay %v: %v", retry, err)
			}
		})
	}
}

// LimitDev holds the development principal to the limits too, and each
// name classroutectl --as gives it is a caller of its own.
func TestRateLimitDevWhenAsked(t *testing.T) {
	e, _ := newLimitedEnv(t, server.IdentityLimits{Plan: server.Rate{PerSecond: 1, Burst: 1}, LimitDev: true})
	if _, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: kenya()}); err != nil {
		t.Fatal(err)
	}
	_, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: kenya()})
	wantRateLimited(t, err, "plan")
}

// A caller holds at most Streams streams open, of every kind: a Watch
// beyond it is refused, and so is a health Watch; other callers are
// untouched; a stream that ends makes room for one.
func TestStreamCapPerCaller(t *testing.T) {
	const cap = 3
	e, obs := newLimitedEnv(t, server.IdentityLimits{Streams: cap}, state.WithWatchProgressEvery(watchEvery))
	// openAs opens a Watch as caller, and returns it once a progress
	// notice says it was admitted, or why it was not.
	openAs := func(caller string) (*watchStream, error) {
		t.Helper()
		c, cancel := context.WithCancel(callAs(t, caller))
		stream, err := e.place.Watch(c, &pb.WatchRequest{})
		if err != nil {
			cancel()
			return nil, err
		}
		w := &watchStream{cancel: cancel, resps: make(chan *pb.WatchResponse, 1<<10)}
		go func() {
			defer close(w.resps)
			for {
				r, err := stream.Recv()
				if err != nil {
					w.err = err
					return
				}
				w.resps <- r
			}
		}()
		t.Cleanup(func() {
			cancel()
			for range w.resps {
			}
		})
		select {
		case _, ok := <-w.resps:
			if !ok {
				return nil, w.err
			}
			return w, nil
		case <-time.After(10 * time.Second):
			t.Fatal("no progress notice in 10s")
		}
		return nil, nil
	}
	// The caller's first stream is a health Watch (it answers at
	// once with the serving status); the rest are placement Watches.
	hw, err := e.health.Watch(callAs(t, asSubmitter), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hw.Recv(); err != nil {
		t.Fatalf("health Watch: %v", err)
	}
	var held []*watchStream
	for i := range cap - 1 {
		w, err := openAs(asSubmitter)
		if err != nil {
			t.Fatalf("watch %d: %v", i+1, err)
		}
		held = append(held, w)
	}
	_, err = openAs(asSubmitter)
	st := wantCode(t, err, codes.ResourceExhausted)
	wantReason(t, st, "TOO_MANY_STREAMS")
	detail[*errdetails.QuotaFailure](t, st)
	if got := <-obs.got; got != "streams" {
		t.Errorf("observer told %q; want streams", got)
	}
	hw2, err := e.health.Watch(callAs(t, asSubmitter), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = hw2.Recv()
	}
	wantCode(t, err, codes.ResourceExhausted)
	// Another caller of the same tenant, and the development principal,
	// are not held to this caller's count.
	if _, err := openAs(asTenantAud); err != nil {
		t.Errorf("another caller's watch: %v", err)
	}
	for i := range cap + 1 {
		if _, err := openAs(asDev); err != nil {
			t.Fatalf("development principal's watch %d: %v", i+1, err)
		}
	}
	// One ends: the caller may open one again, and only one.
	held[0].cancel()
	eventually(t, "a watch slot is free after a stream ended", func() bool {
		w, err := openAs(asSubmitter)
		if err != nil {
			return false
		}
		held[0] = w
		return true
	})
	_, err = openAs(asSubmitter)
	wantCode(t, err, codes.ResourceExhausted)
}

// An agent flooding reports writes no faster than its rate: the reports
// beyond it are held back, the latest written once the rate allows; the
// stream stays up, and a session start beyond the rate is refused.
func TestAgentReportFloodThrottled(t *testing.T) {
	rate := server.Rate{PerSecond: 5, Burst: 5}
	e, obs := newLimitedEnv(t, server.IdentityLimits{AgentReports: rate})
	asKonza := as(t, asAgent)
	stream, err := e.agents.Connect(asKonza)
	if err != nil {
		t.Fatal(err)
	}
	a := &agentConn{tb: t, stream: stream, in: make(chan *pb.ConnectResponse, 100), err: make(chan error, 1), cancel: func() {}}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				a.err <- err
				return
			}
			a.in <- m
		}
	}()
	a.send(hello(konza, "konza-agent"))
	if a.next().GetWelcome() == nil {
		t.Fatal("no welcome")
	}

	// Count the writes of the region's live record while flooding.
	liveKey := e.prefix + "live/" + konza
	before, err := e.etcd.Get(ctx(t), liveKey)
	if err != nil || len(before.Kvs) != 1 {
		t.Fatalf("live record: %v, %v", before, err)
	}

	const flood = 400
	start := time.Now()
	for i := range flood {
		a.send(report(konza, true, fmt.Sprintf("report %d", i), plenty))
	}
	last := fmt.Sprintf("report %d", flood-1)
	eventually(t, "the last report is written", func() bool {
		l, _ := e.store.RegionAgent(konza)
		return l != nil && l.Detail == last
	})
	elapsed := time.Since(start)
	// Every write of the live record since, from etcd's history.
	after, err := e.etcd.Get(ctx(t), liveKey)
	if err != nil || len(after.Kvs) != 1 {
		t.Fatalf("live record: %v, %v", after, err)
	}
	n := 0
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	for resp := range e.etcd.Watch(wctx, liveKey, clientv3.WithRev(before.Header.Revision+1)) {
		if err := resp.Err(); err != nil {
			t.Fatal(err)
		}
		done := false
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypePut {
				n++
			}
			done = done || ev.Kv.ModRevision >= after.Kvs[0].ModRevision
		}
		if done {
			break
		}
	}
	// The session start spent one token; the bucket then allows Burst
	// at once and PerSecond after.
	allowed := rate.Burst + int(rate.PerSecond*elapsed.Seconds()) + 1
	t.Logf("%d reports in %v: %d writes of the live record (at most %d allowed)", flood, elapsed.Round(time.Millisecond), n, allowed)
	if n > allowed {
		t.Errorf("%d reports made %d writes in %v; want at most %d (rate %v)", flood, n, elapsed, allowed, rate)
	}
	if len(obs.got) == 0 {
		t.Error("observer not told of the held-back reports")
	}
	select {
	case err := <-a.err:
		t.Fatalf("the flooding agent's stream ended: %v", err)
	default:
	}

	// Session starts spend the same tokens: with the bucket empty, a
	// reconnecting agent is refused with when to retry, before anything
	// is written.
	for range rate.Burst + 1 {
		a.send(report(konza, true, "drain", plenty))
	}
	a.cancel()
	_ = stream.CloseSend()
	again, err := e.agents.Connect(as(t, asAgent))
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Send(hello(konza, "konza-agent")); err != nil {
		t.Fatal(err)
	}
	_, err = again.Recv()
	if status.Code(err) == codes.AlreadyExists {
		t.Skip("the first session had not ended yet") // not the limit's doing
	}
	wantRateLimited(t, err, "agent_report")
}

// A call beyond the rate waits for its token when it comes within
// MaxWait, for up to MaxWaiting calls of a caller at once; the call
// beyond those, or one whose deadline is nearer than its token, is
// refused at once.
func TestRateLimitWaits(t *testing.T) {
	e, _ := newLimitedEnv(t, server.IdentityLimits{Plan: server.Rate{PerSecond: 10, Burst: 1}, MaxWait: time.Second, MaxWaiting: 2})
	plan := func(c context.Context) error {
		_, err := e.place.Plan(c, &pb.PlanRequest{Workload: kenya()})
		return err
	}
	if err := plan(as(t, asSubmitter)); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		err  error
		took time.Duration
	}
	out := make(chan outcome, 3)
	for range 3 {
		go func() {
			start := time.Now()
			err := plan(as(t, asSubmitter))
			out <- outcome{err, time.Since(start)}
		}()
	}
	var waited, refused int
	for range 3 {
		o := <-out
		switch status.Code(o.err) {
		case codes.OK:
			waited++
			if o.took < 50*time.Millisecond {
				t.Errorf("a call beyond the rate served after %v; want it to wait for its token (100ms or more)", o.took)
			}
		case codes.ResourceExhausted:
			refused++
			wantRateLimited(t, o.err, "plan")
		default:
			t.Errorf("a concurrent Plan: %v", o.err)
		}
	}
	if waited != 2 || refused != 1 {
		t.Errorf("3 concurrent calls beyond the rate: %d waited, %d refused; want 2 and 1 (MaxWaiting 2)", waited, refused)
	}
	// The bucket is drained again: a call whose deadline comes before
	// its token is refused at once, not left to time out.
	_ = plan(as(t, asSubmitter))
	c, cancel := context.WithTimeout(as(t, asSubmitter), 20*time.Millisecond)
	defer cancel()
	wantRateLimited(t, plan(c), "plan")
}
