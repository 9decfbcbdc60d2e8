package server_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// konza is the one region the Kenyan workload can run in.
const konza = "ke-gov/konza-1"

// kenya() (watch_test.go) is a Kenyan workload that only ke-gov/konza-1
// in the default catalogue may hold.

// agentConn is one agent's stream, read by a goroutine of its own.
type agentConn struct {
	tb     testing.TB
	stream pb.AgentService_ConnectClient
	in     chan *pb.ConnectResponse
	err    chan error
	cancel context.CancelFunc
}

// open opens an agent stream and sends first; it does not wait for the answer.
func (e *env) open(tb testing.TB, first *pb.ConnectRequest) *agentConn {
	tb.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	stream, err := e.agents.Connect(c)
	if err != nil {
		tb.Fatal(err)
	}
	a := &agentConn{tb: tb, stream: stream, in: make(chan *pb.ConnectResponse, 100), err: make(chan error, 1), cancel: cancel}
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
	a.send(first)
	return a
}

// connect opens an agent stream with a hello and returns the welcome.
func (e *env) connect(tb testing.TB, region, agent string) (*agentConn, *pb.AgentWelcome) {
	tb.Helper()
	a := e.open(tb, hello(region, agent))
	w := a.next().GetWelcome()
	if w == nil {
		tb.Fatalf("first answer is not a welcome")
	}
	return a, w
}

func hello(region, agent string) *pb.ConnectRequest {
	return &pb.ConnectRequest{Msg: &pb.ConnectRequest_Hello{Hello: &pb.AgentHello{Region: region, AgentId: agent}}}
}

func report(region string, healthy bool, detail string, free *pb.Resources) *pb.ConnectRequest {
	return &pb.ConnectRequest{Msg: &pb.ConnectRequest_Report{Report: &pb.AgentReport{Region: region, Healthy: healthy, Detail: detail, Free: free}}}
}

func ack(region, id string, st pb.ReplicaState) *pb.ConnectRequest {
	return &pb.ConnectRequest{Msg: &pb.ConnectRequest_Ack{Ack: &pb.AgentAck{Region: region, PlacementId: id, State: st}}}
}

var plenty = &pb.Resources{MilliCpu: 1 << 30, MemoryMib: 1 << 30, Gpu: 1 << 10}

func (a *agentConn) send(m *pb.ConnectRequest) {
	a.tb.Helper()
	if err := a.stream.Send(m); err != nil {
		a.tb.Fatalf("Send: %v", err)
	}
}

// next returns the next message from the server, failing after 5s or
// when the stream ends.
func (a *agentConn) next() *pb.ConnectResponse {
	a.tb.Helper()
	select {
	case m := <-a.in:
		return m
	case err := <-a.err:
		a.tb.Fatalf("stream ended: %v", err)
	case <-time.After(5 * time.Second):
		a.tb.Fatalf("no message from the server in 5s")
	}
	return nil
}

// ended waits for the stream to end and returns its status.
func (a *agentConn) ended(within time.Duration) *status.Status {
	a.tb.Helper()
	for {
		select {
		case <-a.in: // welcomes and assignments before the end
		case err := <-a.err:
			if errors.Is(err, io.EOF) {
				return status.New(codes.OK, "") // the server ended the stream cleanly
			}
			return status.Convert(err)
		case <-time.After(within):
			a.tb.Fatalf("stream still open after %v", within)
			return nil
		}
	}
}

// eventually polls cond every 20ms until it holds or 5s pass.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after 5s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) regionHealth(tb testing.TB, key string) *pb.RegionHealth {
	tb.Helper()
	r, err := e.catalog.GetRegion(ctx(tb), &pb.GetRegionRequest{Key: key})
	if err != nil {
		tb.Fatal(err)
	}
	return r.GetRegion().GetHealth()
}

// revisions is every key under the env's prefix with its mod revision.
func (e *env) revisions(tb testing.TB) map[string]int64 {
	tb.Helper()
	resp, err := e.etcd.Get(ctx(tb), e.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]int64)
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), e.prefix)] = kv.ModRevision
	}
	return out
}

