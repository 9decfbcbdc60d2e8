package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
)

// ackingAgent is asAgent's session for konza, kept alive by reports
// sent between its acks (an agent that does not report within the
// session's TTL loses its session).
type ackingAgent struct {
	*agentConn
	reported time.Time
}

// keepAlive reports when the last report is a third of the TTL old.
func (a *ackingAgent) keepAlive() {
	a.tb.Helper()
	if time.Since(a.reported) >= agentTTL/3 {
		a.send(report(konza, true, "ok", plenty))
		a.reported = time.Now()
	}
}

// newAckEnv is newLimitedEnv with agent sessions of a 10 s TTL: a burst
// of ack writes (a thousand etcd writes in a row) holds up the session's
// reports, which on a loaded test machine may take longer than the
// shared env's 2 s TTL; a daemon's TTL is 10 s too.
func newAckEnv(t *testing.T, lim server.IdentityLimits) (*env, *limited) {
	t.Helper()
	obs := &limited{got: make(chan string, 1<<12)}
	e := startEnvWith(t, shared, true, []server.Option{server.WithIdentityLimits(lim), server.WithLimitObserver(obs), server.WithAgentTTL(10 * time.Second)})
	grantMembers(t, e)
	return e, obs
}

// agentStream opens asAgent's session for konza with a context of d and
// returns it once welcomed.
func (e *env) agentStream(t *testing.T, d time.Duration) *ackingAgent {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	c = metadata.AppendToOutgoingContext(c, principalHeader, "spiffe://"+testTrustDomain+asAgent)
	stream, err := e.agents.Connect(c)
	if err != nil {
		t.Fatal(err)
	}
	a := &agentConn{tb: t, stream: stream, in: make(chan *pb.ConnectResponse, 1000), err: make(chan error, 1), cancel: cancel}
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
	k := &ackingAgent{agentConn: a}
	k.keepAlive()
	return k
}

func failedAck(id, detail string) *pb.ConnectRequest {
	return &pb.ConnectRequest{Msg: &pb.ConnectRequest_Ack{Ack: &pb.AgentAck{
		Region: konza, Tenant: "ke-moh", PlacementId: id, State: pb.ReplicaState_REPLICA_STATE_FAILED, Detail: detail}}}
}

// replicaOf reads the konza replica's status of ke-moh's placement id
// from etcd, with the record's version (how many times it was written).
func (e *env) replicaOf(tb testing.TB, id string) (router.ReplicaStatus, int64) {
	tb.Helper()
	resp, err := e.etcd.Get(ctx(tb), e.prefix+"placements/ke-moh/"+id)
	if err != nil || len(resp.Kvs) != 1 {
		tb.Fatalf("placement %s: %v", id, err)
	}
	var p router.Placement
	if err := json.Unmarshal(resp.Kvs[0].Value, &p); err != nil {
		tb.Fatal(err)
	}
	return p.Replica(0), resp.Kvs[0].Version
}

