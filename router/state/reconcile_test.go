package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/state"
)

// reconcile runs the store's reconciler until the test ends.
func reconcile(tb testing.TB, s *state.Store, cfg state.ReconcilerConfig) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Reconcile(ctx, cfg) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	tb.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds or the timeout passes.
func eventually(tb testing.TB, timeout time.Duration, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not within %v: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storedPlacement is a placement record read straight from etcd.
type storedPlacement struct {
	P         router.Placement
	CreateRev int64
}

func (e *env) placements() map[string]storedPlacement {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), e.prefix+"placements/", clientv3.WithPrefix())
	if err != nil {
		e.tb.Fatal(err)
	}
	out := make(map[string]storedPlacement)
	for _, kv := range resp.Kvs {
		var p router.Placement
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			e.tb.Fatal(err)
		}
		out[p.ID] = storedPlacement{p, kv.CreateRevision}
	}
	return out
}

func (e *env) auditOps() map[string]int {
	e.tb.Helper()
	entries, err := e.store.ListAudit(context.Background(), 10000)
	if err != nil {
		e.tb.Fatal(err)
	}
	n := make(map[string]int)
	for _, a := range entries {
		n[a.Op]++
	}
	return n
}

// checkUsage asserts every region's usage record equals the sum over the
// live placements holding capacity there (replicas and retiring copies).
func (e *env) checkUsage(regions ...string) {
	e.tb.Helper()
	ps := e.placements()
	for _, key := range regions {
		var want router.Resources
		var n int64
		for _, sp := range ps {
			if sp.P.Holds(key) {
				want = want.Add(sp.P.Workload.Resources)
				n++
			}
		}
		got, gotN := e.usage(key)
		if got != want || gotN != n {
			e.tb.Errorf("usage of %s = %+v in %d placements; placements hold %+v in %d", key, got, gotN, want, n)
		}
	}
}

func (e *env) putRegion(r router.Region) int64 {
	e.tb.Helper()
	rev, err := e.store.PutRegion(context.Background(), &r)
	if err != nil {
		e.tb.Fatal(err)
	}
	return rev
}

func (e *env) place(id string, w *router.Workload) *router.Placement {
	e.tb.Helper()
	p, err := e.store.Place(context.Background(), id, w)
	if err != nil {
		e.tb.Fatalf("place %s: %v", id, err)
	}
	return p
}

func TestReconcileMovesReplicasOffADowngradedRegion(t *testing.T) {
	const n = 12
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("w%d", i))
	}
	// Given SECRET replicas in aws/s1, the cheaper of two SECRET regions,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big), commercialRegion("aws", "c1")).
		placedIn("aws/s1", ids...).
		reconciling(state.ReconcilerConfig{Name: "a"})

	// when aws/s1 is downgraded to CUI, every replica there is a violation
	s.whenDowngradedToCUI("aws/s1")

	// then each moves, once, to azure/s2, the only other SECRET region.
	s.thenEventually(10*time.Second, func(ps map[string]storedPlacement) (bool, string) {
		for id, sp := range ps {
			if !slices.Equal(sp.P.Regions, []string{"azure/s2"}) || len(sp.P.Retiring) > 0 || sp.P.State != router.PlacementPlaced {
				return false, fmt.Sprintf("%s: regions %v, retiring %v, state %s", id, sp.P.Regions, sp.P.Retiring, sp.P.State)
			}
		}
		return true, ""
	})
	for id, sp := range s.placements() {
		if sp.P.Moves != 1 {
			t.Errorf("%s moved %d times, want 1", id, sp.P.Moves)
		}
	}
	s.thenUsageExact("aws/s1", "azure/s2")
	s.thenAudit("each replica flagged, re-routed and its old copy retired", map[string]int{audit.OpViolation: n, audit.OpReroute: n, audit.OpRetire: n})
}

func TestReconcileDrainedRegionMovesWithoutViolation(t *testing.T) {
	// Given a placement in aws/s1, the cheaper of two SECRET regions,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		placed("w").
		reconciling(state.ReconcilerConfig{Name: "a"})

	// when aws/s1 is drained,
	s.whenDrained("aws/s1")

	// then the placement moves to azure/s2, and no violation is recorded.
	s.thenPlacement("w", 10*time.Second, placementIn("azure/s2"))
	s.thenAudit("one reroute and no violation: draining is not a violation", map[string]int{audit.OpViolation: 0, audit.OpReroute: 1})
	s.thenUsageExact("aws/s1", "azure/s2")
}