func TestAgentSessionOverGRPC(t *testing.T) {
	e := newEnv(t)
	a, w := e.connect(t, konza, "konza-agent")
	if w.GetRegion() != konza || w.GetLeaseId() == 0 || w.GetReportEveryMs() != agentTTL.Milliseconds()/3 || w.GetInitialAssignments() != 0 {
		t.Errorf("welcome %v; want region %s, a lease, report every %dms, no assignments", w, konza, agentTTL.Milliseconds()/3)
	}
	h := e.regionHealth(t, konza)
	if !h.GetAgentLive() || h.GetAgent() != "konza-agent" || h.GetLastReport() != nil || h.GetReportedFree() != nil {
		t.Errorf("health before a report %v; want a live agent that has not reported", h)
	}

	a.send(report(konza, true, "ok", &pb.Resources{MilliCpu: 100000, MemoryMib: 400000}))
	eventually(t, "GetRegion shows the report", func() bool { return e.regionHealth(t, konza).GetLastReport() != nil })
	h = e.regionHealth(t, konza)
	if !h.GetHealthy() || h.GetSince() == nil || h.GetReportedFree().GetMilliCpu() != 100000 || h.GetReason() != "" {
		t.Errorf("health after a report %v", h)
	}

	// Place: the agent is told to run it.
	placed, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "kenya-1", Workload: kenya()})
	if err != nil {
		t.Fatal(err)
	}
	if got := placed.GetPlacement().GetAssignments()[0]; got.GetRegion() != konza || got.GetState() != pb.ReplicaState_REPLICA_STATE_PENDING {
		t.Errorf("new placement's assignment %v; want %s pending", got, konza)
	}
	u := a.next().GetAssignment()
	if u.GetPlacementId() != "kenya-1" || u.GetAction() != pb.AssignmentAction_ASSIGNMENT_ACTION_RUN ||
		u.GetWorkload().GetName() != "kenya-health-records" || u.GetWorkload().GetResources().GetMilliCpu() != kenya().GetResources().GetMilliCpu() || u.GetRevision() == 0 {
		t.Fatalf("assignment %v; want RUN kenya-1 with its workload", u)
	}

	// Acks show in Get.
	a.send(ack(konza, "kenya-1", pb.ReplicaState_REPLICA_STATE_ACCEPTED))
	a.send(ack(konza, "kenya-1", pb.ReplicaState_REPLICA_STATE_RUNNING))
	eventually(t, "Get shows the replica running", func() bool {
		p, err := e.place.Get(ctx(t), &pb.GetRequest{Id: "kenya-1"})
		return err == nil && p.GetPlacement().GetAssignments()[0].GetState() == pb.ReplicaState_REPLICA_STATE_RUNNING
	})
	p, _ := e.place.Get(ctx(t), &pb.GetRequest{Id: "kenya-1"})
	if p.GetPlacement().GetAssignments()[0].GetStateTime() == nil {
		t.Errorf("assignment has no state time")
	}

	// Release: the agent is told to stop.
	if _, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: "kenya-1"}); err != nil {
		t.Fatal(err)
	}
	u = a.next().GetAssignment()
	if u.GetPlacementId() != "kenya-1" || u.GetAction() != pb.AssignmentAction_ASSIGNMENT_ACTION_STOP {
		t.Fatalf("assignment %v; want STOP kenya-1", u)
	}
	// An ack crossing the STOP is dropped and the stream goes on.
	a.send(ack(konza, "kenya-1", pb.ReplicaState_REPLICA_STATE_RUNNING))
	a.send(ack(konza, "no-such-placement", pb.ReplicaState_REPLICA_STATE_RUNNING))
	a.send(report(konza, true, "after the stale acks", plenty))
	eventually(t, "a report after stale acks is taken", func() bool {
		l, _ := e.store.RegionAgent(konza)
		return l != nil && l.Detail == "after the stale acks"
	})

	// A reconnect after the stream ends finds the region's set again.
	if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "kenya-2", Workload: kenya()}); err != nil {
		t.Fatal(err)
	}
	if u := a.next().GetAssignment(); u.GetPlacementId() != "kenya-2" {
		t.Fatalf("assignment %v; want kenya-2", u)
	}
	a.stream.CloseSend()
	if st := a.ended(5 * time.Second); st.Code() != codes.OK {
		t.Errorf("stream after CloseSend ended with %v; want OK", st)
	}
	if l, _ := e.store.RegionAgent(konza); l != nil {
		eventually(t, "the live record goes with the stream", func() bool { l, _ := e.store.RegionAgent(konza); return l == nil })
	}
	if h := e.regionHealth(t, konza); h.GetAgentLive() || !h.GetHealthy() || h.GetAgent() != "konza-agent" {
		t.Errorf("health after the agent left %v; want healthy, not live, by konza-agent", h)
	}
	b, w := e.connect(t, konza, "konza-agent-2")
	if w.GetInitialAssignments() != 1 {
		t.Errorf("welcome %v; want one initial assignment", w)
	}
	if u := b.next().GetAssignment(); u.GetPlacementId() != "kenya-2" || u.GetAction() != pb.AssignmentAction_ASSIGNMENT_ACTION_RUN {
		t.Errorf("initial assignment %v; want RUN kenya-2", u)
	}
}

