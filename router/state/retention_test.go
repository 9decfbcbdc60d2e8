package state_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/feed"
	"github.com/classroute/classroute/router/state"
)

// released places and releases each id, and returns the releases.
func (e *env) released(ids ...string) []*router.Placement {
	e.tb.Helper()
	var out []*router.Placement
	for _, id := range ids {
		e.place(id, secretWorkload(e.tb, "w-"+id))
		p, err := e.store.Release(context.Background(), "us-army", id)
		if err != nil {
			e.tb.Fatalf("release %s: %v", id, err)
		}
		out = append(out, p)
	}
	return out
}

// A released placement's record is kept for the retention, then deleted
// by the leader: gone from etcd, from the cache and from List, seen by a
// Watch as DELETED; its audit entries stay; within the retention a Place
// retried with its request id returns it, after it the id makes a new
// placement.
func TestReleasedPlacementsPurgedAfterRetention(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{army()})
	ctx := context.Background()
	fd, err := e.store.WatchPlacements(ctx, feed.Filter{Tenant: "us-army"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()

	const retention = 1500 * time.Millisecond
	e.place("live", secretWorkload(t, "w-live"))
	start := time.Now()
	gone := e.released("r1", "r2")
	reconcile(t, e.store, state.ReconcilerConfig{Name: "a", Interval: 50 * time.Millisecond, ReleasedRetention: retention})

	// Within the retention: kept, and Place with the id is idempotent.
	time.Sleep(retention / 3)
	if time.Since(start) < retention {
		for _, p := range gone {
			got, err := e.store.Place(ctx, p.ID, secretWorkload(t, "w-"+p.ID))
			if err != nil || got.State != router.PlacementReleased || !got.CreatedAt.Equal(p.CreatedAt) {
				t.Errorf("Place %s again within the retention: %+v, %v; want the released placement", p.ID, got, err)
			}
		}
		if n := len(e.placements()); n != 3 {
			t.Errorf("%d placement records within the retention; want 3", n)
		}
	}

	eventually(t, 10*time.Second, func() (bool, string) {
		ps := e.placements()
		return len(ps) == 1, fmt.Sprintf("records %v", slices.Collect(maps.Keys(ps)))
	})
	if took := time.Since(start); took < retention {
		t.Errorf("purged %v after the release; want no sooner than the retention %v", took, retention)
	}
	if _, ok := e.placements()["live"]; !ok {
		t.Error("the live placement was purged")
	}
	for _, p := range gone {
		eventually(t, 5*time.Second, func() (bool, string) {
			_, err := e.store.GetPlacement("us-army", p.ID)
			return errors.Is(err, router.ErrNotFound), fmt.Sprintf("GetPlacement %s: %v", p.ID, err)
		})
		if _, err := e.store.Release(ctx, "us-army", p.ID); !errors.Is(err, router.ErrNotFound) {
			t.Errorf("Release %s after the purge: %v; want ErrNotFound", p.ID, err)
		}
	}
	page, err := e.store.ListPlacements(state.PlacementFilter{Tenant: "us-army"}, 0, "")
	if err != nil || len(page.Placements) != 1 {
		t.Errorf("List after the purge: %d placements, %v; want the live one", len(page.Placements), err)
	}

	// The Watch saw both deletions, with the last version.
	deleted := map[string]router.PlacementState{}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for len(deleted) < len(gone) {
		b, err := fd.Next(wctx)
		if err != nil {
			t.Fatalf("watch: %v; deletions seen %v", err, deleted)
		}
		for _, ev := range b.Events {
			if ev.Type == router.EventDeleted {
				deleted[ev.Placement.ID] = ev.Placement.State
			}
		}
	}
	for _, p := range gone {
		if deleted[p.ID] != router.PlacementReleased {
			t.Errorf("DELETED event of %s: last version %v; want released", p.ID, deleted[p.ID])
		}
	}

	// The trail keeps what happened.
	if ops := e.auditOps(); ops[audit.OpPlace] != 3 || ops[audit.OpRelease] != 2 {
		t.Errorf("audit %v after the purge; want 3 place and 2 release entries", ops)
	}

	// The request id names nothing now: Place makes a new placement.
	p, err := e.store.Place(ctx, "r1", secretWorkload(t, "another"))
	if err != nil || p.State != router.PlacementPlaced || p.Workload.Name != "another" {
		t.Errorf("Place r1 after the purge: %+v, %v; want a new placement", p, err)
	}
}

// With no retention every record is kept.
func TestReleasedPlacementsKeptWithoutRetention(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{army()})
	e.released("r1")
	reconcile(t, e.store, state.ReconcilerConfig{Name: "a", Interval: 20 * time.Millisecond})
	eventually(t, 5*time.Second, func() (bool, string) { return e.store.Leading(), "not leading" })
	time.Sleep(300 * time.Millisecond)
	if sp, ok := e.placements()["r1"]; !ok || sp.P.State != router.PlacementReleased {
		t.Errorf("record of r1 %+v, %v; want kept", sp, ok)
	}
}