func TestReconcileStrandedThenRecovered(t *testing.T) {
	// Given a placement in aws/s1, the only SECRET region,
	s := given(t).
		regions(secretRegion("aws", "s1", big), commercialRegion("aws", "c1")).
		placed("w").
		reconciling(state.ReconcilerConfig{Name: "a"})

	// when its accreditation is revoked,
	s.whenRevoked("aws/s1")

	// then the placement is a violation, stranded: nowhere else may hold it,
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		if p.State != router.PlacementViolation || len(p.Issues) != 1 {
			return false, fmt.Sprintf("%+v", p)
		}
		is := p.Issues[0]
		return is.Region == "aws/s1" && is.Violation && is.Stranded, fmt.Sprintf("%+v", is)
	})
	// visible to List by state, with the reasons, once the cache has
	// caught up with etcd,
	st := router.PlacementViolation
	var got []*router.Placement
	eventually(t, 10*time.Second, func() (bool, string) {
		page, err := s.store.ListPlacements(state.PlacementFilter{State: &st}, 0, "")
		got = page.Placements
		return err == nil && len(got) == 1 && got[0].ID == "w", fmt.Sprintf("list violations: %v, %v", got, err)
	})
	var codes []router.ReasonCode
	for _, r := range got[0].Issues[0].Reasons {
		codes = append(codes, r.Code)
	}
	if !slices.Contains(codes, router.ReasonAccreditation) || !slices.Contains(codes, router.ReasonStranded) {
		t.Errorf("issue reasons %v: want accreditation and stranded", got[0].Issues[0].Reasons)
	}
	// and never silently moved to a weaker region: it is still where it was.
	if !slices.Equal(got[0].Regions, []string{"aws/s1"}) {
		t.Errorf("regions %v", got[0].Regions)
	}

	// When aws/s1 is accredited again, then the placement recovers where it is.
	s.whenReaccredited("aws/s1")
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		return p.State == router.PlacementPlaced && len(p.Issues) == 0, fmt.Sprintf("%+v", p)
	})
	s.thenAudit("one violation, one stranded, one recovered", map[string]int{audit.OpViolation: 1, audit.OpStranded: 1, audit.OpRecovered: 1})
	s.thenUsageExact("aws/s1")
}

// A region with an agent (a health record) is confirmed only by the
// agent: the old copy keeps running, and its capacity, until then.
func TestReconcileKeepsTheOldCopyUntilTheNewOneRuns(t *testing.T) {
	// Given a placement in aws/s1, and an agent in azure/s2,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		placed("w").
		agentIn("azure/s2").
		reconciling(state.ReconcilerConfig{Name: "a"})

	// when aws/s1 is drained,
	s.whenDrained("aws/s1")

	// then the placement moves to azure/s2,
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		return slices.Equal(p.Regions, []string{"azure/s2"}), fmt.Sprintf("%+v", p)
	})
	// and several passes later the old copy is still there, holding capacity.
	time.Sleep(300 * time.Millisecond)
	p := s.placements()["w"].P
	if len(p.Retiring) != 1 || p.Retiring[0].Region != "aws/s1" || p.Retiring[0].MovedTo != "azure/s2" {
		t.Fatalf("retiring %+v: the old copy must stay until the new one runs", p.Retiring)
	}
	s.thenUsageExact("aws/s1", "azure/s2")
	if used, _ := s.usage("aws/s1"); used != unit {
		t.Fatalf("aws/s1 usage %+v: the retiring copy holds its capacity", used)
	}

	// When the agent acknowledges the new replica running, then the old copy goes.
	p.Replicas = []router.ReplicaStatus{{State: router.ReplicaRunning, At: time.Now().UTC()}}
	s.putJSON("placements/us-army/w", p)
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		return len(p.Retiring) == 0, fmt.Sprintf("%+v", p.Retiring)
	})
	s.thenUsageExact("aws/s1", "azure/s2")
}

