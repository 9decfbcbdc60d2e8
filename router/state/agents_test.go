package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/state"
)

// agentTTL is the session TTL of the tests: etcd's least (2s).
const agentTTL = 2 * time.Second

// agentEnv is an env with two SECRET regions, aws/secret-east and
// azure/secret-west, and the US Army tenant.
func agentEnv(tb testing.TB, opts ...state.Option) *env {
	tb.Helper()
	e := newEnv(tb, nil, opts...)
	e.seed([]router.Provider{provider("aws"), provider("azure")},
		[]router.Region{secretRegion("aws", "secret-east", big), secretRegion("azure", "secret-west", big)},
		[]router.Tenant{army()})
	return e
}

// connect starts a session, closed at cleanup.
func (e *env) connect(s *state.Store, region, agent string) *state.AgentSession {
	e.tb.Helper()
	a, err := s.ConnectAgent(context.Background(), region, agent, agentTTL)
	if err != nil {
		e.tb.Fatalf("ConnectAgent(%s, %s): %v", region, agent, err)
	}
	e.tb.Cleanup(func() { a.Close() })
	return a
}

// record is one etcd record, read behind the store's back.
type record struct {
	Value             string
	ModRev, CreateRev int64
	Lease             int64
}

func (e *env) record(key string) *record {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), e.prefix+key)
	if err != nil {
		e.tb.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	kv := resp.Kvs[0]
	return &record{string(kv.Value), kv.ModRevision, kv.CreateRevision, kv.Lease}
}

func (e *env) health(key string) *router.Health {
	e.tb.Helper()
	r := e.record("health/" + key)
	if r == nil {
		return nil
	}
	var h router.Health
	if err := json.Unmarshal([]byte(r.Value), &h); err != nil {
		e.tb.Fatal(err)
	}
	return &h
}

