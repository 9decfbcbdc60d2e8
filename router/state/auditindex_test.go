package state_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/state"
)

// auditActivity makes a trail of every kind of entry on e's store, from
// two tenants: placements, releases, refusals one by one and in
// summaries, catalogue changes. It returns two times between its phases.
func auditActivity(tb testing.TB, e *env) (mid1, mid2 time.Time) {
	tb.Helper()
	ctx := context.Background()
	navy := army()
	navy.ID, navy.Ceiling = "us-navy", "SECRET//NOFORN"
	navy.Members = []router.TenantMember{{Name: "sailor", Roles: []authz.Role{authz.RoleSubmitter}}}
	e.seed([]router.Provider{provider("aws"), provider("azure")},
		[]router.Region{secretRegion("aws", "a", big), secretRegion("aws", "b", big), secretRegion("azure", "c", big)},
		[]router.Tenant{army(), navy})
	place := func(ctx context.Context, id, tenant, name string) {
		tb.Helper()
		w := secretWorkload(tb, name)
		w.Tenant = tenant
		if _, err := e.store.Place(ctx, id, w); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range 6 {
		place(ctx, fmt.Sprintf("army-%d", i), "us-army", fmt.Sprintf("w%d", i%2))
		place(ctx, fmt.Sprintf("navy-%d", i), "us-navy", fmt.Sprintf("n%d", i%2))
	}
	mid1 = time.Now()
	time.Sleep(2 * time.Millisecond)
	for _, r := range [][2]string{{"us-army", "army-0"}, {"us-navy", "navy-1"}, {"us-army", "army-3"}} {
		if _, err := e.store.Release(ctx, r[0], r[1]); err != nil {
			tb.Fatal(err)
		}
	}
	sailor := tenantUser("us-navy", "sailor")
	ts := secretWorkload(tb, "n1")
	ts.Tenant, ts.Banner = "us-navy", "TOP SECRET//NOFORN"
	if err := router.ValidateWorkload(ts); err != nil {
		tb.Fatal(err)
	}
	for i := range 6 { // 2 audited, then counted (the env's limit)
		if _, err := e.store.Place(sailor, fmt.Sprintf("ts-%d", i), ts); err == nil {
			tb.Fatal("placed above the ceiling")
		}
	}
	time.Sleep(2 * time.Millisecond)
	mid2 = time.Now()
	time.Sleep(2 * time.Millisecond)
	r := secretRegion("aws", "a", big)
	r.Cost = 2
	e.putRegion(r)
	place(ctx, "army-6", "us-army", "w0")
	// The summary of the counted refusals.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		recs, _, err := e.store.FindAudit(ctx, state.AuditFilter{Op: state.AuditRefuseSummary})
		if err != nil {
			tb.Fatal(err)
		}
		if len(recs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("no refusal summary")
		}
	}
	return mid1, mid2
}

// selects is what f selects of all, by the filter's definition.
func selects(all []state.AuditRecord, f state.AuditFilter) []string {
	var out []string
	for _, r := range all {
		e := r.Entry
		if (f.Tenant == "" || e.Tenant == f.Tenant) && (f.Workload == "" || e.Workload == f.Workload) &&
			(f.Op == "" || e.Op == f.Op) && (f.Region == "" || slices.Contains(e.Regions, f.Region)) &&
			(f.Since.IsZero() || !e.Time.Before(f.Since)) && (f.Until.IsZero() || e.Time.Before(f.Until)) {
			out = append(out, r.ID)
		}
	}
	return out
}

// find pages through f's records, limit at a time.
func find(tb testing.TB, s *state.Store, f state.AuditFilter, limit int) []string {
	tb.Helper()
	var out []string
	f.Limit = limit
	for range 10000 {
		page, next, err := s.FindAudit(context.Background(), f)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) > limit {
			tb.Fatalf("%+v: a page of %d; limit %d", f, len(page), limit)
		}
		for _, r := range page {
			out = append(out, r.ID)
		}
		if next == "" {
			return out
		}
		f.After = next
	}
	tb.Fatalf("%+v: no last page", f)
	return nil
}