// An agent's FAILED acks are audited within the agent's audit bound
// (the refusals' per-identity limiter); the rest are counted in
// replica-failed-summary entries. Before the fix, 300 acks with a
// changing detail wrote 300 audit entries in 0.75s, which are never
// deleted (adversarial review: TestReviewAgentAckFloodWritesAudit).
func TestAgentAckFloodAuditBounded(t *testing.T) {
	limit := state.DefaultRefusalAuditLimit
	limit.SummaryAfter = 300 * time.Millisecond // the default's rate and burst, a summary soon
	e, _ := newLimitedEnv(t, server.DefaultIdentityLimits, state.WithRefusalAuditLimit(limit))
	e.mustPlace(t, "k1", kenya()) // held by konza
	a := e.agentStream(t, 30*time.Second)
	before := e.countUnder(t, "audit/")
	const flood = 300
	start := time.Now()
	for i := range flood {
		a.send(failedAck("k1", fmt.Sprintf("%d %s", i, strings.Repeat("x", 1000))))
	}
	last := fmt.Sprintf("%d %s", flood-1, strings.Repeat("x", 1000))
	eventually(t, "the last ack is stored", func() bool {
		a.keepAlive()
		r, _ := e.replicaOf(t, "k1")
		return r.Detail == last
	})
	elapsed := time.Since(start)
	var one, counted int64
	var sums []audit.Entry
	for deadline := time.Now().Add(5 * time.Second); ; {
		one, counted, sums = 0, 0, nil
		recs, _, err := e.store.FindAudit(ctx(t), state.AuditFilter{Tenant: "ke-moh", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			switch x := r.Entry; x.Op {
			case audit.OpReplicaFailed:
				one++
			case audit.OpReplicaFailedSummary:
				counted += x.Count
				sums = append(sums, x)
			}
		}
		if one+counted >= flood || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := e.countUnder(t, "audit/") - before
	t.Logf("%d FAILED acks stored in %v: %d audit entries (%d one by one, %d counted in %d summaries)",
		flood, elapsed.Round(time.Millisecond), n, one, counted, len(sums))
	if allowed := int64(limit.Burst) + int64(limit.PerSecond*elapsed.Seconds()) + 1; one > allowed {
		t.Errorf("one agent's %d FAILED acks wrote %d replica-failed entries in %v; want at most %d", flood, one, elapsed, allowed)
	}
	if one+counted != flood {
		t.Errorf("%d failures audited one by one, %d counted; want %d in all", one, counted, flood)
	}
	if n != one+int64(len(sums)) {
		t.Errorf("%d audit entries written; want %d: the failures audited and their summaries", n, one+int64(len(sums)))
	}
	for _, x := range sums {
		if x.Actor != "spiffe://"+testTrustDomain+asAgent || len(x.Regions) != 1 || x.Regions[0] != konza ||
			!strings.Contains(x.Reasons[0], "further acknowledgements of a failed replica by") ||
			x.Reasons[len(x.Reasons)-1] != fmt.Sprintf("placement k1 in %s: %d", konza, x.Count) {
			t.Errorf("summary %+v", x)
		}
	}
}

// Acks that rewrite the placement record are held to the agent's ack
// rate: a flood of RUNNING acks whose detail alternates writes the burst
// and then the rate, the latest ack per placement held back meanwhile
// and written when the rate allows. Before the fix each ack rewrote the
// record (~17 KB), megabytes a second of etcd history kept until the
// hourly compaction (adversarial review: TestReviewAgentAckFloodGrowsEtcd).
func TestAgentAckFloodEtcdBounded(t *testing.T) {
	lim := server.DefaultIdentityLimits
	e, obs := newAckEnv(t, lim)
	var provs []string
	for i := range router.MaxShortListLen { // the most a workload may prefer
		provs = append(provs, fmt.Sprintf("p%062d", i))
	}
	w := kenya()
	w.Preferences = &pb.Preferences{Providers: provs}
	e.mustPlace(t, "k1", w)
	a := e.agentStream(t, 60*time.Second)
	_, v0 := e.replicaOf(t, "k1")
	start := time.Now()
	flood := lim.AgentAcks.Burst + 600 // the burst, and then some
	for i := range flood {
		a.keepAlive()
		a.send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Ack{Ack: &pb.AgentAck{
			Region: konza, Tenant: "ke-moh", PlacementId: "k1", State: pb.ReplicaState_REPLICA_STATE_RUNNING,
			Detail: fmt.Sprint(i % 2)}}})
	}
	// The last ack is held back, not lost: it is written once the rate
	// allows.
	a.send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Ack{Ack: &pb.AgentAck{
		Region: konza, Tenant: "ke-moh", PlacementId: "k1", State: pb.ReplicaState_REPLICA_STATE_RUNNING, Detail: "final"}}})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		a.keepAlive()
		if r, _ := e.replicaOf(t, "k1"); r.Detail == "final" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("after 30s the last ack is still not stored")
		}
	}
	_, v1 := e.replicaOf(t, "k1")
	writes, elapsed := v1-v0, time.Since(start)
	resp, err := e.etcd.Get(ctx(t), e.prefix+"placements/ke-moh/k1")
	if err != nil {
		t.Fatal(err)
	}
	size := len(resp.Kvs[0].Value)
	t.Logf("%d acks: %d rewrites of a %d-byte placement record in %v (%.1f MB of etcd history); sustained beyond the burst: %.2f MB/s",
		flood+1, writes, size, elapsed.Round(time.Millisecond), float64(writes)*float64(size)/1e6, lim.AgentAcks.PerSecond*float64(size)/1e6)
	r := lim.AgentAcks
	if allowed := int64(r.Burst) + int64(r.PerSecond*elapsed.Seconds()) + 1; writes > allowed {
		t.Errorf("one agent's %d acks rewrote the placement %d times in %v; want at most %d", flood+1, writes, elapsed, allowed)
	}
	select {
	case got := <-obs.got:
		if got != "agent_ack" {
			t.Errorf("observer told %q; want agent_ack", got)
		}
	default:
		t.Errorf("observer not told of acks held back")
	}
}