// A paused former leader cannot write: its fence (the create revision of
// its election key) no longer holds once another daemon leads.
func TestReconcilerFencedAfterLosingLeadership(t *testing.T) {
	ctx := context.Background()
	// Given a placement in aws/s1, the cheaper of two SECRET regions, a
	// second daemon b, and a, which led and has stopped,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		placed("w")
	b := s.open(s.other)
	s.reconciling(state.ReconcilerConfig{Name: "a"}).leading()
	oldKey, oldRev, err := s.store.LeaderKey(ctx)
	if err != nil || oldRev == 0 {
		t.Fatalf("leader key: %q %d %v", oldKey, oldRev, err)
	}
	s.stopReconciling()
	// and a new leader (the test, holding the election) that does not act,
	el := s.newLeader()
	if el.Rev() == oldRev {
		t.Fatal("the new leader has a's fence")
	}

	// when aws/s1 is drained, and a, which thinks it still leads, runs a
	// pass with its old fence,
	s.whenDrained("aws/s1")
	waitFor(t, b, s.rev) // b decides on it below
	before := s.placements()["w"]
	opsBefore := s.auditOps()
	if err := s.store.PassAs(ctx, oldKey, oldRev, state.ReconcilerConfig{Name: "a"}); err != nil {
		t.Logf("fenced pass: %v", err)
	}

	// then a has written nothing: the placement has not moved, and no
	// reroute is on the record;
	after := s.placements()["w"]
	if after.P.Moves != before.P.Moves || !slices.Equal(after.P.Regions, before.P.Regions) {
		t.Fatalf("the former leader moved the placement: %v -> %v", before.P.Regions, after.P.Regions)
	}
	if ops := s.auditOps(); ops[audit.OpReroute] != opsBefore[audit.OpReroute] {
		t.Fatalf("the former leader wrote audit entries: %v", ops)
	}
	// and the same pass under the current leader's fence moves it.
	if err := b.PassAs(ctx, el.Key(), el.Rev(), state.ReconcilerConfig{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if p := s.placements()["w"].P; !slices.Equal(p.Regions, []string{"azure/s2"}) {
		t.Fatalf("the leader did not move it: %v", p.Regions)
	}
}

// A region with an agent that has had no live agent for the grace period
// is marked unhealthy, and its placements move.
func TestReconcileMarksRegionWithoutLiveAgentUnhealthy(t *testing.T) {
	// Given a placement in aws/s1, which had an agent (a health record)
	// that is gone (no live record),
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		placed("w").
		agentIn("aws/s1")

	// when the reconciler runs past the agents' grace period,
	start := time.Now()
	s.reconciling(state.ReconcilerConfig{Name: "a", AgentGrace: 500 * time.Millisecond})

	// then aws/s1 is marked unhealthy, no sooner, saying why,
	eventually(t, 10*time.Second, func() (bool, string) {
		_, h := s.store.RegionAgent("aws/s1")
		return h != nil && !h.Healthy, fmt.Sprintf("health %+v", h)
	})
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("marked unhealthy after %v, before the grace period", d)
	}
	_, h := s.store.RegionAgent("aws/s1")
	if !strings.Contains(h.Reason, "no live agent") || h.Agent != "agent-s1" {
		t.Errorf("health %+v", h)
	}
	// its placement moves, and no new one may go there.
	s.thenPlacement("w", 10*time.Second, placementIn("azure/s2"))
	plan, err := s.store.Plan(context.Background(), secretWorkload(t, "x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range plan.Regions {
		if v.Key == "aws/s1" && (v.Eligible || v.Reasons[0].Code != router.ReasonHealth) {
			t.Errorf("aws/s1 verdict %+v: want refused for health", v)
		}
	}
	// A region that never had an agent is not held to the grace period.
	if _, h := s.store.RegionAgent("azure/s2"); h != nil {
		t.Errorf("azure/s2 got a health record %+v", h)
	}
}

// An accreditation downgrade during 1,000 concurrent placements into the
// region: no placement commits there after the downgrade's revision.
func TestDowngradeDuringConcurrentPlacements(t *testing.T) {
	const n = 1000
	// Given aws/s1, the only SECRET region,
	s := given(t).
		regions(secretRegion("aws", "s1", big), commercialRegion("aws", "c1"))

	// when n placements into it start at once, and once 200 have
	// committed aws/s1 is downgraded to UNCLASSIFIED on the internet,
	var placed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			id := fmt.Sprintf("w%d", i)
			if _, err := s.store.Place(context.Background(), id, secretWorkload(t, id)); err == nil {
				placed.Add(1)
			}
		})
	}
	close(start)
	for placed.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	s.whenRegion("aws/s1", func(r *router.Region) {
		r.Accreditation.MaxLevel = label.Unclassified
		r.NetworkDomain = router.DomainInternet
	})
	downRev := s.rev
	wg.Wait()

	// then no placement committed after the downgrade's revision, which
	// landed mid-way,
	var before, after int
	for id, sp := range s.placements() {
		if sp.CreateRev > downRev {
			after++
			t.Errorf("%s committed at revision %d in %v, after the downgrade at %d", id, sp.CreateRev, sp.P.Regions, downRev)
		} else {
			before++
		}
	}
	if before < 200 || before == n {
		t.Fatalf("%d placements before the downgrade: the downgrade did not land mid-way", before)
	}
	t.Logf("%d placed before the downgrade at revision %d, %d refused after", before, downRev, n-before)
	// and the usage of aws/s1 is exact.
	s.thenUsageExact("aws/s1")
}

// A leader killed mid-reconcile: another daemon takes over and finishes;
// no placement is lost and usage stays exact.
func TestReconcilerKilledMidwayIsTakenOver(t *testing.T) {
	const n = 30
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("w%d", i))
	}
	// Given placements in aws/s1, the cheaper of two SECRET regions, a
	// leader a that moves one replica every 30ms, on an etcd client of its
	// own, and b standing by,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		placed(ids...)
	killA := s.killableLeader(state.ReconcilerConfig{Name: "a", MoveEvery: 30 * time.Millisecond, SessionTTL: time.Second})
	b := s.standby(state.ReconcilerConfig{Name: "b", SessionTTL: time.Second})

	// when aws/s1 is drained, and a is killed once 5 have moved (no
	// resignation: its session lease expires),
	s.whenDrained("aws/s1")
	eventually(t, 10*time.Second, func() (bool, string) { return s.moved() >= 5, "fewer than 5 moved" })
	killA()
	if k := s.moved(); k == n {
		t.Fatal("a finished before it was killed")
	}

	// then b takes over and finishes: every placement in azure/s2, none
	// lost, each moved once, and usage exact.
	s.thenEventually(15*time.Second, func(ps map[string]storedPlacement) (bool, string) {
		for id, sp := range ps {
			if !slices.Equal(sp.P.Regions, []string{"azure/s2"}) || len(sp.P.Retiring) > 0 {
				return false, fmt.Sprintf("%s: %v retiring %v", id, sp.P.Regions, sp.P.Retiring)
			}
		}
		return true, ""
	})
	if !b.Leading() {
		t.Error("b does not lead")
	}
	if ps := s.placements(); len(ps) != n {
		t.Fatalf("%d placements, want %d", len(ps), n)
	}
	s.thenEachMovedOnce()
	s.thenUsageExact("aws/s1", "azure/s2")
}