// filters are the filters tried: each field absent, matching, or
// matching nothing, and time ranges.
func filters(mid1, mid2 time.Time) []state.AuditFilter {
	var out []state.AuditFilter
	for _, tenant := range []string{"", "us-army", "us-navy", "nosuch"} {
		for _, wl := range []string{"", "w0", "n1", "nosuch"} {
			for _, op := range []string{"", state.AuditPlace, state.AuditRefuse, state.AuditRelease, state.AuditRefuseSummary, state.AuditRegionPut, "nosuch"} {
				for _, region := range []string{"", "aws/a", "nosuch/x"} {
					for _, span := range [][2]time.Time{{}, {mid1, time.Time{}}, {time.Time{}, mid2}, {mid1, mid2}} {
						out = append(out, state.AuditFilter{Tenant: tenant, Workload: wl, Op: op, Region: region, Since: span[0], Until: span[1]})
					}
				}
			}
		}
	}
	return out
}

// TestAuditIndex checks FindAudit from the index against the filter's
// definition applied to the whole trail, for every combination of
// fields, paged; and that a filter matching nothing reads next to
// nothing, however long the trail.
func TestAuditIndex(t *testing.T) {
	e := newEnv(t, nil, state.WithRefusalAuditLimit(state.RefusalAuditLimit{PerSecond: 0.01, Burst: 2, SummaryAfter: 100 * time.Millisecond}))
	if !e.store.AuditIndexed() {
		t.Fatal("a new store's trail is not indexed")
	}
	mid1, mid2 := auditActivity(t, e)
	all, _, err := e.store.FindAudit(context.Background(), state.AuditFilter{Limit: 1000}) // the whole trail, in order
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, r := range all {
		ops[r.Entry.Op]++
	}
	t.Logf("%d entries: %v", len(all), ops)
	for _, op := range []string{state.AuditPlace, state.AuditRelease, state.AuditRefuse, state.AuditRefuseSummary, state.AuditRegionPut} {
		if ops[op] == 0 {
			t.Fatalf("no %s entry in the trail", op)
		}
	}
	n := 0
	for _, f := range filters(mid1, mid2) {
		wantIDs := selects(all, f)
		for _, limit := range []int{2, 1000} {
			if got := find(t, e.store, f, limit); !slices.Equal(got, wantIDs) {
				t.Errorf("%+v, pages of %d: got %d records %v; want %d %v", f, limit, len(got), got, len(wantIDs), wantIDs)
			}
		}
		if len(wantIDs) > 0 {
			n++
		}
	}
	t.Logf("%d filters, %d matching something", len(filters(mid1, mid2)), n)

	// A long trail of another tenant: 3000 entries.
	const noise = 3000
	ctx := context.Background()
	for i := 0; i < noise; i += 25 {
		var es []state.AuditEntry
		for j := range 25 {
			es = append(es, state.AuditEntry{Op: state.AuditPlace, Tenant: "noise", Workload: fmt.Sprintf("nz%d", (i+j)%7),
				RequestID: fmt.Sprintf("nz-%d", i+j), Label: "SECRET//NOFORN", Regions: []string{"aws/b"}})
		}
		if err := e.store.AppendAudit(ctx, es...); err != nil {
			t.Fatal(err)
		}
	}
	w0 := len(selects(all, state.AuditFilter{Workload: "w0"}))
	for _, tc := range []struct {
		name    string
		f       state.AuditFilter
		records int
		max     int64 // keys read at most
	}{
		{"no such tenant", state.AuditFilter{Tenant: "nosuch"}, 0, 0},
		{"no such workload", state.AuditFilter{Workload: "nosuch"}, 0, 0},
		{"no such op", state.AuditFilter{Op: "nosuch"}, 0, 0},
		{"no such region", state.AuditFilter{Region: "nosuch/x"}, 0, 0},
		{"known tenant, no such op", state.AuditFilter{Tenant: "noise", Op: "nosuch"}, 0, 1},
		// The join reads at most a page of the long range per id of the short.
		{"a workload of another tenant", state.AuditFilter{Tenant: "noise", Workload: "w0"}, 0, int64(w0+1) * 33},
		{"nothing in the time range", state.AuditFilter{Tenant: "noise", Until: mid1}, 0, 0},
		{"a page of the long tenant", state.AuditFilter{Tenant: "noise", Limit: 10}, 10, 2 * 10},
		// One in 7 of the tenant's entries is nz3's: the tenant's keys
		// between them, the workload's, the entries, a page past each.
		{"a page of the long tenant's workload", state.AuditFilter{Tenant: "noise", Workload: "nz3", Limit: 10}, 10, 7*10 + 10 + 10 + 2*32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.store.AuditKeysRead()
			recs, _, err := e.store.FindAudit(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			read := e.store.AuditKeysRead() - before
			t.Logf("%d records, %d keys read", len(recs), read)
			if len(recs) != tc.records {
				t.Errorf("%d records; want %d", len(recs), tc.records)
			}
			if read > tc.max {
				t.Errorf("read %d keys of a trail of %d; want at most %d", read, len(all)+noise, tc.max)
			}
		})
	}
}

