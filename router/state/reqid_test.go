package state_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/feed"
	"github.com/classroute/classroute/router/state"
)

// A request id names a placement within its tenant only: two tenants
// may use the same one, and neither learns of nor blocks the other.

func navy() router.Tenant {
	return router.Tenant{ID: "us-navy", Name: "US Navy", Nation: "USA", Sector: "defense", Ceiling: "SECRET//NOFORN"}
}

// navyWorkload is secretWorkload for the US Navy.
func navyWorkload(tb testing.TB, name string) *router.Workload {
	tb.Helper()
	w := secretWorkload(tb, name)
	w.Tenant = "us-navy"
	return w
}

// twoTenantEnv is an env with one SECRET region, aws/secret-east, and
// the US Army and US Navy tenants.
func twoTenantEnv(tb testing.TB) *env {
	tb.Helper()
	e := newEnv(tb, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army(), navy()})
	return e
}

func wantInvalid(tb testing.TB, what string, err error, field string) {
	tb.Helper()
	var inv *router.InvalidError
	if !errors.As(err, &inv) || len(inv.Violations) == 0 || inv.Violations[0].Field != field {
		tb.Errorf("%s: got %v; want an InvalidError on %s", what, err, field)
	}
}

func TestRequestIDPerTenant(t *testing.T) {
	e := twoTenantEnv(t)
	ctx := context.Background()

	// Both tenants place "deploy-1" at once: each gets its own.
	ws := map[string]*router.Workload{"us-army": secretWorkload(t, "army-app"), "us-navy": navyWorkload(t, "navy-app")}
	got := make(map[string]*router.Placement)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for tenant, w := range ws {
		wg.Go(func() {
			p, err := e.store.Place(ctx, "deploy-1", w)
			if err != nil {
				t.Errorf("Place deploy-1 for %s: %v", tenant, err)
				return
			}
			mu.Lock()
			got[tenant] = p
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for tenant, w := range ws {
		p := got[tenant]
		if p.ID != "deploy-1" || p.Tenant != tenant || p.Workload.Name != w.Name {
			t.Errorf("%s's placement: got %s/%s of %s", tenant, p.Tenant, p.ID, p.Workload.Name)
		}
		if c, err := e.store.GetPlacement(tenant, "deploy-1"); err != nil || c.Workload.Name != w.Name {
			t.Errorf("GetPlacement(%s, deploy-1) = %v, %v; want %s's", tenant, c, err, w.Name)
		}
		// Idempotency within the tenant is as it was.
		if again, err := e.store.Place(ctx, "deploy-1", ws[tenant]); err != nil || again.CreatedAt != p.CreatedAt {
			t.Errorf("Place again for %s: %v, %v; want the placement already made", tenant, again, err)
		}
		other := *ws[tenant]
		other.Name = "something-else"
		if _, err := e.store.Place(ctx, "deploy-1", &other); !errors.Is(err, router.ErrRequestReused) {
			t.Errorf("Place of another workload for %s = %v; want ErrRequestReused", tenant, err)
		}
	}
	if _, n := e.usage("aws/secret-east"); n != 2 {
		t.Errorf("usage counts %d placements; want 2", n)
	}
	for _, key := range []string{"placements/us-army/deploy-1", "placements/us-navy/deploy-1"} {
		if e.record(key) == nil {
			t.Errorf("no record %s", key)
		}
	}

	// Without a tenant, an id two tenants used is ambiguous; one
	// tenant's id is found.
	_, err := e.store.GetPlacement("", "deploy-1")
	wantInvalid(t, "GetPlacement without a tenant", err, "tenant")
	if _, err := e.store.Place(ctx, "navy-only", navyWorkload(t, "n")); err != nil {
		t.Fatal(err)
	}
	if p, err := e.store.GetPlacement("", "navy-only"); err != nil || p.Tenant != "us-navy" {
		t.Errorf("GetPlacement(\"\", navy-only) = %v, %v; want the navy's", p, err)
	}
	if _, err := e.store.GetPlacement("us-army", "navy-only"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("GetPlacement(us-army, navy-only) = %v; want ErrNotFound", err)
	}

	// Lists: by tenant, each its own; all of them in key order, paged.
	for tenant := range ws {
		page, err := e.store.ListPlacements(state.PlacementFilter{Tenant: tenant}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Placements {
			if p.Tenant != tenant {
				t.Errorf("List of %s: got %s's %s", tenant, p.Tenant, p.ID)
			}
		}
	}
	var keys []string
	for token := ""; ; {
		page, err := e.store.ListPlacements(state.PlacementFilter{}, 1, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Placements {
			keys = append(keys, p.Tenant+"/"+p.ID)
		}
		if token = page.Next; token == "" {
			break
		}
	}
	if want := []string{"us-army/deploy-1", "us-navy/deploy-1", "us-navy/navy-only"}; !slices.Equal(keys, want) {
		t.Errorf("List by pages of 1: got %v; want %v", keys, want)
	}

	// Releasing the army's leaves the navy's placed.
	rel, err := e.store.Release(ctx, "us-army", "deploy-1")
	if err != nil || rel.Tenant != "us-army" || rel.State != router.PlacementReleased {
		t.Fatalf("Release(us-army, deploy-1) = %v, %v", rel, err)
	}
	if p, _ := e.store.GetPlacement("us-navy", "deploy-1"); p.State != router.PlacementPlaced {
		t.Errorf("the navy's deploy-1 after the army's release: %v; want placed", p.State)
	}
	if _, err := e.store.Release(ctx, "us-army", "navy-only"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("Release(us-army, navy-only) = %v; want ErrNotFound", err)
	}
	if p, _ := e.store.GetPlacement("us-navy", "navy-only"); p.State != router.PlacementPlaced {
		t.Errorf("navy-only after the army's release of it: %v; want placed", p.State)
	}
	if _, n := e.usage("aws/secret-east"); n != 2 {
		t.Errorf("usage counts %d placements; want 2", n)
	}

	// The audit trail tells the tenants' deploy-1 apart: each entry
	// names its tenant, which a tenant's auditor is confined to.
	for tenant, want := range map[string][]string{"us-army": {"place", "release"}, "us-navy": {"place"}} {
		recs, _, err := e.store.FindAudit(ctx, state.AuditFilter{Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		var ops []string
		for _, r := range recs {
			if r.Entry.RequestID == "deploy-1" {
				ops = append(ops, r.Entry.Op)
			}
		}
		if !slices.Equal(ops, want) {
			t.Errorf("audit of %s's deploy-1: %v; want %v", tenant, ops, want)
		}
	}

	// A tenant with no live placement is deleted, whatever the other
	// tenant's placements of the same ids.
	if err := e.store.DeleteTenant(ctx, "us-army"); err != nil {
		t.Errorf("DeleteTenant(us-army) with only the navy's deploy-1 live: %v", err)
	}
	if err := e.store.DeleteTenant(ctx, "us-navy"); !errors.Is(err, router.ErrInUse) {
		t.Errorf("DeleteTenant(us-navy) = %v; want ErrInUse", err)
	}
}

// A tenant that places and releases an id another tenant will use later
// does not block that tenant's Place.
func TestRequestIDSquatting(t *testing.T) {
	e := twoTenantEnv(t)
	ctx := context.Background()
	if _, err := e.store.Place(ctx, "navy-deploy-2", secretWorkload(t, "squat")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Release(ctx, "us-army", "navy-deploy-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Place(ctx, "navy-deploy-3", secretWorkload(t, "squat")); err != nil {
		t.Fatal(err) // still live
	}
	for _, id := range []string{"navy-deploy-2", "navy-deploy-3"} {
		p, err := e.store.Place(ctx, id, navyWorkload(t, "deploy"))
		if err != nil {
			t.Fatalf("the navy's Place of %s, which the army used: %v", id, err)
		}
		if p.Tenant != "us-navy" || p.State != router.PlacementPlaced || p.Workload.Name != "deploy" {
			t.Errorf("the navy's %s: got %s's, %v, of %s", id, p.Tenant, p.State, p.Workload.Name)
		}
	}
}

// An agent is assigned each tenant's placement of one request id, and
// acknowledges each for its tenant.
func TestAgentAckPerTenant(t *testing.T) {
	e := twoTenantEnv(t)
	ctx := context.Background()
	const east = "aws/secret-east"
	a := e.connect(e.store, east, "agent-1")
	if as := next(t, a); len(as) != 0 {
		t.Fatalf("initial assignments: %v", summary(as))
	}
	e.place("dup", secretWorkload(t, "army-app"))
	e.place("dup", navyWorkload(t, "navy-app"))
	var tenants []string
	for len(tenants) < 2 {
		for _, as := range next(t, a) {
			if as.Action != router.AssignRun || as.Placement.ID != "dup" {
				t.Fatalf("assignment %s %s", as.Action, as.Placement.ID)
			}
			tenants = append(tenants, as.Placement.Tenant)
		}
	}
	if slices.Sort(tenants); !slices.Equal(tenants, []string{"us-army", "us-navy"}) {
		t.Fatalf("RUNs of dup for %v; want one per tenant", tenants)
	}

	// Without a tenant, an ack of an id two tenants' placements hold
	// here is refused, and changes nothing.
	before := e.record("placements/us-navy/dup")
	wantInvalid(t, "Ack without a tenant", a.Ack(ctx, "", "dup", router.ReplicaRunning, ""), "ack.tenant")
	if err := a.Ack(ctx, "us-army", "dup", router.ReplicaRunning, "pid 7"); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.store.GetPlacement("us-army", "dup"); p.Replica(0).State != router.ReplicaRunning || p.Replica(0).Detail != "pid 7" {
		t.Errorf("the army's dup: replica %+v; want running, pid 7", p.Replica(0))
	}
	if got := e.record("placements/us-navy/dup"); *got != *before {
		t.Errorf("the navy's dup changed by the army's ack")
	}

	// Once the army's is released, an ack without a tenant is the navy's.
	if _, err := e.store.Release(ctx, "us-army", "dup"); err != nil {
		t.Fatal(err)
	}
	if got := summary(next(t, a)); !slices.Equal(got, []string{"stop dup"}) {
		t.Fatalf("after the army's release: %v; want [stop dup]", got)
	}
	if err := a.Ack(ctx, "", "dup", router.ReplicaAccepted, ""); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.store.GetPlacement("us-navy", "dup"); p.Replica(0).State != router.ReplicaAccepted {
		t.Errorf("the navy's dup: replica %v; want accepted", p.Replica(0).State)
	}
}

// Placement records of the layout before request ids were scoped to the
// tenant are moved at Open, once, by whichever of several daemons gets
// there first; they are then served and released as any other.
func TestMigrateLegacyPlacements(t *testing.T) {
	e := twoTenantEnv(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "taken"} {
		e.place(id, secretWorkload(t, id))
	}
	e.place("n", navyWorkload(t, "n"))
	if _, err := e.store.Release(ctx, "us-army", "b"); err != nil {
		t.Fatal(err)
	}
	// What a daemon of the old layout wrote: placements/<id>. "taken"
	// is also in the new layout (its key is taken: it stays, logged),
	// and "junk" does not decode (it stays, logged).
	legacy := map[string]string{}
	for _, key := range []string{"us-army/a", "us-army/b", "us-navy/n", "us-army/taken"} {
		r := e.record("placements/" + key)
		id := key[strings.Index(key, "/")+1:]
		legacy[id] = r.Value
		ops := []clientv3.Op{clientv3.OpPut(e.prefix+"placements/"+id, r.Value)}
		if id != "taken" {
			ops = append(ops, clientv3.OpDelete(e.prefix+"placements/"+key))
		}
		if _, err := e.other.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := e.other.Put(ctx, e.prefix+"placements/junk", "{not json")
	if err != nil {
		t.Fatal(err)
	}
	legacyRev := resp.Header.Revision
	waitFor(t, e.store, legacyRev)
	if _, err := e.store.GetPlacement("us-army", "a"); !errors.Is(err, router.ErrNotFound) {
		t.Fatalf("a legacy record is served before it is moved: %v", err)
	}
	_, usedBefore := e.usage("aws/secret-east")

	// Two daemons start at once.
	stores := make([]*state.Store, 2)
	logs := make([]*logBuffer, 2)
	var wg sync.WaitGroup
	for i, cli := range []*clientv3.Client{e.cli, e.other} {
		logs[i] = &logBuffer{}
		wg.Go(func() {
			octx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			s, err := state.Open(octx, cli, router.NewEngine(), state.WithPrefix(e.prefix), state.WithLogger(slog.New(logs[i])))
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for i, s := range stores {
		for _, key := range []string{"us-army/a", "us-army/b", "us-navy/n", "us-army/taken"} {
			tenant, id, _ := strings.Cut(key, "/")
			p, err := s.GetPlacement(tenant, id)
			if err != nil || p.Tenant != tenant || p.ID != id {
				t.Errorf("store %d: GetPlacement(%s, %s) = %v, %v", i, tenant, id, p, err)
			}
		}
	}
	for id, val := range legacy {
		tenant := "us-army"
		if id == "n" {
			tenant = "us-navy"
		}
		r := e.record("placements/" + tenant + "/" + id)
		if r == nil || r.Value != val {
			t.Errorf("placements/%s/%s after the move: %v; want the legacy value unchanged", tenant, id, r)
		}
		left := e.record("placements/" + id)
		if (left != nil) != (id == "taken") {
			t.Errorf("legacy record of %s after the move: %v", id, left)
		}
	}
	if e.record("placements/junk") == nil {
		t.Error("the undecodable legacy record was deleted")
	}
	all := logs[0].String() + logs[1].String()
	for _, want := range []string{"legacy placement record does not decode", "tenant-scoped key is taken"} {
		if !strings.Contains(all, want) {
			t.Errorf("logs: want %q in\n%s", want, all)
		}
	}
	// Each record moved exactly once: one put per moved record after
	// the legacy writes.
	hist, err := e.other.Get(ctx, e.prefix+"placements/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range hist.Kvs {
		if kv.ModRevision > legacyRev && kv.Version != 1 {
			t.Errorf("%s written %d times", kv.Key, kv.Version)
		}
	}

	// The moved placements are released as any other, and their usage
	// returned.
	if _, err := stores[0].Release(ctx, "us-army", "a"); err != nil {
		t.Fatal(err)
	}
	if _, n := e.usage("aws/secret-east"); n != usedBefore-1 {
		t.Errorf("usage counts %d placements after the release; want %d", n, usedBefore-1)
	}

	// Opening again moves nothing.
	before := e.lastWrite()
	e.open(e.cli)
	if after := e.lastWrite(); after != before {
		t.Errorf("a third Open wrote at revision %d", after)
	}
}

// lastWrite is the latest mod revision under the env's prefix.
func (e *env) lastWrite() int64 {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), e.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		e.tb.Fatal(err)
	}
	var last int64
	for _, kv := range resp.Kvs {
		last = max(last, kv.ModRevision)
	}
	return last
}

// A feed passes over the move of a legacy record: the placement did not
// change.
func TestFeedSkipsMigration(t *testing.T) {
	e := twoTenantEnv(t)
	ctx := context.Background()
	e.place("a", secretWorkload(t, "a"))
	r := e.record("placements/us-army/a")
	resp, err := e.other.Txn(ctx).Then(
		clientv3.OpDelete(e.prefix+"placements/us-army/a"),
		clientv3.OpPut(e.prefix+"placements/a", r.Value),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.store, resp.Header.Revision)
	fd, err := e.store.WatchPlacements(ctx, feed.Filter{}, resp.Header.Revision)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	_ = e.open(e.other) // moves a
	e.place("b", secretWorkload(t, "b"))
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		b, err := fd.Next(fctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Events) == 0 {
			continue
		}
		if len(b.Events) != 1 || b.Events[0].Placement.ID != "b" || b.Events[0].Type != router.EventPlaced {
			t.Fatalf("first batch after the move: %+v; want b placed only", b.Events)
		}
		return
	}
}
