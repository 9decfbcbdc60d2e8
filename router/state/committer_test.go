package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/state"
)

// stored is a placement record as etcd holds it, with its mod revision.
type stored struct {
	p   *router.Placement
	rev int64
}

// storedPlacements reads every placement record from etcd, by
// "tenant/id".
func (e *env) storedPlacements() map[string]stored {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), e.prefix+"placements/", clientv3.WithPrefix())
	if err != nil {
		e.tb.Fatal(err)
	}
	out := map[string]stored{}
	for _, kv := range resp.Kvs {
		var p router.Placement
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			e.tb.Fatal(err)
		}
		out[p.Tenant+"/"+p.ID] = stored{&p, kv.ModRevision}
	}
	return out
}

// storedAudits reads the audit entries of op from etcd, by
// "tenant/request id", with their mod revisions.
func (e *env) storedAudits(op string) map[string]storedAudit {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), e.prefix+"audit/", clientv3.WithPrefix())
	if err != nil {
		e.tb.Fatal(err)
	}
	out := map[string]storedAudit{}
	for _, kv := range resp.Kvs {
		var a audit.Entry
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			e.tb.Fatal(err)
		}
		if a.Op == op {
			if _, dup := out[a.Tenant+"/"+a.RequestID]; dup {
				e.tb.Errorf("two %s audit entries of %s/%s", op, a.Tenant, a.RequestID)
			}
			out[a.Tenant+"/"+a.RequestID] = storedAudit{&a, kv.ModRevision}
		}
	}
	return out
}

type storedAudit struct {
	e   *audit.Entry
	rev int64
}

// gate holds the committer's first round in the test hook until opened,
// and says when the hook is entered.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), open: make(chan struct{})} }

// hold blocks the first call only.
func (g *gate) hold() {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.open
	}
}

// waitQueued waits until s's committer holds n writes besides those in
// flight.
func waitQueued(tb testing.TB, s *state.Store, n int) {
	tb.Helper()
	eventually(tb, 10*time.Second, func() (bool, string) {
		got := s.QueuedWrites()
		return got == n, fmt.Sprintf("%d writes queued; want %d", got, n)
	})
}

// TestGroupCommitTwoDaemonsLastCapacity races two daemons placing into
// one hot region (the only one a workload may use) with room for fewer
// placements than they ask for: placements into it are committed
// together, and etcd must end up with exactly the capacity placed,
// every acknowledged placement stored with the regions its caller was
// told, and the usage record the sum over the live placements.
func TestGroupCommitTwoDaemonsLastCapacity(t *testing.T) {
	const (
		capacity  = 150
		perDaemon = 200
		sharedIDs = 30 // ids both daemons place, for the same workload
		hot       = "aws/hot"
	)
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{
			secretRegion("aws", "hot", router.Resources{MilliCPU: capacity * unit.MilliCPU, MemoryMiB: capacity * unit.MemoryMiB}),
			commercialRegion("aws", "us-east-1"),
		},
		[]router.Tenant{army()})
	stores := []*state.Store{e.store, e.open(e.other)}

	type result struct {
		daemon int
		id     string
		p      *router.Placement
		err    error
	}
	results := make(chan result, len(stores)*perDaemon)
	var wg sync.WaitGroup
	for d, s := range stores {
		for i := range perDaemon {
			id := fmt.Sprintf("d%d-%03d", d, i)
			if i < sharedIDs {
				id = fmt.Sprintf("shared-%02d", i)
			}
			wg.Go(func() {
				time.Sleep(time.Duration(i%20) * 5 * time.Millisecond) // arrivals over 100ms
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				p, err := s.Place(ctx, id, secretWorkload(t, id))
				results <- result{d, id, p, err}
			})
		}
	}
	wg.Wait()
	close(results)

	acked := map[string]*router.Placement{}
	perDaemonAcked := make([]int, len(stores))
	for r := range results {
		var refusal *router.RefusalError
		switch {
		case r.err == nil:
			perDaemonAcked[r.daemon]++
			if prev, ok := acked[r.id]; ok && (!prev.CreatedAt.Equal(r.p.CreatedAt) || !slices.Equal(prev.Regions, r.p.Regions)) {
				t.Errorf("request %s acknowledged twice, differently: %+v and %+v", r.id, prev, r.p)
			}
			acked[r.id] = r.p
		case errors.As(r.err, &refusal):
			for _, v := range refusal.Regions {
				if v.Key == hot && (len(v.Reasons) != 1 || v.Reasons[0].Code != router.ReasonCapacity) {
					t.Errorf("%s refused with %+v; want capacity", r.id, v.Reasons)
				}
			}
		default:
			t.Errorf("%s: %v", r.id, r.err)
		}
	}

	inEtcd := e.storedPlacements()
	if len(acked) != capacity || len(inEtcd) != capacity {
		t.Errorf("%d placements acknowledged, %d in etcd; want %d", len(acked), len(inEtcd), capacity)
	}
	for id, p := range acked {
		got, ok := inEtcd["us-army/"+id]
		switch {
		case !ok:
			t.Errorf("acknowledged placement %s is not in etcd", id)
		case !slices.Equal(got.p.Regions, p.Regions) || !slices.Equal(p.Regions, []string{hot}) || !got.p.CreatedAt.Equal(p.CreatedAt):
			t.Errorf("%s: told %v (created %v), etcd holds %v (created %v)", id, p.Regions, p.CreatedAt, got.p.Regions, got.p.CreatedAt)
		}
	}
	for d, n := range perDaemonAcked {
		if n == 0 {
			t.Errorf("daemon %d placed nothing: no race", d)
		}
	}
	// Each placement's audit entry was written with it, in the same
	// transaction: at the same revision, naming the same regions.
	audits := e.storedAudits(audit.OpPlace)
	for id, p := range inEtcd {
		a, ok := audits[id]
		switch {
		case !ok:
			t.Errorf("placement %s has no audit entry", id)
		case a.rev != p.rev || !slices.Equal(a.e.Regions, p.p.Regions):
			t.Errorf("placement %s at revision %d in %v; its audit entry at %d names %v", id, p.rev, p.p.Regions, a.rev, a.e.Regions)
		}
	}
	if len(audits) != len(inEtcd) {
		t.Errorf("%d place audit entries for %d placements", len(audits), len(inEtcd))
	}
	used, n := e.usage(hot)
	if n != int64(len(inEtcd)) || used.MilliCPU != n*unit.MilliCPU || used.MemoryMiB != n*unit.MemoryMiB {
		t.Errorf("usage %+v over %d placements; etcd holds %d placements of %+v each", used, n, len(inEtcd), unit)
	}
	if used.MilliCPU > capacity*unit.MilliCPU {
		t.Errorf("usage %+v is over the capacity of %d placements", used, capacity)
	}
	// Group commit: placements shared commits.
	perCommit := map[int64]int{}
	most := 0
	for _, s := range inEtcd {
		perCommit[s.rev]++
		most = max(most, perCommit[s.rev])
	}
	if most < 2 {
		t.Errorf("%d placements in %d commits: none shared one", len(inEtcd), len(perCommit))
	}
	t.Logf("%d placements in %d commits (at most %d in one)", len(inEtcd), len(perCommit), most)
}