// within polls cond every 20ms until it holds or d passes.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func TestAgentSession(t *testing.T) {
	e := agentEnv(t)
	ctx := context.Background()
	const key = "aws/secret-east"

	a := e.connect(e.store, key, "agent-1")
	live := e.record("live/" + key)
	if live == nil || live.Lease != a.LeaseID() || live.CreateRev == 0 {
		t.Fatalf("live record %+v; want one on lease %d", live, a.LeaseID())
	}
	if a.TTL() != agentTTL {
		t.Errorf("TTL %v; want %v", a.TTL(), agentTTL)
	}
	if h := e.health(key); h != nil {
		t.Errorf("health record %+v before the first report; want none", h)
	}
	// Connected but silent: the free capacity it has not reported does
	// not cap the region.
	if st, _ := e.store.GetRegion(key); st.Reported != nil || st.Free() != st.Region.Capacity {
		t.Errorf("region before the first report: reported %v, free %+v; want nil, the capacity", st.Reported, st.Free())
	}

	if err := a.Report(ctx, true, "all good", big); err != nil {
		t.Fatal(err)
	}
	h := e.health(key)
	if h == nil || !h.Healthy || h.Reason != "" || h.Agent != "agent-1" || h.Since.IsZero() {
		t.Fatalf("health after the first report %+v; want healthy, by agent-1", h)
	}
	first := e.record("health/" + key)
	firstSince := h.Since
	rl, rh := e.store.RegionAgent(key)
	if rl == nil || rl.Agent != "agent-1" || !rl.Healthy || rl.Detail != "all good" || rl.ReportedAt.IsZero() || rl.Free != big || rh == nil || !rh.Healthy {
		t.Errorf("RegionAgent = %+v, %+v", rl, rh)
	}

	// The same health again, in other words: the health record stays.
	if err := a.Report(ctx, true, "still good", big); err != nil {
		t.Fatal(err)
	}
	if got := e.record("health/" + key); got.ModRev != first.ModRev {
		t.Errorf("health record rewritten (revision %d -> %d) though health did not change", first.ModRev, got.ModRev)
	}
	if got := e.record("live/" + key); got.ModRev == live.ModRev || !strings.Contains(got.Value, "still good") {
		t.Errorf("live record %+v not rewritten with the report", got)
	}

	// Unhealthy: decisions refuse the region for health.
	if err := a.Report(ctx, false, "disk array failed", big); err != nil {
		t.Fatal(err)
	}
	if h := e.health(key); h == nil || h.Healthy || h.Reason != "disk array failed" || !h.Since.After(firstSince) {
		t.Errorf("health after an unhealthy report %+v; want unhealthy, disk array failed", h)
	}
	plan, err := e.store.Plan(ctx, secretWorkload(t, "w"))
	if err != nil {
		t.Fatal(err)
	}
	if v := verdict(plan.Regions, key); v.Eligible || !hasReason(v, router.ReasonHealth, "disk array failed") {
		t.Errorf("verdict of the unhealthy region %+v; want refused for health", v)
	}
	if slices.Contains(plan.Chosen, key) {
		t.Errorf("plan chose the unhealthy region")
	}

	// Reported free capacity caps the region.
	if err := a.Report(ctx, true, "", router.Resources{MilliCPU: 500, MemoryMiB: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w := secretWorkload(t, "w")
	plan, err = e.store.Plan(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if v := verdict(plan.Regions, key); v.Eligible || !hasReason(v, router.ReasonCapacity, "cpu 500m") {
		t.Errorf("verdict with 500m reported free %+v; want refused for capacity", v)
	}

	// Close: the live record goes at once, the health record stays.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.record("live/" + key); got != nil {
		t.Errorf("live record %+v after Close; want none", got)
	}
	if h := e.health(key); h == nil || !h.Healthy {
		t.Errorf("health record %+v after Close; want it kept", h)
	}
	if err := a.Report(ctx, true, "", big); err == nil {
		t.Errorf("Report after Close succeeded")
	}
	select {
	case <-a.Done():
	default:
		t.Errorf("session not done after Close")
	}
}

func verdict(ex []router.Explained, key string) router.Explained {
	for _, v := range ex {
		if v.Key == key {
			return v
		}
	}
	return router.Explained{Key: "missing " + key}
}

func hasReason(v router.Explained, code router.ReasonCode, sub string) bool {
	return slices.ContainsFunc(v.Reasons, func(r router.Reason) bool {
		return r.Code == code && strings.Contains(r.Message, sub)
	})
}

func TestAgentConnectRefused(t *testing.T) {
	e := agentEnv(t)
	ctx := context.Background()
	const key = "aws/secret-east"
	a := e.connect(e.store, key, "agent-1")
	if err := a.Report(ctx, true, "", big); err != nil {
		t.Fatal(err)
	}
	before := e.record("live/" + key)

	var invalid *router.InvalidError
	cases := []struct {
		name          string
		region, agent string
		want          error
		field         string
	}{
		{"another agent", key, "agent-2", router.ErrAgentConnected, ""},
		{"unknown region", "aws/no-such-region", "agent-3", router.ErrNotFound, ""},
		{"not a region key", "secret-east", "agent-3", nil, "hello.region"},
		{"no agent id", key, "", nil, "hello.agent_id"},
		{"agent id with a slash", key, "a/b", nil, "hello.agent_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := e.store.ConnectAgent(ctx, tc.region, tc.agent, agentTTL)
			if err == nil {
				s.Close()
				t.Fatalf("ConnectAgent succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v; want %v", err, tc.want)
			}
			if tc.field != "" && (!errors.As(err, &invalid) || invalid.Violations[0].Field != tc.field) {
				t.Errorf("got %v; want an InvalidError on %s", err, tc.field)
			}
			if got := e.record("live/" + key); *got != *before {
				t.Errorf("live record %+v; want it unchanged %+v", got, before)
			}
			if got := e.record("live/" + tc.region); tc.region != key && got != nil {
				t.Errorf("live record for %s created: %+v", tc.region, got)
			}
		})
	}
	if err := a.Err(); err != nil {
		t.Errorf("the first session ended: %v", err)
	}
	if !strings.Contains(errString(e.store.ConnectAgent(ctx, key, "agent-2", agentTTL)), `agent "agent-1" is connected`) {
		t.Errorf("refusal does not name the connected agent")
	}
}