// A legitimate burst: an agent that reconnects to a region of 2,000
// placements it has not acknowledged acknowledges each ACCEPTED then
// RUNNING, as providers/sim does. Beyond the ack rate they are held
// back, an ACCEPTED held replaced by its RUNNING, and every placement is
// stored RUNNING in the end, in about 2,000 writes rather than 4,000.
func TestAgentAckBurstStoredEventually(t *testing.T) {
	lim := server.DefaultIdentityLimits
	lim.AgentAcks = server.Rate{PerSecond: 500, Burst: 200} // the default's shape, quicker
	e, _ := newAckEnv(t, lim)
	const n = 2000
	w := kenya()
	w.Resources = &pb.Resources{MilliCpu: 1, MemoryMib: 1}
	var wg sync.WaitGroup
	ids := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range ids {
				if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: fmt.Sprintf("b%04d", i), Workload: w}); err != nil {
					t.Errorf("Place %d: %v", i, err)
				}
			}
		})
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	a := e.agentStream(t, 60*time.Second)
	start := time.Now()
	for range n {
		a.keepAlive()
		u := a.next().GetAssignment()
		if u.GetAction() != pb.AssignmentAction_ASSIGNMENT_ACTION_RUN {
			t.Fatalf("assignment %v; want a RUN", u)
		}
		for _, st := range []pb.ReplicaState{pb.ReplicaState_REPLICA_STATE_ACCEPTED, pb.ReplicaState_REPLICA_STATE_RUNNING} {
			a.send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Ack{Ack: &pb.AgentAck{
				Region: konza, Tenant: u.GetTenant(), PlacementId: u.GetPlacementId(), State: st, Detail: "simulated"}}})
		}
	}
	sent := time.Since(start)
	// Every placement's record, as etcd holds it.
	scan := func() (running int, writes int64) {
		resp, err := e.etcd.Get(ctx(t), e.prefix+"placements/ke-moh/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			var p router.Placement
			if err := json.Unmarshal(kv.Value, &p); err != nil {
				t.Fatal(err)
			}
			if r := p.Replica(0); r.State == router.ReplicaRunning && r.Detail == "simulated" {
				running++
			}
			writes += kv.Version - 1
		}
		return running, writes
	}
	var running int
	var writes int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		a.keepAlive()
		if running, writes = scan(); running == n || time.Now().After(deadline) {
			break
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d placements, %d acks sent in %v: %d stored running after %v, in %d writes", n, 2*n, sent.Round(time.Millisecond), running, elapsed.Round(time.Millisecond), writes)
	if running != n {
		t.Fatalf("%d of %d placements stored running after %v; want all (held back, not lost)", running, n, elapsed)
	}
	if max := int64(n + 2*lim.AgentAcks.Burst); writes > max {
		t.Errorf("%d ack writes for %d placements; want at most %d (an ACCEPTED held back is replaced by its RUNNING)", writes, n, max)
	}
	// Reconnecting changes nothing more: every ack says what is stored,
	// and costs no write.
	a.stream.CloseSend()
	a.ended(5 * time.Second)
	b := e.agentStream(t, 60*time.Second)
	for range n {
		b.keepAlive()
		u := b.next().GetAssignment()
		b.send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Ack{Ack: &pb.AgentAck{
			Region: konza, Tenant: u.GetTenant(), PlacementId: u.GetPlacementId(), State: pb.ReplicaState_REPLICA_STATE_RUNNING, Detail: "simulated"}}})
	}
	b.send(failedAck("b0000", "probe")) // a write, after all the others
	eventually(t, "the probe is stored", func() bool {
		b.keepAlive()
		r, _ := e.replicaOf(t, "b0000")
		return r.Detail == "probe"
	})
	if _, again := scan(); again != writes+1 {
		t.Errorf("reconnecting and acknowledging what is stored wrote %d times; want none", again-writes-1)
	}
}

// The latest ack of a placement is what is stored, even when it says
// what the record already says while an earlier one is held back: the
// held ack is dropped, not written after it.
func TestAgentAckLatestWins(t *testing.T) {
	lim := server.DefaultIdentityLimits
	lim.AgentAcks = server.Rate{PerSecond: 2, Burst: 1}
	e, _ := newAckEnv(t, lim)
	e.mustPlace(t, "k1", kenya())
	e.mustPlace(t, "k2", kenya())
	a := e.agentStream(t, 30*time.Second)
	running := func(id, detail string) *pb.ConnectRequest {
		return &pb.ConnectRequest{Msg: &pb.ConnectRequest_Ack{Ack: &pb.AgentAck{
			Region: konza, Tenant: "ke-moh", PlacementId: id, State: pb.ReplicaState_REPLICA_STATE_RUNNING, Detail: detail}}}
	}
	a.send(running("k1", "up"))            // the burst: written at once
	a.send(failedAck("k1", "crashed"))     // held back
	a.send(running("k2", "up"))            // held back, behind k1's
	a.send(running("k1", "up"))            // what k1's record says: k1's held FAILED is dropped
	a.send(running("k2", "up, 3 workers")) // replaces k2's held ack
	eventually(t, "k2's latest ack is stored", func() bool {
		a.keepAlive()
		r, _ := e.replicaOf(t, "k2")
		return r.Detail == "up, 3 workers"
	})
	if r, _ := e.replicaOf(t, "k1"); r.State != router.ReplicaRunning || r.Detail != "up" {
		t.Errorf("k1's replica %+v; want running, up (its latest ack)", r)
	}
	if _, v := e.replicaOf(t, "k2"); v != 2 {
		t.Errorf("k2 written %d times; want once (its acks held back were one)", v-1)
	}
	recs, _, err := e.store.FindAudit(ctx(t), state.AuditFilter{Op: audit.OpReplicaFailed})
	if err != nil || len(recs) != 0 {
		t.Errorf("replica-failed entries %v, %v; want none (the FAILED ack was superseded)", recs, err)
	}
}