func TestAgentUnhealthyRegionRefused(t *testing.T) {
	e := newEnv(t)
	a, _ := e.connect(t, konza, "konza-agent")
	a.send(report(konza, false, "cooling failure in hall 2", plenty))
	eventually(t, "the region is unhealthy", func() bool {
		h := e.regionHealth(t, konza)
		return h != nil && !h.GetHealthy()
	})
	if h := e.regionHealth(t, konza); h.GetReason() != "cooling failure in hall 2" {
		t.Errorf("reason %q", h.GetReason())
	}

	plan, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: kenya()})
	if err != nil {
		t.Fatal(err)
	}
	if plan.GetRefusal() == "" || len(plan.GetChosen()) != 0 {
		t.Errorf("plan chose %v; want a refusal", plan.GetChosen())
	}
	check := func(vs []*pb.RegionVerdict) {
		t.Helper()
		i := slices.IndexFunc(vs, func(v *pb.RegionVerdict) bool { return v.GetRegion() == konza })
		if i < 0 {
			t.Fatalf("no verdict for %s", konza)
		}
		if v := vs[i]; v.GetEligible() || !slices.ContainsFunc(v.GetReasons(), func(r *pb.Reason) bool {
			return r.GetCode() == "health" && strings.Contains(r.GetMessage(), "cooling failure in hall 2")
		}) {
			t.Errorf("verdict %v; want refused for health", v)
		}
	}
	check(plan.GetRegions())

	_, err = e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "kenya-sick", Workload: kenya()})
	st := wantCode(t, err, codes.FailedPrecondition)
	check(detail[*pb.Refusal](t, st).GetRegions())
	if n := e.countUnder(t, "placements/"); n != 0 {
		t.Errorf("%d placements stored; want none", n)
	}

	// Healthy again: it places.
	a.send(report(konza, true, "", plenty))
	eventually(t, "the region is healthy", func() bool { return e.regionHealth(t, konza).GetHealthy() })
	if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "kenya-well", Workload: kenya()}); err != nil {
		t.Errorf("Place after recovery: %v", err)
	}
}