func errString(s *state.AgentSession, err error) string {
	if s != nil {
		s.Close()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// An agent that connects again with its own id takes the region over
// from its stale session, which ends and can change nothing more.
func TestAgentTakeover(t *testing.T) {
	e := agentEnv(t)
	ctx := context.Background()
	const key = "aws/secret-east"
	old := e.connect(e.store, key, "agent-1")
	if err := old.Report(ctx, true, "old", big); err != nil {
		t.Fatal(err)
	}
	fresh := e.connect(e.store, key, "agent-1")
	live := e.record("live/" + key)
	if live == nil || live.Lease != fresh.LeaseID() {
		t.Fatalf("live record %+v; want the new session's on lease %d", live, fresh.LeaseID())
	}
	select {
	case <-old.Done():
	case <-time.After(agentTTL):
		t.Fatal("the superseded session did not end")
	}
	if err := old.Err(); !errors.Is(err, router.ErrUnavailable) {
		t.Errorf("superseded session ended with %v; want ErrUnavailable", err)
	}
	if err := old.Report(ctx, false, "stale", big); err == nil {
		t.Errorf("the superseded session reported")
	}
	if got := e.record("live/" + key); *got != *live {
		t.Errorf("live record %+v changed by the superseded session; want %+v", got, live)
	}
	// Its Close must not take the new session's record with it.
	old.Close()
	if got := e.record("live/" + key); got == nil || *got != *live {
		t.Errorf("live record %+v after the old session closed; want %+v", got, live)
	}
	if err := fresh.Report(ctx, true, "new", big); err != nil {
		t.Errorf("the new session cannot report: %v", err)
	}
}

func TestAgentReportRefused(t *testing.T) {
	e := agentEnv(t)
	ctx := context.Background()
	const key = "aws/secret-east"
	a := e.connect(e.store, key, "agent-1")
	if err := a.Report(ctx, true, "", big); err != nil {
		t.Fatal(err)
	}
	live, health := e.record("live/"+key), e.record("health/"+key)
	cases := []struct {
		name   string
		detail string
		free   router.Resources
		field  string
	}{
		{"negative cpu", "", router.Resources{MilliCPU: -1}, "report.free.milli_cpu"},
		{"negative memory", "", router.Resources{MemoryMiB: -1}, "report.free.memory_mib"},
		{"negative gpu", "", router.Resources{GPU: -1}, "report.free.gpu"},
		{"long detail", strings.Repeat("x", state.MaxAgentDetailLen+1), big, "report.detail"},
		{"bad utf-8", "\xff", big, "report.detail"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Report(ctx, false, tc.detail, tc.free)
			var invalid *router.InvalidError
			if !errors.As(err, &invalid) || invalid.Violations[0].Field != tc.field {
				t.Fatalf("got %v; want an InvalidError on %s", err, tc.field)
			}
			if got := e.record("live/" + key); *got != *live {
				t.Errorf("live record changed: %+v", got)
			}
			if got := e.record("health/" + key); *got != *health {
				t.Errorf("health record changed: %+v", got)
			}
		})
	}
	if err := a.Err(); err != nil {
		t.Errorf("a refused report ended the session: %v", err)
	}
}

// A daemon that dies leaves its agents' live records on leases nobody
// keeps alive: etcd deletes them after the TTL, and keeps the health
// records.
func TestAgentLeaseExpiresAfterDaemonCrash(t *testing.T) {
	e := agentEnv(t)
	ctx := context.Background()
	const key = "aws/secret-east"
	cli := etcdtest.Client(t, e.member.Endpoints()...)
	defer cli.Close()
	daemon := e.open(cli)
	a, err := daemon.ConnectAgent(ctx, key, "agent-1", agentTTL)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Report(ctx, true, "", big); err != nil {
		t.Fatal(err)
	}
	cli.Close() // the daemon is gone: nothing revokes or refreshes the lease
	crashed := time.Now()

	time.Sleep(agentTTL / 2)
	if e.record("live/"+key) == nil {
		t.Fatalf("live record gone %v after the crash, before its TTL %v", time.Since(crashed), agentTTL)
	}
	const slack = 1500 * time.Millisecond
	if !within(agentTTL+slack, func() bool { return e.record("live/"+key) == nil }) {
		t.Fatalf("live record still there %v after the crash (TTL %v)", time.Since(crashed), agentTTL)
	}
	if h := e.health(key); h == nil || !h.Healthy {
		t.Errorf("health record %+v; want it kept", h)
	}
	// The surviving daemon's cache follows.
	if !within(time.Second, func() bool { l, _ := e.store.RegionAgent(key); return l == nil }) {
		t.Errorf("the other daemon still shows a live agent")
	}
	if _, h := e.store.RegionAgent(key); h == nil {
		t.Errorf("the other daemon lost the health record")
	}
	a.Close()
}

// An agent that stops reporting: its session ends when the lease lapses,
// and the live record goes.
func TestAgentSilentSessionEnds(t *testing.T) {
	e := agentEnv(t)
	const key = "aws/secret-east"
	a := e.connect(e.store, key, "agent-1")
	start := time.Now()
	select {
	case <-a.Done():
	case <-time.After(agentTTL + 2*time.Second):
		t.Fatal("a silent session did not end")
	}
	if d := time.Since(start); d < agentTTL-100*time.Millisecond {
		t.Errorf("silent session ended after %v; want no sooner than its TTL %v", d, agentTTL)
	}
	if err := a.Err(); !errors.Is(err, router.ErrUnavailable) {
		t.Errorf("Err = %v; want ErrUnavailable", err)
	}
	if !within(2*time.Second, func() bool { return e.record("live/"+key) == nil }) {
		t.Errorf("live record outlived the session")
	}
}

// When etcd is unreachable from the daemon for longer than the TTL, the
// session ends with ErrUnavailable, though the cache cannot see the
// record go; etcd, unrefreshed, expires the lease and the live record.
func TestAgentSessionEndsWhenEtcdUnreachable(t *testing.T) {
	e := agentEnv(t)
	const key = "aws/secret-east"
	p := newProxy(t, e.member.Endpoints()[0])
	cli := etcdtest.Client(t, p.addr())
	defer cli.Close()
	daemon := e.open(cli, state.WithOpTimeout(300*time.Millisecond))
	a := e.connect(daemon, key, "agent-1")
	if err := a.Report(context.Background(), true, "", big); err != nil {
		t.Fatal(err)
	}
	p.cut()
	cut := time.Now()
	select {
	case <-a.Done():
	case <-time.After(agentTTL + 2*time.Second):
		t.Fatal("session outlived its connection to etcd by more than its TTL")
	}
	if d := time.Since(cut); d < agentTTL/2 {
		t.Errorf("session ended %v after etcd became unreachable; want about its TTL %v", d, agentTTL)
	}
	if err := a.Err(); !errors.Is(err, router.ErrUnavailable) || !strings.Contains(err.Error(), "lease") {
		t.Errorf("Err = %v; want ErrUnavailable: lease not refreshed", err)
	}
	if err := a.Report(context.Background(), true, "", big); !errors.Is(err, router.ErrUnavailable) {
		t.Errorf("Report = %v; want ErrUnavailable", err)
	}
	if !within(2*time.Second, func() bool { return e.record("live/"+key) == nil }) {
		t.Errorf("live record still in etcd %v after its daemon lost etcd", time.Since(cut))
	}
}

// proxy forwards TCP connections to an etcd member until cut.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{l: l, target: strings.TrimPrefix(target, "http://")}
	p.wg.Go(p.serve)
	tb.Cleanup(p.cut)
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { io.Copy(out, in); out.Close() })
		p.wg.Go(func() { io.Copy(in, out); in.Close() })
	}
}