// An authority to operate expires with no write to etcd: the reconciler's
// timer finds it, flags the violation and moves the replica.
func TestReconcileMovesReplicasWhenAccreditationExpires(t *testing.T) {
	// Given a placement in aws/s1, whose accreditation ends in 1.5s,
	s := given(t)
	expiring := cheaper(secretRegion("aws", "s1", big))
	expiring.Accreditation.Expires = time.Now().Add(1500 * time.Millisecond).UTC()
	s.regions(expiring, secretRegion("azure", "s2", big)).
		placedIn("aws/s1", "w").
		reconciling(state.ReconcilerConfig{Name: "a", Interval: 100 * time.Millisecond})
	time.Sleep(500 * time.Millisecond)
	if p := s.placements()["w"].P; p.Moves != 0 {
		t.Fatalf("moved before the accreditation expired: %+v", p)
	}

	// when it ends, with no write to etcd,
	// then the expiry is flagged as a violation and the replica moves.
	s.thenPlacement("w", 10*time.Second, placementIn("azure/s2"))
	s.thenAudit("the expiry flagged as a violation, then the move", map[string]int{audit.OpViolation: 1, audit.OpReroute: 1})
	s.thenUsageExact("aws/s1", "azure/s2")
}

// A copy already leaving a region (waiting for its replacement to run)
// whose region is then downgraded makes the placement a violation, on
// the record in the audit trail, though the copy is not moved twice.
func TestRetiringCopyInADowngradedRegionIsAViolation(t *testing.T) {
	// Given a placement leaving drained aws/s1 for azure/s2, whose agent
	// has not yet said the new replica runs,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		placed("w").
		agentIn("azure/s2").
		reconciling(state.ReconcilerConfig{Name: "a"})
	s.whenDrained("aws/s1")
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		return len(p.Retiring) == 1, fmt.Sprintf("%+v", p)
	})
	if ops := s.auditOps(); ops[audit.OpViolation] != 0 {
		t.Fatalf("a drain flagged a violation: %v", ops)
	}

	// when aws/s1's accreditation is revoked,
	s.whenRevoked("aws/s1")

	// then the placement is a violation, on the record, and its leaving
	// copy is not moved again.
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		return p.State == router.PlacementViolation, fmt.Sprintf("%+v", p)
	})
	eventually(t, 5*time.Second, func() (bool, string) {
		ops := s.auditOps()
		return ops[audit.OpViolation] == 1, fmt.Sprintf("%v", ops)
	})
	if p := s.placements()["w"].P; p.Moves != 1 || len(p.Retiring) != 1 {
		t.Fatalf("%+v: the leaving copy must stay until its replacement runs, and not move again", p)
	}
}

// A tenant whose ceiling is lowered below a placed workload's label may
// hold it nowhere: flagged a violation at once, stranded, never moved.
func TestLoweredCeilingFlagsPlacements(t *testing.T) {
	// The regions stay within the lowered ceiling's level (SECRET): only
	// the workload's SI compartment is above it.
	si := func(r router.Region) router.Region {
		r.Accreditation.Controls = []string{"SI"}
		r.Personnel = router.PersonnelClearedTopSecret
		return r
	}
	w := secretWorkload(t, "w")
	w.Banner = "SECRET//SI//NOFORN"
	if err := router.ValidateWorkload(w, "US"); err != nil {
		t.Fatal(err)
	}
	// Given a SECRET//SI placement, in one of two regions that may hold SI,
	s := given(t).
		regions(si(secretRegion("aws", "s1", big)), si(secretRegion("azure", "s2", big))).
		placedAs("w", w).
		reconciling(state.ReconcilerConfig{Name: "a"})

	// when its tenant's ceiling is lowered to SECRET//NOFORN,
	lowered := army()
	lowered.Ceiling = "SECRET//NOFORN"
	s.whenTenant(lowered)

	// then the placement is a violation for the tenant's policy, stranded,
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		if p.State != router.PlacementViolation || len(p.Issues) != 1 || !p.Issues[0].Stranded {
			return false, fmt.Sprintf("%+v", p)
		}
		return p.Issues[0].Reasons[0].Code == router.ReasonPolicy, fmt.Sprintf("%+v", p.Issues[0])
	})
	// never moved, and the violation is on the record.
	if p := s.placements()["w"].P; p.Moves != 0 {
		t.Fatalf("moved: %+v", p)
	}
	s.thenAudit("the violation recorded", map[string]int{audit.OpViolation: 1})
}