// Each tenant keeps its ReleasedKeep most recent released records,
// whatever the retention: a loop of Place and Release costs a bounded
// number of records. Another tenant's are its own count.
func TestReleasedKeptPerTenant(t *testing.T) {
	e := newEnv(t, nil)
	navy := army()
	navy.ID = "us-navy"
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{army(), navy})
	var ids []string
	for i := range 30 {
		ids = append(ids, fmt.Sprintf("r%02d", i))
	}
	e.released(ids...)
	w := secretWorkload(t, "navy")
	w.Tenant = "us-navy"
	for _, id := range []string{"n1", "n2"} {
		e.place(id, w)
		if _, err := e.store.Release(context.Background(), "us-navy", id); err != nil {
			t.Fatal(err)
		}
	}
	e.place("live", secretWorkload(t, "w-live"))
	reconcile(t, e.store, state.ReconcilerConfig{Name: "a", Interval: 20 * time.Millisecond, ReleasedKeep: 10})
	want := append(slices.Clone(ids[20:]), "live", "n1", "n2")
	slices.Sort(want)
	eventually(t, 10*time.Second, func() (bool, string) {
		got := slices.Sorted(maps.Keys(e.placements()))
		return slices.Equal(got, want), fmt.Sprintf("records %v; want %v", got, want)
	})
	// And no more: the newest ten stay.
	time.Sleep(500 * time.Millisecond)
	if got := slices.Sorted(maps.Keys(e.placements())); !slices.Equal(got, want) {
		t.Errorf("records %v; want %v", got, want)
	}
}

// A backlog is purged in transactions of at most 100 deletions, spaced
// apart, oldest first.
func TestReleasedPurgeBatches(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{army()})
	const n = 250
	t0 := time.Now()
	for i := range n {
		e.released(fmt.Sprintf("r%03d", i))
	}
	t.Logf("%d placed and released in %v", n, time.Since(t0))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := e.other.Watch(ctx, e.prefix+"placements/", clientv3.WithPrefix(), clientv3.WithRev(0))
	perRev := map[int64]int{}
	var at []time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := 0
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					if perRev[ev.Kv.ModRevision] == 0 {
						at = append(at, time.Now())
					}
					perRev[ev.Kv.ModRevision]++
					seen++
				}
			}
			if seen == n {
				return
			}
		}
	}()
	reconcile(t, e.store, state.ReconcilerConfig{Name: "a", Interval: 50 * time.Millisecond, ReleasedRetention: time.Millisecond})
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("deletions by revision %v; want %d in all", perRev, n)
	}
	if len(perRev) != 3 {
		t.Errorf("%d purge transactions %v; want 3 (100, 100, 50)", len(perRev), perRev)
	}
	for rev, k := range perRev {
		if k > 100 {
			t.Errorf("revision %d deleted %d records; want at most 100", rev, k)
		}
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 150*time.Millisecond {
			t.Errorf("purge transactions %v apart; want them spaced (200 ms)", gap)
		}
	}
	if left := len(e.placements()); left != 0 {
		t.Errorf("%d records left", left)
	}
}

// A former leader (its election key gone, or another's) deletes nothing.
func TestReleasedPurgeFenced(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{army()})
	e.released("r1")
	stop := reconcile(t, e.store, state.ReconcilerConfig{Name: "a", Interval: 20 * time.Millisecond})
	var key string
	var rev int64
	eventually(t, 5*time.Second, func() (bool, string) {
		var err error
		key, rev, err = e.store.LeaderKey(context.Background())
		return err == nil && key != "", fmt.Sprintf("leader key: %v", err)
	})
	stop()
	n, err := e.store.PurgeAs(context.Background(), key, rev, time.Now(), 0)
	if err != nil || n != 0 {
		t.Errorf("a former leader's purge: %d deleted, %v; want none", n, err)
	}
	if _, ok := e.placements()["r1"]; !ok {
		t.Error("a former leader purged r1")
	}
}

// sizeByDir sums the bytes (keys and values) under the env's prefix by
// top-level directory ("placements", "audit", ...).
func (e *env) sizeByDir() map[string]int64 {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), e.prefix, clientv3.WithPrefix())
	if err != nil {
		e.tb.Fatal(err)
	}
	out := map[string]int64{}
	for _, kv := range resp.Kvs {
		dir, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), e.prefix), "/")
		out[dir] += int64(len(kv.Key) + len(kv.Value))
	}
	return out
}