// cut closes the listener and every connection, and waits for the
// forwarding goroutines.
func (p *proxy) cut() {
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func TestAgentAck(t *testing.T) {
	e := agentEnv(t)
	ctx := context.Background()
	w := secretWorkload(t, "w")
	w.Replicas = 2
	p, err := e.store.Place(ctx, "two", w)
	if err != nil {
		t.Fatal(err)
	}
	east, west := "aws/secret-east", "azure/secret-west"
	i := slices.Index(p.Regions, east)
	if i < 0 {
		t.Fatalf("placed in %v; want %s among them", p.Regions, east)
	}
	if _, err := e.store.Place(ctx, "elsewhere", secretWorkload(t, "w1")); err != nil {
		t.Fatal(err)
	}
	a := e.connect(e.store, east, "agent-1")
	if err := a.Report(ctx, true, "", big); err != nil {
		t.Fatal(err)
	}

	if err := a.Ack(ctx, "us-army", "two", router.ReplicaRunning, "pid 42"); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.GetPlacement("us-army", "two")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Replicas) != 2 {
		t.Fatalf("replicas %+v; want one entry per region", got.Replicas)
	}
	if r := got.Replica(i); r.State != router.ReplicaRunning || r.Detail != "pid 42" || r.At.IsZero() {
		t.Errorf("replica in %s: %+v; want running, pid 42", east, r)
	}
	if r := got.Replica(1 - i); r.State != router.ReplicaPending {
		t.Errorf("replica in %s: %+v; want pending", west, r)
	}
	if got.UpdatedAt.IsZero() {
		t.Errorf("UpdatedAt not set")
	}
	// The same ack again writes nothing.
	rev := e.record("placements/us-army/two").ModRev
	if err := a.Ack(ctx, "us-army", "two", router.ReplicaRunning, "pid 42"); err != nil {
		t.Fatal(err)
	}
	if r := e.record("placements/us-army/two").ModRev; r != rev {
		t.Errorf("a repeated ack rewrote the placement (%d -> %d)", rev, r)
	}

	if err := a.Ack(ctx, "us-army", "two", router.ReplicaFailed, "out of disk"); err != nil {
		t.Fatal(err)
	}
	trail, err := e.store.ListAudit(ctx, 1)
	if err != nil || len(trail) != 1 {
		t.Fatalf("ListAudit = %v, %v", trail, err)
	}
	if x := trail[0]; x.Op != audit.OpReplicaFailed || x.RequestID != "two" || !slices.Equal(x.Regions, []string{east}) ||
		len(x.Reasons) != 1 || !strings.Contains(x.Reasons[0], "out of disk") || !strings.Contains(x.Reasons[0], "agent-1") || x.Label != "SECRET//NOFORN" {
		t.Errorf("audit record %+v; want a replica-failed record of two in %s", x, east)
	}
	if got, _ := e.store.GetPlacement("us-army", "two"); got.Replica(i).State != router.ReplicaFailed {
		t.Errorf("replica state %v; want failed", got.Replica(i).State)
	}

	// Refused acks change nothing.
	if _, err := e.store.Release(ctx, "us-army", "elsewhere"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		tenant string
		id     string
		st     router.ReplicaState
		want   error
		field  string
	}{
		{"unknown placement", "us-army", "no-such", router.ReplicaRunning, router.ErrNotFound, ""},
		{"another tenant's id", "us-navy", "two", router.ReplicaRunning, router.ErrNotFound, ""},
		{"released placement", "us-army", "elsewhere", router.ReplicaRunning, router.ErrNotAssigned, ""},
		{"released, no tenant", "", "elsewhere", router.ReplicaRunning, router.ErrNotFound, ""},
		{"pending", "us-army", "two", router.ReplicaPending, nil, "ack.state"},
		{"unknown state", "us-army", "two", router.ReplicaState(9), nil, "ack.state"},
		{"no id", "us-army", "", router.ReplicaRunning, nil, "ack.placement_id"},
		{"bad tenant", "us-army/two", "two", router.ReplicaRunning, nil, "ack.tenant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.record("placements/us-army/two")
			beforeOther := e.record("placements/us-army/elsewhere")
			auditBefore, _ := e.store.ListAudit(ctx, 100)
			err := a.Ack(ctx, tc.tenant, tc.id, tc.st, "")
			if err == nil {
				t.Fatal("Ack succeeded")
			}
			var invalid *router.InvalidError
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v; want %v", err, tc.want)
			}
			if tc.field != "" && (!errors.As(err, &invalid) || invalid.Violations[0].Field != tc.field) {
				t.Errorf("got %v; want an InvalidError on %s", err, tc.field)
			}
			if got := e.record("placements/us-army/two"); *got != *before {
				t.Errorf("placement two changed")
			}
			if got := e.record("placements/us-army/elsewhere"); *got != *beforeOther {
				t.Errorf("placement elsewhere changed")
			}
			if auditAfter, _ := e.store.ListAudit(ctx, 100); len(auditAfter) != len(auditBefore) {
				t.Errorf("audit grew from %d to %d records", len(auditBefore), len(auditAfter))
			}
		})
	}
}

