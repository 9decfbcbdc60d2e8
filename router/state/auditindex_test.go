package state_test

import (
	"context"
	"fmt"
	"slices"
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