// writePlacements writes live placements of secretWorkload straight to
// etcd, as many as counts says for each "tenant region" (one replica
// each, ids "<tenant>-<region>-<i>"), sets the usage of each region to
// what they hold, and waits for the store's cache to hold them.
func (e *env) writePlacements(counts map[string]int) {
	e.tb.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := e.other.Txn(ctx).Then(ops...).Commit(); err != nil {
			e.tb.Fatal(err)
		}
		ops = ops[:0]
	}
	held := make(map[string]int64)
	for spec, n := range counts {
		tenant, region, _ := strings.Cut(spec, " ")
		w := secretWorkload(e.tb, "w")
		w.Tenant = tenant
		for i := range n {
			id := fmt.Sprintf("%s-%s-%d", tenant, strings.ReplaceAll(region, "/", "-"), i)
			p := router.Placement{ID: id, Tenant: tenant, Workload: *w, Regions: []string{region}, Scores: []float64{1},
				State: router.PlacementPlaced, DecidedAt: 1, CreatedAt: now}
			v, err := json.Marshal(&p)
			if err != nil {
				e.tb.Fatal(err)
			}
			ops = append(ops, clientv3.OpPut(e.prefix+"placements/"+tenant+"/"+id, string(v)))
			if len(ops) == 100 {
				flush()
			}
		}
		held[region] += int64(n)
	}
	for region, n := range held {
		v, err := json.Marshal(map[string]any{"used": router.Resources{MilliCPU: unit.MilliCPU * n, MemoryMiB: unit.MemoryMiB * n}, "placements": n})
		if err != nil {
			e.tb.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(e.prefix+"usage/"+region, string(v)))
	}
	flush()
	resp, err := e.other.Get(ctx, "x")
	if err != nil {
		e.tb.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := e.store.WaitFor(wctx, resp.Header.Revision); err != nil {
		e.tb.Fatal(err)
	}
}

// countingEngine is the engine, counting its rechecks: how many
// replicas the reconciler looked at.
type countingEngine struct {
	*router.Engine
	rechecks atomic.Int64
	mu       sync.Mutex
	byName   map[string]int // rechecks by workload name
}

func (c *countingEngine) Recheck(in router.Input, idx int) ([]router.Reason, bool) {
	c.rechecks.Add(1)
	c.mu.Lock()
	if c.byName == nil {
		c.byName = map[string]int{}
	}
	c.byName[in.Workload.Name]++
	c.mu.Unlock()
	return c.Engine.Recheck(in, idx)
}

// of is how many replicas of workloads named name were rechecked.
func (c *countingEngine) of(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byName[name]
}

// openCounting opens the env's store anew on a counting engine (the
// env's first store is closed).
func (e *env) openCounting() *countingEngine {
	e.tb.Helper()
	ce := &countingEngine{Engine: router.NewEngine()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := state.Open(ctx, e.cli, ce, state.WithPrefix(e.prefix), state.WithLogger(slog.New(e.logs)))
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(func() { s.Close() })
	e.store.Close()
	e.store = s
	return ce
}

// settled waits until the count has not moved for half a second, and
// returns it; after 5 seconds it returns what it has (a count that never
// settles fails the caller's comparison).
func settled(tb testing.TB, c *atomic.Int64) int64 {
	tb.Helper()
	last := c.Load()
	deadline := time.Now().Add(5 * time.Second)
	for still := 0; still < 5 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if n := c.Load(); n != last {
			last, still = n, 0
			continue
		}
		still++
	}
	return last
}

// The reconciler looks at what a change can affect, and at nothing at
// rest: no pass over every placement on a clock.
func TestReconcilerWorksOnChange(t *testing.T) {
	// Given 1,110 placements of two tenants in two regions, and a
	// reconciler whose first sweep has looked at them all,
	s := given(t).
		tenants(navy()).
		regions(secretRegion("aws", "s1", big), secretRegion("azure", "s2", big)).
		countingRechecks().
		rawPlacements(map[string]int{"us-army aws/s1": 1000, "us-army azure/s2": 10, "us-navy aws/s1": 100}).
		reconciling(state.ReconcilerConfig{Name: "a", Interval: 100 * time.Millisecond, Audit: state.AuditChainConfig{Disabled: true}})
	eventually(t, 10*time.Second, func() (bool, string) {
		return s.rechecked() >= 1110, fmt.Sprintf("%d rechecked by the first sweep", s.rechecked())
	})

	// When nothing changes, or when each of these does, then the
	// reconciler rechecks only the replicas the change can affect.
	s.thenRechecksOnly(0, "at rest", func() { time.Sleep(2500 * time.Millisecond) })
	s.thenRechecksOnly(10, "a region's record changed", func() {
		s.whenRegion("azure/s2", func(r *router.Region) { r.Cost = 0.9 })
		s.cached()
	})
	renamed := navy()
	renamed.Name = "Department of the Navy"
	renamed.MaxPlacements = 5000
	s.thenRechecksOnly(0, "a tenant's name and cap changed", func() { s.whenTenant(renamed) })
	restricted := renamed
	restricted.AllowedProviders = []string{"aws", "azure"}
	s.thenRechecksOnly(100, "a tenant's policy changed", func() { s.whenTenant(restricted) })
	s.thenRechecksOnly(0, "a placement into a region", func() { s.placed("new") })
	s.thenRechecksOnly(0, "a release", func() { s.whenReleased("us-army", "new") })
}