// TestAuditIndexBackfill: a trail written before the index existed (no
// index keys, no marker) is indexed by the next store to open, and
// answered by full scans until then.
func TestAuditIndexBackfill(t *testing.T) {
	e := newEnv(t, nil, state.WithRefusalAuditLimit(state.RefusalAuditLimit{PerSecond: 0.01, Burst: 2, SummaryAfter: 100 * time.Millisecond}))
	mid1, mid2 := auditActivity(t, e)
	all, _, err := e.store.FindAudit(context.Background(), state.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.other.Delete(context.Background(), e.prefix+"audit-index/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	e.store.SetAuditIndexed(false)
	f := state.AuditFilter{Tenant: "us-navy", Op: state.AuditRefuse}
	if got, want := find(t, e.store, f, 1000), selects(all, f); !slices.Equal(got, want) {
		t.Fatalf("before indexing: %v; want %v", got, want)
	}
	s2 := e.open(e.other)
	for deadline := time.Now().Add(10 * time.Second); !s2.AuditIndexed(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the trail was not indexed")
		}
	}
	for _, f := range filters(mid1, mid2) {
		if got, want := find(t, s2, f, 1000), selects(all, f); !slices.Equal(got, want) {
			t.Errorf("%+v: got %v; want %v", f, got, want)
		}
	}
}

// tenantTrail writes the trail of tenant nld-mod (120 entries: two
// workloads, places and releases, in a region others use too) and, with
// others, after each of its entries three entries of tenant us-ic that
// name the same region, a region nld-mod may not know of, a workload of
// the same name and one of its own, and ops nld-mod never had.
func tenantTrail(tb testing.TB, s *state.Store, others bool) {
	tb.Helper()
	ctx := context.Background()
	for i := 0; i < 120; i += 10 {
		var es []state.AuditEntry
		for j := i; j < i+10; j++ {
			op, wl := state.AuditPlace, "nl"
			if j%3 == 2 {
				op = state.AuditRelease
			}
			if j%2 == 1 {
				wl = "nl2"
			}
			es = append(es, state.AuditEntry{Op: op, Tenant: "nld-mod", Workload: wl, RequestID: fmt.Sprintf("nl-%d", j),
				Label: "UNCLASSIFIED", Regions: []string{"aws/a"}})
			if !others {
				continue
			}
			for k, x := range [...]struct{ op, wl, region string }{
				{state.AuditPlace, "nl", "aws/a"},
				{state.AuditRefuse, "sigint", "hid/ts-1"},
				{state.AuditReroute, "sigint", "hid/ts-1"},
			} {
				es = append(es, state.AuditEntry{Op: x.op, Tenant: "us-ic", Workload: x.wl, RequestID: fmt.Sprintf("ic-%d-%d", j, k),
					Label: "TOP SECRET//NOFORN", Regions: []string{x.region, "hid/ts-2"}})
			}
		}
		if err := s.AppendAudit(ctx, es...); err != nil {
			tb.Fatal(err)
		}
	}
}

// describe names what f filters on.
func describe(f state.AuditFilter) string {
	var parts []string
	for _, x := range [...][2]string{{"tenant", f.Tenant}, {"workload", f.Workload}, {"op", f.Op}, {"region", f.Region}} {
		if x[1] != "" {
			parts = append(parts, x[0]+"="+x[1])
		}
	}
	if f.Limit > 0 {
		parts = append(parts, fmt.Sprintf("limit=%d", f.Limit))
	}
	return strings.Join(parts, " ")
}

// findCost is FindAudit's page for f, as request ids, and the keys it read.
func findCost(tb testing.TB, s *state.Store, f state.AuditFilter) ([]string, int64) {
	tb.Helper()
	before := s.AuditKeysRead()
	recs, _, err := s.FindAudit(context.Background(), f)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.Entry.RequestID)
	}
	return ids, s.AuditKeysRead() - before
}