// An agent may ack only placements that hold its region.
func TestAgentAckOtherRegion(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws"), provider("azure")},
		[]router.Region{secretRegion("aws", "secret-east", big), secretRegion("azure", "secret-west", big)},
		[]router.Tenant{army()})
	ctx := context.Background()
	p, err := e.store.Place(ctx, "one", secretWorkload(t, "w"))
	if err != nil {
		t.Fatal(err)
	}
	otherRegion := "aws/secret-east"
	if p.Regions[0] == otherRegion {
		otherRegion = "azure/secret-west"
	}
	a := e.connect(e.store, otherRegion, "agent-x")
	before := e.record("placements/us-army/one")
	if err := a.Ack(ctx, "us-army", "one", router.ReplicaRunning, ""); !errors.Is(err, router.ErrNotAssigned) {
		t.Errorf("ack from %s of a placement in %s = %v; want ErrNotAssigned", otherRegion, p.Regions[0], err)
	}
	if got := e.record("placements/us-army/one"); *got != *before {
		t.Errorf("placement changed by a refused ack")
	}
}

// next returns the next batch of assignments, failing after a few seconds.
func next(tb testing.TB, a *state.AgentSession) []router.Assignment {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	as, err := a.Assignments(ctx)
	if err != nil {
		tb.Fatalf("Assignments: %v", err)
	}
	return as
}