// An authority to operate expires with no write to etcd: the reconciler
// wakes for it, and flags the placement within a second of its end,
// with no pass on a clock (Interval is an hour here).
func TestReconcilerCatchesExpiryWithNoWrite(t *testing.T) {
	// Given a placement in aws/s1, whose accreditation ends in a second,
	// and a leading reconciler with no pass on a clock,
	s := given(t)
	expires := time.Now().Add(time.Second).UTC()
	expiring := cheaper(secretRegion("aws", "s1", big))
	expiring.Accreditation.Expires = expires
	s.regions(expiring, secretRegion("azure", "s2", big)).
		placedIn("aws/s1", "w").
		reconciling(state.ReconcilerConfig{Name: "a", Interval: time.Hour, Audit: state.AuditChainConfig{Disabled: true}, AuditIndexDisabled: true}).
		leading()
	rev := s.store.Revision() // no write from here on but the reconciler's

	// when it ends, with no write to etcd,
	// then the placement is flagged within a second after, at the
	// revision it was at,
	flag := s.firstAudit(audit.OpViolation, time.Until(expires)+2*time.Second)
	if late := flag.Time.Sub(expires); late < 0 || late > time.Second {
		t.Errorf("flagged at %v, %v after the expiry at %v: want within a second after", flag.Time, late, expires)
	}
	if flag.Revision != rev {
		t.Errorf("the flag read revision %d; want %d (no write between)", flag.Revision, rev)
	}
	// and its replica moves.
	s.thenPlacement("w", 5*time.Second, placementIn("azure/s2"))
	s.thenUsageExact("aws/s1", "azure/s2")
}

// A record no change points at (written behind the store's back into a
// drained region, as a daemon of another version might) is caught by
// the safety-net sweep, which looks at no more than its rate a second.
func TestReconcileSweepCatchesWhatNoChangeSays(t *testing.T) {
	const every = 3 * time.Second
	// Given 3000 placements in azure/s2, a drained aws/s1, and a
	// reconciler sweeping every 3s whose first sweep has looked at them,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		countingRechecks().
		rawPlacements(map[string]int{"us-army azure/s2": 3000}).
		drained("aws/s1")
	start := time.Now()
	s.reconciling(state.ReconcilerConfig{Name: "a", SweepEvery: every, Audit: state.AuditChainConfig{Disabled: true}})
	eventually(t, 5*time.Second, func() (bool, string) {
		return s.rechecked() >= 3000, fmt.Sprintf("%d rechecked by the first sweep", s.rechecked())
	})

	// when a placement is written into the drained region behind the
	// store's back (its write touches a placement that needs nothing, as
	// far as it says),
	stray := router.Placement{ID: "stray", Tenant: "us-army", Workload: *secretWorkload(t, "stray"), Regions: []string{"aws/s1"},
		Scores: []float64{1}, State: router.PlacementPlaced, DecidedAt: 1, CreatedAt: time.Now().UTC()}
	u, _ := json.Marshal(map[string]any{"used": unit, "placements": 1})
	s.rawRecord("placements/us-army/stray", stray).cached().
		rawRecord("usage/aws/s1", json.RawMessage(u)).cached()

	// then the next sweep, every after the first began, finds it and
	// moves it: the change path did not look (its move is no earlier),
	s.thenPlacement("stray", every+5*time.Second, placementIn("azure/s2"))
	for _, at := range s.auditTimes(audit.OpReroute, 100) {
		if at.Before(start.Add(every)) {
			t.Errorf("moved at %v, %v after the term began: before the sweep", at, at.Sub(start))
		}
	}
	s.thenUsageExact("aws/s1")
	// at its rate: 3001 placements take three seconds at least.
	before := s.rechecked()
	time.Sleep(time.Second)
	if n := s.rechecked() - before; n > 1500 {
		t.Errorf("the sweep rechecked %d replicas in a second; want at most its rate (1000), with slack", n)
	}
}