// tenantFilters are filters held to nld-mod, as its auditor's are.
var tenantFilters = []state.AuditFilter{
	{Tenant: "nld-mod", Region: "hid/ts-1"},
	{Tenant: "nld-mod", Region: "nosuch/ts-1"},
	{Tenant: "nld-mod", Workload: "sigint"},
	{Tenant: "nld-mod", Workload: "nosuch"},
	{Tenant: "nld-mod", Op: state.AuditRefuse},
	{Tenant: "nld-mod", Op: "nosuch"},
	{Tenant: "nld-mod", Limit: 10},
	{Tenant: "nld-mod", Region: "aws/a"},
	{Tenant: "nld-mod", Region: "aws/a", Workload: "nl"},
	{Tenant: "nld-mod", Region: "aws/a", Op: state.AuditRelease, Limit: 7},
	{Tenant: "nld-mod", Workload: "nl2", Op: state.AuditPlace},
	{Tenant: "nld-mod", Workload: "nl", Op: state.AuditRefuse, Region: "aws/a"},
}

// A filter held to one tenant does the same work, and finds the same
// entries, whatever other tenants did: a filter on a region the tenant
// may not know of, on another tenant's workload or on an op only others
// used costs what one on a value nobody used costs, and a filter on a
// region or workload name both tenants used reads none of the other's
// entries. (Adversarial review of issue 8: a hidden region with
// activity read the whole trail, 400 keys, a missing one 1.)
func TestAuditIndexTenantWorkUnmovedByOthers(t *testing.T) {
	type result struct {
		ids  []string
		read int64
	}
	run := func(t *testing.T, others bool) []result {
		e := newEnv(t, nil)
		tenantTrail(t, e.store, others)
		var out []result
		for _, f := range tenantFilters {
			ids, read := findCost(t, e.store, f)
			out = append(out, result{ids, read})
		}
		return out
	}
	var alone, among []result
	t.Run("alone", func(t *testing.T) { alone = run(t, false) })
	t.Run("among others", func(t *testing.T) { among = run(t, true) })
	if len(alone) != len(tenantFilters) || len(among) != len(tenantFilters) {
		t.Fatal("a run failed")
	}
	for i, f := range tenantFilters {
		a, o := alone[i], among[i]
		t.Logf("%s: %d records, %d keys read alone; %d records, %d keys read among others", describe(f), len(a.ids), a.read, len(o.ids), o.read)
		if !slices.Equal(a.ids, o.ids) || a.read != o.read {
			t.Errorf("%s: alone %d records, %d keys read; among others %d records (the same: %t), %d keys read",
				describe(f), len(a.ids), a.read, len(o.ids), slices.Equal(a.ids, o.ids), o.read)
		}
	}
	// Pairs: what only others have, and what nobody has.
	for i := 0; i < 6; i += 2 {
		h, m := among[i], among[i+1]
		if len(h.ids) != 0 || len(m.ids) != 0 || h.read != m.read || h.read > 0 {
			t.Errorf("%s: %d records, %d keys read; %s: %d records, %d keys read; want none and nothing read, alike",
				describe(tenantFilters[i]), len(h.ids), h.read, describe(tenantFilters[i+1]), len(m.ids), m.read)
		}
	}
}