// An agent that reports or acknowledges for another region is cut off
// with PERMISSION_DENIED, and nothing is written: not the other region's
// records, not its placements, not the audit trail.
func TestAgentOtherRegionDenied(t *testing.T) {
	const attacker = "azure/usgovvirginia"
	for _, tc := range []struct {
		name string
		msg  *pb.ConnectRequest
		want string
	}{
		{"report", report(konza, false, "taken over", plenty),
			`agent for azure/usgovvirginia may not report for "ke-gov/konza-1"`},
		{"ack", ack(konza, "kenya-1", pb.ReplicaState_REPLICA_STATE_FAILED),
			`agent for azure/usgovvirginia may not acknowledge for "ke-gov/konza-1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			victim, _ := e.connect(t, konza, "konza-agent")
			victim.send(report(konza, true, "", plenty))
			eventually(t, "the victim's report is in", func() bool { return e.regionHealth(t, konza).GetLastReport() != nil })
			if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "kenya-1", Workload: kenya()}); err != nil {
				t.Fatal(err)
			}
			if u := victim.next().GetAssignment(); u.GetPlacementId() != "kenya-1" {
				t.Fatalf("victim assigned %v; want kenya-1", u)
			}

			a, _ := e.connect(t, attacker, "virginia-agent")
			a.send(report(attacker, true, "", plenty))
			eventually(t, "the attacker's report is in", func() bool { return e.regionHealth(t, attacker).GetLastReport() != nil })
			before := e.revisions(t)
			audit := e.countUnder(t, "audit/")

			a.send(tc.msg)
			st := a.ended(5 * time.Second)
			if st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), tc.want) {
				t.Fatalf("stream ended with %v %q; want PermissionDenied %q", st.Code(), st.Message(), tc.want)
			}
			after := e.revisions(t)
			// The only change: the denied agent's own session ended, so
			// its live record is gone.
			if _, ok := after["live/"+attacker]; ok {
				t.Errorf("the denied agent's live record outlived its stream")
			}
			delete(before, "live/"+attacker)
			for k, rev := range before {
				if after[k] != rev {
					t.Errorf("%s: mod revision %d -> %d; want unchanged", k, rev, after[k])
				}
			}
			for k := range after {
				if _, ok := before[k]; !ok {
					t.Errorf("%s written", k)
				}
			}
			if got := e.countUnder(t, "audit/"); got != audit {
				t.Errorf("audit records %d -> %d", audit, got)
			}
			if h := e.regionHealth(t, konza); !h.GetHealthy() || !h.GetAgentLive() || h.GetAgent() != "konza-agent" {
				t.Errorf("victim region health %v; want healthy, its own agent live", h)
			}
			p, err := e.place.Get(ctx(t), &pb.GetRequest{Id: "kenya-1"})
			if err != nil || p.GetPlacement().GetAssignments()[0].GetState() != pb.ReplicaState_REPLICA_STATE_PENDING {
				t.Errorf("victim placement %v, %v; want its replica pending", p, err)
			}
			// The victim's session is untouched and still works.
			victim.send(report(konza, true, "still mine", plenty))
			eventually(t, "the victim still reports", func() bool {
				l, _ := e.store.RegionAgent(konza)
				return l != nil && l.Detail == "still mine"
			})
		})
	}
}

func TestAgentSecondAgentRefused(t *testing.T) {
	e := newEnv(t)
	first, w := e.connect(t, konza, "agent-a")
	check := e.unchanged(t)
	b := e.open(t, hello(konza, "agent-b"))
	st := b.ended(5 * time.Second)
	if st.Code() != codes.AlreadyExists || !strings.Contains(st.Message(), `agent "agent-a" is connected`) {
		t.Fatalf("second agent: %v %q; want AlreadyExists naming agent-a", st.Code(), st.Message())
	}
	wantReason(t, st, "AGENT_CONNECTED")
	check()
	if l, _ := e.store.RegionAgent(konza); l == nil || l.Agent != "agent-a" || l.Lease != w.GetLeaseId() {
		t.Errorf("live session %+v; want agent-a's on lease %d", l, w.GetLeaseId())
	}
	first.send(report(konza, true, "", plenty))
	eventually(t, "the first agent still reports", func() bool { return e.regionHealth(t, konza).GetLastReport() != nil })
}

func TestAgentBadInput(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name  string
		msgs  []*pb.ConnectRequest
		code  codes.Code
		field string
	}{
		{"report before hello", []*pb.ConnectRequest{report(konza, true, "", plenty)}, codes.InvalidArgument, "hello"},
		{"empty first message", []*pb.ConnectRequest{{}}, codes.InvalidArgument, "hello"},
		{"no region", []*pb.ConnectRequest{hello("", "a")}, codes.InvalidArgument, "hello.region"},
		{"no agent id", []*pb.ConnectRequest{hello(konza, "")}, codes.InvalidArgument, "hello.agent_id"},
		{"unknown region", []*pb.ConnectRequest{hello("aws/no-such-region", "a")}, codes.NotFound, ""},
		{"second hello", []*pb.ConnectRequest{hello(konza, "a"), hello(konza, "a")}, codes.InvalidArgument, "hello"},
		{"empty message", []*pb.ConnectRequest{hello(konza, "a"), {}}, codes.InvalidArgument, "msg"},
		{"negative free", []*pb.ConnectRequest{hello(konza, "a"), report(konza, true, "", &pb.Resources{MilliCpu: -1})}, codes.InvalidArgument, "report.free.milli_cpu"},
		{"no free", []*pb.ConnectRequest{hello(konza, "a"), report(konza, true, "", nil)}, codes.InvalidArgument, "report.free"},
		{"long detail", []*pb.ConnectRequest{hello(konza, "a"), report(konza, false, strings.Repeat("x", 2000), plenty)}, codes.InvalidArgument, "report.detail"},
		{"ack pending", []*pb.ConnectRequest{hello(konza, "a"), ack(konza, "p", pb.ReplicaState_REPLICA_STATE_PENDING)}, codes.InvalidArgument, "ack.state"},
		{"ack unspecified", []*pb.ConnectRequest{hello(konza, "a"), ack(konza, "p", pb.ReplicaState_REPLICA_STATE_UNSPECIFIED)}, codes.InvalidArgument, "ack.state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := e.unchanged(t)
			a := e.open(t, tc.msgs[0])
			for _, m := range tc.msgs[1:] {
				a.send(m)
			}
			st := a.ended(5 * time.Second)
			if st.Code() != tc.code {
				t.Fatalf("got %v %q; want %v", st.Code(), st.Message(), tc.code)
			}
			if tc.field != "" {
				wantField(t, st.Err(), tc.field)
			}
			check()
			eventually(t, "no agent records in the cache", func() bool {
				l, h := e.store.RegionAgent(konza)
				return l == nil && h == nil
			})
		})
	}
}

// An agent that stops reporting loses its session after the TTL: the
// stream ends UNAVAILABLE, and the live record is gone.
func TestAgentSilentSessionUnavailable(t *testing.T) {
	e := newEnv(t)
	a, _ := e.connect(t, konza, "konza-agent")
	start := time.Now()
	st := a.ended(agentTTL + 3*time.Second)
	if st.Code() != codes.Unavailable {
		t.Fatalf("silent agent's stream ended with %v %q; want Unavailable", st.Code(), st.Message())
	}
	if d := time.Since(start); d < agentTTL-200*time.Millisecond {
		t.Errorf("ended after %v; want no sooner than the TTL %v", d, agentTTL)
	}
	wantReason(t, st, "STATE_UNAVAILABLE")
	eventually(t, "the live record goes", func() bool { l, _ := e.store.RegionAgent(konza); return l == nil })
}

// A stopping daemon ends agent streams with UNAVAILABLE, so that the
// agents reconnect elsewhere, and their live records go at once.
func TestAgentStreamEndsWhenDaemonStops(t *testing.T) {
	e := newEnv(t)
	a, _ := e.connect(t, konza, "konza-agent")
	a.send(report(konza, true, "", plenty))
	eventually(t, "the report is in", func() bool { return e.regionHealth(t, konza).GetLastReport() != nil })
	e.srv.StopWatches()
	st := a.ended(5 * time.Second)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "daemon stopping") {
		t.Fatalf("stream ended with %v %q; want Unavailable: daemon stopping", st.Code(), st.Message())
	}
	eventually(t, "the live record goes", func() bool { l, _ := e.store.RegionAgent(konza); return l == nil })
}