// With MoveEvery, the moves off a drained region are spaced.
func TestReconcileMovesArePaced(t *testing.T) {
	const n = 5
	const every = 300 * time.Millisecond
	// Given placements in aws/s1, the cheaper of two SECRET regions, and
	// a reconciler that moves one replica every 300ms,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		placed("w0", "w1", "w2", "w3", "w4").
		reconciling(state.ReconcilerConfig{Name: "a", MoveEvery: every, Audit: state.AuditChainConfig{Disabled: true}})

	// when aws/s1 is drained,
	s.whenDrained("aws/s1")

	// then every placement moves to azure/s2,
	s.thenEventually(10*time.Second, func(ps map[string]storedPlacement) (bool, string) {
		for id, sp := range ps {
			if !slices.Equal(sp.P.Regions, []string{"azure/s2"}) || len(sp.P.Retiring) > 0 {
				return false, fmt.Sprintf("%s: %v retiring %v", id, sp.P.Regions, sp.P.Retiring)
			}
		}
		return true, ""
	})
	// once each, and no two moves closer than every apart.
	moves := s.auditTimes(audit.OpReroute, 1000)
	if len(moves) != n {
		t.Fatalf("%d moves, want %d", len(moves), n)
	}
	for i := 1; i < n; i++ {
		if gap := moves[i].Sub(moves[i-1]); gap < every {
			t.Errorf("moves %d and %d %v apart; want at least %v", i-1, i, gap, every)
		}
	}
	s.thenUsageExact("aws/s1", "azure/s2")
}