// What a place and release leave in etcd once the record's retention has
// passed: the audit trail alone (the two entries, their index keys and
// chain records), for a typical placement and for the largest legal one
// (the longest canonical banner, 16 replicas in regions of the longest
// keys, the longest tenant, workload, request id and identity). Audit
// entries are never deleted, so this times the caller's Place rate is
// the growth that remains.
func TestRetainedBytesPerCycle(t *testing.T) {
	const cycles = 10
	measure := func(t *testing.T, e *env, user context.Context, tenant string, w *router.Workload, reqID func(int) string) float64 {
		t.Helper()
		reconcile(t, e.store, state.ReconcilerConfig{Name: "a", Interval: 50 * time.Millisecond, ReleasedRetention: time.Millisecond})
		e.waitChained()
		before := e.sizeByDir()
		for i := range cycles {
			if _, err := e.store.Place(user, reqID(i), w); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.Release(user, tenant, reqID(i)); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 10*time.Second, func() (bool, string) {
			ps := e.placements()
			return len(ps) == 0, fmt.Sprintf("%d records left", len(ps))
		})
		e.waitChained()
		after := e.sizeByDir()
		var kept int64
		var dirs []string
		for _, d := range slices.Sorted(maps.Keys(after)) {
			if d == "election" {
				continue // the leader's key, not the trail
			}
			if delta := after[d] - before[d]; delta != 0 {
				dirs = append(dirs, fmt.Sprintf("%s %+d", d, delta))
				kept += delta
			}
		}
		if after["placements"] != before["placements"] {
			t.Errorf("placement records: %d bytes, %d before; want none kept", after["placements"], before["placements"])
		}
		per := float64(kept) / cycles
		t.Logf("%.0f bytes kept per place+release (%s); at 20 Place/s %.1f KB/s, %.1f GB a day; a 2 GiB etcd lasts %v",
			per, strings.Join(dirs, ", "), 20*per/1e3, 20*per*86400/1e9, time.Duration(float64(2<<30)/(20*per)*float64(time.Second)).Round(time.Minute))
		return per
	}

	t.Run("typical", func(t *testing.T) {
		e := newEnv(t, nil)
		tn := army()
		tn.Members = []router.TenantMember{{Name: "jdoe", Roles: []authz.Role{authz.RoleSubmitter}}}
		e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "us-east-1", big)}, []router.Tenant{tn})
		user := authz.NewContext(context.Background(), &authz.Principal{
			ID: "spiffe://example.org/tenant/us-army/user/jdoe", Kind: authz.KindTenant, Tenant: "us-army", Name: "jdoe"})
		w := secretWorkload(t, "records-db")
		if per := measure(t, e, user, "us-army", w, func(i int) string { return fmt.Sprintf("deploy-%d", i) }); per > 4<<10 {
			t.Errorf("%.0f bytes per cycle; want at most 4 KiB", per)
		}
	})
	t.Run("largest", func(t *testing.T) {
		banner, controls, ceiling := worstBanner(t)
		prov := long("p", 63, "x")
		tn := army()
		tn.ID = long("t", 63, "x")
		tn.Ceiling = ceiling
		name := long("u", 128, "x")
		tn.Members = []router.TenantMember{{Name: name, Roles: []authz.Role{authz.RoleSubmitter}}}
		var regions []router.Region
		for i := range router.MaxReplicas {
			r := secretRegion(prov, long(fmt.Sprintf("r%02d", i), 63, "x"), big)
			r.Accreditation.Controls = controls
			regions = append(regions, r)
		}
		e := newEnv(t, nil)
		e.seed([]router.Provider{provider(prov)}, regions, []router.Tenant{tn})
		user := authz.NewContext(context.Background(), &authz.Principal{
			ID: "spiffe://" + long("td", 255, "x") + "/tenant/" + tn.ID + "/user/" + name, Kind: authz.KindTenant, Tenant: tn.ID, Name: name})
		w := &router.Workload{Name: long("w", 128, "x"), Tenant: tn.ID, Banner: banner, AllowedCountries: []string{"*"},
			Resources: unit, Replicas: router.MaxReplicas}
		if err := router.ValidateWorkload(w, "US"); err != nil {
			t.Fatal(err)
		}
		if per := measure(t, e, user, tn.ID, w, func(i int) string { return long(fmt.Sprintf("req-%d-", i), 128, "x") }); per > 48<<10 {
			t.Errorf("%.0f bytes per cycle; want at most 48 KiB", per)
		}
	})
}