// TestAuditIndexTenantBackfill: a trail indexed by a daemon of the
// version before the per-tenant keys (the shared keys and their marker
// only) is answered correctly meanwhile, a filter naming a tenant from
// that tenant's entries alone, and the next store to open writes the
// per-tenant keys (only those) and their marker.
func TestAuditIndexTenantBackfill(t *testing.T) {
	e := newEnv(t, nil, state.WithRefusalAuditLimit(state.RefusalAuditLimit{PerSecond: 0.01, Burst: 2, SummaryAfter: 100 * time.Millisecond}))
	mid1, mid2 := auditActivity(t, e)
	tenantTrail(t, e.store, true)
	ctx := context.Background()
	all, _, err := e.store.FindAudit(ctx, state.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// As the older version left it.
	for _, dir := range []string{"tw/", "to/", "tr/", "complete-v2"} {
		if _, err := e.other.Delete(ctx, e.prefix+"audit-index/"+dir, clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
	}
	shared, err := e.other.Get(ctx, e.prefix+"audit-index/t/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(shared.Kvs) == 0 {
		t.Fatalf("shared keys: %v, %v", shared, err)
	}
	e.store.SetAuditIndexedShared()
	check := func(s *state.Store, fs []state.AuditFilter) {
		t.Helper()
		for _, f := range fs {
			for _, limit := range []int{3, 1000} {
				if got, want := find(t, s, f, limit), selects(all, f); !slices.Equal(got, want) {
					t.Errorf("%+v, pages of %d: got %v; want %v", f, limit, got, want)
				}
			}
		}
	}
	check(e.store, filters(mid1, mid2))
	check(e.store, tenantFilters)
	if !e.store.AuditIndexedShared() {
		t.Fatal("the store thinks the per-tenant keys complete")
	}
	// Meanwhile a tenant's filter reads its own entries, no one else's.
	_, h := findCost(t, e.store, state.AuditFilter{Tenant: "nld-mod", Region: "hid/ts-1"})
	_, m := findCost(t, e.store, state.AuditFilter{Tenant: "nld-mod", Region: "nosuch/ts-1"})
	if h != m || h != 2*120 {
		t.Errorf("before the per-tenant keys: a hidden region read %d keys, a missing one %d; want both nld-mod's 120 index keys and entries", h, m)
	}

	s2 := e.open(e.other)
	for deadline := time.Now().Add(10 * time.Second); !s2.AuditIndexed(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the per-tenant keys were not written")
		}
	}
	after, err := e.other.Get(ctx, e.prefix+"audit-index/t/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Kvs) != len(shared.Kvs) || after.Kvs[0].ModRevision != shared.Kvs[0].ModRevision {
		t.Errorf("the shared keys were written again")
	}
	check(s2, filters(mid1, mid2))
	check(s2, tenantFilters)
	if _, h := findCost(t, s2, state.AuditFilter{Tenant: "nld-mod", Region: "hid/ts-1"}); h != 0 {
		t.Errorf("indexed: a hidden region read %d keys; want 0", h)
	}
}