// The cache is re-listed (its watch fell behind a compaction): the feed
// cannot say what changed, and the reconciler starts again from
// everything.
func TestReconcilerStartsAgainAfterRelisting(t *testing.T) {
	// Given a placement in aws/s1, on a member of the test's own (it is
	// compacted), and a leading reconciler past its first sweep,
	s := givenOwnMember(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		placed("w").
		reconciling(state.ReconcilerConfig{Name: "a", Audit: state.AuditChainConfig{Disabled: true}}).
		leading()
	time.Sleep(200 * time.Millisecond) // the first sweep

	// when, while the cache's watch is down, aws/s1 is drained behind the
	// store's back and the drain's revision is compacted away,
	drained := s.catalog["aws/s1"]
	drained.Status = router.StatusDraining
	s.whileWatchDown(func() {
		s.rawRecord("regions/aws/s1", &drained).
			rawRecord("providers/gcp", json.RawMessage(`{"id":"gcp","name":"GCP","jurisdiction":"USA"}`)). // a later write
			compacted()
	})

	// then the store re-lists, and the placement moves to azure/s2.
	s.thenPlacement("w", 10*time.Second, placementIn("azure/s2"))
	if !strings.Contains(s.logs.String(), "re-listing") {
		t.Errorf("the store did not re-list:\n%s", s.logs)
	}
	s.thenUsageExact("aws/s1", "azure/s2")
}

// countAudit counts the audit entries of each op.
func (e *env) countAudit() map[string]int {
	e.tb.Helper()
	entries, err := e.store.ListAudit(context.Background(), 100000)
	if err != nil {
		e.tb.Fatal(err)
	}
	n := map[string]int{}
	for _, a := range entries {
		n[a.Op]++
	}
	return n
}

// allIn reports whether every placement holds exactly region, with no
// retiring copy.
func (e *env) allIn(region string) (bool, string) {
	for id, sp := range e.placements() {
		if !slices.Equal(sp.P.Regions, []string{region}) || len(sp.P.Retiring) > 0 || sp.P.State != router.PlacementPlaced {
			return false, fmt.Sprintf("%s: %s in %v retiring %v", id, sp.P.State, sp.P.Regions, sp.P.Retiring)
		}
	}
	return true, ""
}

// A drained region's placements leave it in batches: a transaction
// carries dozens of moves (or retirements), each make-before-break, and
// the usage of both regions stays exact.
func TestReconcileDrainMovesInBatches(t *testing.T) {
	const n = 1000
	// Given n placements in aws/s1, the cheaper of two SECRET regions,
	// and a leading reconciler past its first sweep,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		rawPlacements(map[string]int{"us-army aws/s1": n}).
		reconciling(state.ReconcilerConfig{Name: "a", Audit: state.AuditChainConfig{Disabled: true}}).
		leading()
	time.Sleep(500 * time.Millisecond) // the first sweep
	rev := s.store.Revision()

	// when aws/s1 is drained,
	s.whenDrained("aws/s1")

	// then every placement moves to azure/s2, once, without violation,
	s.thenAllIn("azure/s2", time.Minute)
	// in batches: one move and one retirement a placement is 2n writes;
	// alone, each is a transaction (a revision), in batches at most 2n/20.
	s.thenRevisionsSince(rev, 2*n/20, "the drain", n)
	s.thenAudit("a reroute and a retirement for each placement, no violation", map[string]int{audit.OpReroute: n, audit.OpRetire: n, audit.OpViolation: 0})
	s.thenEachMovedOnce()
	s.thenUsageExact("aws/s1", "azure/s2")
}

// A batch never takes more of a region than it has: each decision sees
// what the moves before it in the batch took. Half the placements fit
// in the region they may move to; the rest are stranded.
func TestReconcileBatchTakesNoMoreThanARegionHas(t *testing.T) {
	const n, room = 200, 100
	small := router.Resources{MilliCPU: room * unit.MilliCPU, MemoryMiB: room * unit.MemoryMiB}
	// Given n placements in aws/s1, and azure/s2 with room for half,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", small)).
		rawPlacements(map[string]int{"us-army aws/s1": n}).
		reconciling(state.ReconcilerConfig{Name: "a", Audit: state.AuditChainConfig{Disabled: true}}).
		leading()

	// when aws/s1 is drained,
	s.whenDrained("aws/s1")

	// then as many move as azure/s2 has room for, and the rest are stranded,
	s.thenEventually(time.Minute, func(ps map[string]storedPlacement) (bool, string) {
		moved, stranded := 0, 0
		for _, sp := range ps {
			switch {
			case slices.Equal(sp.P.Regions, []string{"azure/s2"}) && len(sp.P.Retiring) == 0:
				moved++
			case sp.P.State == router.PlacementStranded:
				stranded++
			}
		}
		return moved == room && stranded == n-room, fmt.Sprintf("%d moved, %d stranded", moved, stranded)
	})
	// filling azure/s2 exactly.
	if used, _ := s.usage("azure/s2"); used != small {
		t.Errorf("azure/s2 uses %v of %v", used, small)
	}
	s.thenUsageExact("aws/s1", "azure/s2")
}

// A region with nowhere for its placements to go strands them all, in
// batches; when it comes back they recover, in batches too.
func TestReconcileStrandsAndRecoversInBatches(t *testing.T) {
	const n = 1000
	all := func(st router.PlacementState) func(map[string]storedPlacement) (bool, string) {
		return func(ps map[string]storedPlacement) (bool, string) {
			for id, sp := range ps {
				if sp.P.State != st || !slices.Equal(sp.P.Regions, []string{"aws/s1"}) {
					return false, fmt.Sprintf("%s: %s in %v", id, sp.P.State, sp.P.Regions)
				}
			}
			return true, ""
		}
	}
	// Given n placements in aws/s1, the only region, and a leading
	// reconciler past its first sweep,
	s := given(t).
		regions(secretRegion("aws", "s1", big)).
		rawPlacements(map[string]int{"us-army aws/s1": n}).
		reconciling(state.ReconcilerConfig{Name: "a", Audit: state.AuditChainConfig{Disabled: true}}).
		leading()
	time.Sleep(500 * time.Millisecond) // the first sweep

	// when aws/s1 is drained, then every placement is stranded where it is, in batches;
	rev := s.store.Revision()
	s.whenDrained("aws/s1")
	s.thenEventually(time.Minute, all(router.PlacementStranded))
	s.thenRevisionsSince(rev, n/20, "stranding", n)

	// when it is back in service, then every placement recovers, in batches too.
	rev = s.store.Revision()
	s.whenActive("aws/s1")
	s.thenEventually(time.Minute, all(router.PlacementPlaced))
	s.thenRevisionsSince(rev, n/20, "recovering", n)
	s.thenAudit("each placement stranded and recovered", map[string]int{audit.OpStranded: n, audit.OpRecovered: n})
	s.thenUsageExact("aws/s1")
}

// A bulk move interrupted by killing the leading daemon part-way: the
// next leader finishes it; no copy is lost, none is moved twice, and the
// usage of both regions is exact.
func TestBulkMoveInterruptedByKillingTheLeader(t *testing.T) {
	const n = 3000
	// Given n placements in aws/s1, the cheaper of two SECRET regions, a
	// leader a on an etcd client of its own, past its first sweep, and b
	// standing by,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		rawPlacements(map[string]int{"us-army aws/s1": n})
	killA := s.killableLeader(state.ReconcilerConfig{Name: "a", SessionTTL: time.Second, Audit: state.AuditChainConfig{Disabled: true}})
	b := s.standby(state.ReconcilerConfig{Name: "b", SessionTTL: time.Second, Audit: state.AuditChainConfig{Disabled: true}})
	time.Sleep(500 * time.Millisecond) // a's first sweep

	// when aws/s1 is drained, and a dies once a tenth have moved, a batch
	// perhaps in flight (no resignation),
	s.whenDrained("aws/s1")
	eventually(t, time.Minute, func() (bool, string) { return s.moved() >= n/10, fmt.Sprintf("%d moved", s.moved()) })
	killA()
	if k := s.moved(); k == n {
		t.Fatal("a finished before it was killed")
	} else {
		t.Logf("a killed with %d of %d moved", k, n)
	}

	// then b finishes it: every placement in azure/s2, none lost, none
	// moved twice, and usage exact.
	s.thenAllIn("azure/s2", 2*time.Minute)
	if !b.Leading() {
		t.Error("b does not lead")
	}
	if ps := s.placements(); len(ps) != n {
		t.Fatalf("%d placements, want %d", len(ps), n)
	}
	s.thenEachMovedOnce()
	s.thenUsageExact("aws/s1", "azure/s2")
	s.thenAudit("a reroute and a retirement for each placement", map[string]int{audit.OpReroute: n, audit.OpRetire: n})
}