// TestGroupCommitRechecksCapacity: a round of placements decided before
// another daemon filled part of their region must not all commit. The
// committer learns the usage from the failed compare, commits those that
// still fit, decided as they were, and sends the others back to be
// decided again (here: refused).
func TestGroupCommitRechecksCapacity(t *testing.T) {
	const capacity = 10
	g := newGate()
	var e *env
	e = newEnv(t, nil, state.WithBeforeCommit(func(string) { g.hold() }))
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "hot", router.Resources{MilliCPU: capacity * unit.MilliCPU, MemoryMiB: capacity * unit.MemoryMiB})},
		[]router.Tenant{army()})
	b := e.open(e.other)
	ctx := context.Background()

	type result struct {
		p   *router.Placement
		err error
	}
	results := map[string]*result{}
	var wg sync.WaitGroup
	place := func(id string) {
		r := &result{}
		results[id] = r
		wg.Go(func() { r.p, r.err = e.store.Place(ctx, id, secretWorkload(t, id)) })
	}
	place("a0")
	<-g.entered // a0's round is held: the others queue behind it
	for i := 1; i < 8; i++ {
		place(fmt.Sprint("a", i))
	}
	waitQueued(t, e.store, 7)
	var bRev int64
	for i := range 5 { // the other daemon takes half the region meanwhile
		p, err := b.Place(ctx, fmt.Sprint("b", i), secretWorkload(t, "b"))
		if err != nil {
			t.Fatal(err)
		}
		bRev = max(bRev, e.storedPlacements()["us-army/"+p.ID].rev)
	}
	close(g.open)
	wg.Wait()

	placed := 0
	for id, r := range results {
		var refusal *router.RefusalError
		switch {
		case r.err == nil:
			placed++
			if r.p.DecidedAt >= bRev {
				t.Errorf("%s decided at %d, after the other daemon's placements at %d: it fit, and should have gone as decided", id, r.p.DecidedAt, bRev)
			}
		case errors.As(r.err, &refusal) && errors.Is(r.err, router.ErrNoEligibleRegion):
		default:
			t.Errorf("%s: %v", id, r.err)
		}
	}
	if placed != capacity-5 {
		t.Errorf("%d of this daemon's placements committed; want %d", placed, capacity-5)
	}
	used, n := e.usage("aws/hot")
	if n != capacity || used.MilliCPU != capacity*unit.MilliCPU {
		t.Errorf("usage %+v over %d placements; want the capacity, %d", used, n, capacity)
	}
	if got := len(e.storedPlacements()); got != capacity {
		t.Errorf("%d placements in etcd; want %d", got, capacity)
	}
}

// decisions counts the store's decisions.
type decisions struct{ n atomic.Int32 }

func (d *decisions) Decided(time.Duration)         { d.n.Add(1) }
func (d *decisions) Committed(time.Duration, bool) {}