func summary(as []router.Assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Action.String()+" "+a.Placement.ID)
	}
	return out
}

func TestAgentAssignments(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "secret-east", big), secretRegion("aws", "secret-west", big)},
		[]router.Tenant{army()})
	ctx := context.Background()
	east := "aws/secret-east"
	west := "aws/secret-west"
	w := secretWorkload(t, "w")
	w.Replicas = 2
	if _, err := e.store.Place(ctx, "before", w); err != nil {
		t.Fatal(err)
	}
	a := e.connect(e.store, east, "agent-1")

	as := next(t, a)
	if got := summary(as); !slices.Equal(got, []string{"run before"}) {
		t.Fatalf("initial assignments %v; want [run before]", got)
	}
	if as[0].Revision != e.record("placements/us-army/before").ModRev || as[0].Placement.Workload.Name != "w" {
		t.Errorf("assignment %+v; want the placement's revision and workload", as[0])
	}

	// A new placement in the region.
	p, err := e.store.Place(ctx, "new", w)
	if err != nil {
		t.Fatal(err)
	}
	as = next(t, a)
	if got := summary(as); !slices.Equal(got, []string{"run new"}) {
		t.Fatalf("after Place: %v; want [run new]", got)
	}
	if as[0].Revision != e.record("placements/us-army/new").ModRev || !slices.Equal(as[0].Placement.Regions, p.Regions) {
		t.Errorf("assignment %+v", as[0])
	}

	// Acks change placements, not assignments; release stops it.
	if err := a.Report(ctx, true, "", big); err != nil {
		t.Fatal(err)
	}
	if err := a.Ack(ctx, "us-army", "new", router.ReplicaRunning, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Release(ctx, "us-army", "new"); err != nil {
		t.Fatal(err)
	}
	as = next(t, a)
	if got := summary(as); !slices.Equal(got, []string{"stop new"}) {
		t.Fatalf("after Release: %v; want [stop new]", got)
	}
	if as[0].Placement.State != router.PlacementReleased || as[0].Revision != e.record("placements/us-army/new").ModRev {
		t.Errorf("stop %+v; want the released version", as[0])
	}

	// A replica moved away, its retiring copy left behind: still RUN;
	// once the copy is gone: STOP. (The reconciler does this; here the
	// test writes the records.)
	moved := *mustGet(t, e.store, "before")
	moved.Regions = []string{west, "aws/secret-north"}
	moved.Retiring = []router.Retiring{{Region: east, MovedTo: "aws/secret-north", Since: time.Now().UTC()}}
	rev := e.putJSON("placements/us-army/before", &moved)
	waitFor(t, e.store, rev)
	moved.Retiring = nil
	rev = e.putJSON("placements/us-army/before", &moved)
	as = next(t, a)
	if got := summary(as); !slices.Equal(got, []string{"stop before"}) {
		t.Fatalf("after the retiring copy went: %v; want [stop before]", got)
	}
	if as[0].Revision != rev {
		t.Errorf("stop at revision %d; want %d", as[0].Revision, rev)
	}

	// Placements elsewhere wake nothing.
	elsewhere := *mustGet(t, e.store, "before")
	elsewhere.ID, elsewhere.Regions, elsewhere.Retiring = "west-only", []string{west}, nil
	e.putJSON("placements/us-army/west-only", &elsewhere)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if as, err := a.Assignments(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Assignments = %v, %v; want nothing for a placement elsewhere", summary(as), err)
	}

	// A retiring copy alone assigns the region.
	elsewhere.Retiring = []router.Retiring{{Region: east, MovedTo: west, Since: time.Now().UTC()}}
	e.putJSON("placements/us-army/west-only", &elsewhere)
	if got := summary(next(t, a)); !slices.Equal(got, []string{"run west-only"}) {
		t.Fatalf("after a retiring copy appeared: %v; want [run west-only]", got)
	}
	// An ack of a retiring copy is taken and changes nothing.
	before := e.record("placements/us-army/west-only")
	if err := a.Ack(ctx, "us-army", "west-only", router.ReplicaRunning, ""); err != nil {
		t.Errorf("ack of a retiring copy: %v", err)
	}
	if got := e.record("placements/us-army/west-only"); *got != *before {
		t.Errorf("ack of a retiring copy changed the placement")
	}
	// Deleting the record stops it.
	if _, err := e.other.Delete(ctx, e.prefix+"placements/us-army/west-only"); err != nil {
		t.Fatal(err)
	}
	if got := summary(next(t, a)); !slices.Equal(got, []string{"stop west-only"}) {
		t.Fatalf("after the placement was deleted: %v; want [stop west-only]", got)
	}
}

func mustGet(tb testing.TB, s *state.Store, id string) *router.Placement {
	tb.Helper()
	p, err := s.GetPlacement("us-army", id)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