// TestGroupCommitConflictRedecidesOnlyTheAffected changes one tenant's
// record while a round holding placements of two tenants is in flight:
// the round's group fails, and only that tenant's placements are
// decided again; the other tenant's commit as decided.
func TestGroupCommitConflictRedecidesOnlyTheAffected(t *testing.T) {
	navy := router.Tenant{ID: "us-navy", Name: "US Navy", Nation: "USA", Sector: "defense", Ceiling: "SECRET//NOFORN"}
	g := newGate()
	var e *env
	var changeRev atomic.Int64
	var seen sync.Once
	count := &decisions{}
	e = newEnv(t, nil, state.WithObserver(count), state.WithBeforeCommit(func(id string) {
		g.hold()
		if id != "first" {
			seen.Do(func() {
				renamed := navy
				renamed.Name = "US Navy (renamed)"
				changeRev.Store(e.putJSON("tenants/us-navy", renamed))
			})
		}
	}))
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "hot", big), commercialRegion("aws", "c1")},
		[]router.Tenant{army(), navy})
	ctx := context.Background()

	type result struct {
		p   *router.Placement
		err error
	}
	results := map[string]*result{}
	var wg sync.WaitGroup
	place := func(id, tenant string) {
		w := secretWorkload(t, id)
		w.Tenant = tenant
		r := &result{}
		results[id] = r
		wg.Go(func() { r.p, r.err = e.store.Place(ctx, id, w) })
	}
	place("first", "us-army")
	<-g.entered
	for i := range 3 {
		place(fmt.Sprint("army-", i), "us-army")
		place(fmt.Sprint("navy-", i), "us-navy")
	}
	waitQueued(t, e.store, 6)
	before := count.n.Load()
	close(g.open)
	wg.Wait()

	for id, r := range results {
		if r.err != nil {
			t.Fatalf("%s: %v", id, r.err)
		}
	}
	if got := count.n.Load() - before; got != 3 {
		t.Errorf("%d decisions after the round failed; want 3 (the navy's placements only)", got)
	}
	inEtcd := e.storedPlacements()
	armyRevs := map[int64]bool{}
	for i := range 3 {
		a, n := results[fmt.Sprint("army-", i)].p, results[fmt.Sprint("navy-", i)].p
		if a.DecidedAt >= changeRev.Load() {
			t.Errorf("army placement decided at %d, after the navy's record changed at %d", a.DecidedAt, changeRev.Load())
		}
		if n.DecidedAt < changeRev.Load() {
			t.Errorf("navy placement decided at %d, before its tenant record changed at %d", n.DecidedAt, changeRev.Load())
		}
		armyRevs[inEtcd["us-army/"+a.ID].rev] = true
	}
	if len(armyRevs) != 1 {
		t.Errorf("the army's placements committed at revisions %v; want one commit", armyRevs)
	}
	if _, n := e.usage("aws/hot"); n != 7 {
		t.Errorf("usage counts %d placements; want 7", n)
	}
}

// TestGroupCommitSameRequestIDInOneRound places one request id several
// times at once, the writes queued together: one placement is made, and
// every Place of its workload returns it; a Place of the id with
// another workload is told the id is reused.
func TestGroupCommitSameRequestIDInOneRound(t *testing.T) {
	g := newGate()
	e := newEnv(t, nil, state.WithBeforeCommit(func(string) { g.hold() }))
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "hot", big)}, []router.Tenant{army()})
	ctx := context.Background()

	var wg sync.WaitGroup
	wg.Go(func() { _, _ = e.store.Place(ctx, "first", secretWorkload(t, "first")) })
	<-g.entered
	same := secretWorkload(t, "dup")
	other := secretWorkload(t, "dup")
	other.Resources.MilliCPU++
	type result struct {
		other bool
		p     *router.Placement
		err   error
	}
	results := make([]result, 4)
	for i := range results {
		results[i].other = i == 3
		wg.Go(func() {
			w := same
			if results[i].other {
				w = other
			}
			results[i].p, results[i].err = e.store.Place(ctx, "dup", w)
		})
	}
	waitQueued(t, e.store, 4)
	close(g.open)
	wg.Wait()

	var won *router.Placement
	for _, r := range results {
		if r.err == nil {
			if won != nil && (!won.CreatedAt.Equal(r.p.CreatedAt) || !slices.Equal(won.Regions, r.p.Regions)) {
				t.Errorf("two placements of one request id: %+v and %+v", won, r.p)
			}
			won = r.p
		}
	}
	if won == nil {
		t.Fatal("no Place of the request id succeeded")
	}
	wonOther := won.Workload.Resources != same.Resources
	for i, r := range results {
		if r.other == wonOther && r.err != nil {
			t.Errorf("Place %d of the placed workload: %v", i, r.err)
		}
		if r.other != wonOther && !errors.Is(r.err, router.ErrRequestReused) {
			t.Errorf("Place %d of the other workload = %+v, %v; want ErrRequestReused", i, r.p, r.err)
		}
	}
	if got := len(e.storedPlacements()); got != 2 {
		t.Errorf("%d placements in etcd; want 2", got)
	}
	if _, n := e.usage("aws/hot"); n != 2 {
		t.Errorf("usage counts %d placements; want 2", n)
	}
}
