package state_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/state"
)

func TestPlaceCommits(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "secret-east", big), commercialRegion("aws", "us-east-1")},
		[]router.Tenant{army()})
	ctx := context.Background()
	w := secretWorkload(t, "logistics")

	p, err := e.store.Place(ctx, "req-1", w)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Regions, []string{"aws/secret-east"}; !slices.Equal(got, want) {
		t.Errorf("regions %v; want %v", got, want)
	}
	if p.State != router.PlacementPlaced || p.Tenant != "us-army" || p.DecidedAt == 0 || p.CreatedAt.IsZero() || len(p.Scores) != 1 {
		t.Errorf("placement %+v", p)
	}
	if p.Workload.Label.Level != label.Secret || p.Workload.Banner != w.Banner {
		t.Errorf("stored workload label %v banner %q; want SECRET, %q", p.Workload.Label, p.Workload.Banner, w.Banner)
	}
	got, err := e.store.GetPlacement("us-army", "req-1")
	if err != nil || got.ID != "req-1" || !slices.Equal(got.Regions, p.Regions) {
		t.Fatalf("GetPlacement = %+v, %v", got, err)
	}
	if used, n := e.usage("aws/secret-east"); used != unit || n != 1 {
		t.Errorf("usage %+v, %d placements; want %+v, 1", used, n, unit)
	}
	st, err := e.store.GetRegion("aws/secret-east")
	if err != nil || st.Used != unit {
		t.Errorf("cached usage %+v, %v; want %+v", st.Used, err, unit)
	}

	trail, err := e.store.ListAudit(ctx, 10)
	if err != nil || len(trail) != 1 {
		t.Fatalf("ListAudit = %+v, %v; want one record", trail, err)
	}
	if a := trail[0]; a.Op != audit.OpPlace || a.RequestID != "req-1" || a.Tenant != "us-army" || a.Workload != "logistics" ||
		a.Label != "SECRET//NOFORN" || !slices.Equal(a.Regions, p.Regions) || a.Revision != p.DecidedAt || len(a.Scores) != 1 {
		t.Errorf("audit record %+v", a)
	}

	// The same request again is the same placement, counted once.
	again, err := e.store.Place(ctx, "req-1", secretWorkload(t, "logistics"))
	if err != nil || again.ID != p.ID || !again.CreatedAt.Equal(p.CreatedAt) {
		t.Fatalf("Place again = %+v, %v; want the first placement", again, err)
	}
	if used, n := e.usage("aws/secret-east"); used != unit || n != 1 {
		t.Errorf("usage after repeat %+v, %d; want %+v, 1", used, n, unit)
	}
	// The same request id with another workload is refused.
	other := secretWorkload(t, "logistics")
	other.Resources.MilliCPU++
	if _, err := e.store.Place(ctx, "req-1", other); !errors.Is(err, router.ErrRequestReused) {
		t.Errorf("Place with a reused id = %v; want ErrRequestReused", err)
	}
}

func TestPlaceRefuses(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "secret-east", big), commercialRegion("aws", "us-east-1")},
		[]router.Tenant{army()})
	ctx := context.Background()

	ts := secretWorkload(t, "analysis")
	ts.Banner = "TOP SECRET//SI//NOFORN"
	if err := router.ValidateWorkload(ts, "US"); err != nil {
		t.Fatal(err)
	}
	_, err := e.store.Place(ctx, "req-ts", ts)
	var refusal *router.RefusalError
	if !errors.As(err, &refusal) || !errors.Is(err, router.ErrNoEligibleRegion) {
		t.Fatalf("Place = %v; want a refusal wrapping ErrNoEligibleRegion", err)
	}
	if len(refusal.Regions) != 2 || refusal.Revision != e.store.Revision() {
		t.Errorf("refusal explains %d regions at revision %d; want 2 at %d", len(refusal.Regions), refusal.Revision, e.store.Revision())
	}
	for _, r := range refusal.Regions {
		if r.Eligible || len(r.Reasons) == 0 || r.Reasons[0].Code != router.ReasonLevel {
			t.Errorf("verdict %+v; want ineligible for level", r)
		}
	}
	if _, err := e.store.GetPlacement("us-army", "req-ts"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("refused placement stored: %v", err)
	}
	trail, err := e.store.ListAudit(ctx, 10)
	if err != nil || len(trail) != 1 || trail[0].Op != audit.OpRefuse || trail[0].Label != "TOP SECRET//SI//NOFORN" || len(trail[0].Reasons) < 3 {
		t.Errorf("ListAudit = %+v, %v; want one refusal with reasons", trail, err)
	}

	stranger := secretWorkload(t, "x")
	stranger.Tenant = "kdf"
	_, err = e.store.Place(ctx, "req-kdf", stranger)
	var invalid *router.InvalidError
	if !errors.As(err, &invalid) || invalid.Violations[0].Field != "workload.tenant" {
		t.Errorf("Place for an unknown tenant = %v; want an InvalidError on workload.tenant", err)
	}

	unparsed := secretWorkload(t, "y")
	unparsed.Label = label.Label{} // the banner no longer describes the label
	if _, err := e.store.Place(ctx, "req-y", unparsed); !errors.As(err, &invalid) {
		t.Errorf("Place with a label that disagrees with its banner = %v; want an InvalidError", err)
	}
}

func TestPlan(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws"), provider("azure")},
		[]router.Region{secretRegion("aws", "secret-east", big), secretRegion("azure", "secret-west", big), commercialRegion("aws", "us-east-1")},
		[]router.Tenant{army()})
	w := secretWorkload(t, "plan")
	w.Replicas = 2
	plan, err := e.store.Plan(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Refusal != nil || len(plan.Chosen) != 2 || len(plan.Regions) != 3 || plan.Revision != e.store.Revision() {
		t.Fatalf("plan %+v", plan)
	}
	if r := plan.Regions[2]; r.Key != "aws/us-east-1" || r.Eligible || len(r.Reasons) < 2 {
		t.Errorf("commercial region verdict %+v; want ineligible with every reason", r)
	}
	if _, err := e.store.GetPlacement("us-army", "plan"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("Plan committed something: %v", err)
	}
}

// TestConflictRetry changes the chosen region's record between the
// decision and its commit: the commit's compare fails, and the placement
// is decided again on the new record.
func TestConflictRetry(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change is applied to aws/secret-east before the first commit.
		change func(r *router.Region)
		// want is where the placement lands, or "" for a refusal.
		want string
	}{
		{"cost raised", func(r *router.Region) { r.Cost = 9 }, "azure/secret-west"},
		{"capacity lowered below the workload", func(r *router.Region) { r.Capacity = router.Resources{MilliCPU: 10, MemoryMiB: 10} }, "azure/secret-west"},
		{"renamed", func(r *router.Region) { r.Name = "renamed" }, "aws/secret-east"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			var commits atomic.Int32
			e = newEnv(t, nil, state.WithBeforeCommit(func(string) {
				if commits.Add(1) == 1 {
					r := secretRegion("aws", "secret-east", big)
					tc.change(&r)
					e.putJSON("regions/aws/secret-east", r)
				}
			}))
			east, west := secretRegion("aws", "secret-east", big), secretRegion("azure", "secret-west", big)
			west.Cost = 2 // east is the better region until it changes
			e.seed([]router.Provider{provider("aws"), provider("azure")}, []router.Region{east, west}, []router.Tenant{army()})

			before := e.store.Revision()
			p, err := e.store.Place(context.Background(), "req", secretWorkload(t, "w"))
			if err != nil {
				t.Fatal(err)
			}
			if n := commits.Load(); n != 2 {
				t.Errorf("%d commit attempts; want 2", n)
			}
			if p.Regions[0] != tc.want {
				t.Errorf("placed in %v; want %s", p.Regions, tc.want)
			}
			if p.DecidedAt < before+1 {
				t.Errorf("decided at %d; want after the change at %d", p.DecidedAt, before+1)
			}
			if used, n := e.usage(tc.want); used != unit || n != 1 {
				t.Errorf("usage of %s: %+v, %d", tc.want, used, n)
			}
		})
	}
}

// TestDowngradeAfterSnapshot lowers the accreditation of the region a
// decision chose before the decision commits: the placement must not be
// committed there, whatever else happens.
func TestDowngradeAfterSnapshot(t *testing.T) {
	downgrade := func(e *env) func(string) {
		var once sync.Once
		return func(string) {
			once.Do(func() {
				r := secretRegion("aws", "secret-east", big)
				r.Accreditation.MaxLevel = label.CUI
				e.putJSON("regions/aws/secret-east", r)
			})
		}
	}
	t.Run("another region eligible", func(t *testing.T) {
		var e *env
		e = newEnv(t, nil, state.WithBeforeCommit(func(id string) { downgrade(e)(id) }))
		west := secretRegion("azure", "secret-west", big)
		west.Cost = 2
		e.seed([]router.Provider{provider("aws"), provider("azure")},
			[]router.Region{secretRegion("aws", "secret-east", big), west}, []router.Tenant{army()})
		p, err := e.store.Place(context.Background(), "req", secretWorkload(t, "w"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.Regions, []string{"azure/secret-west"}) {
			t.Errorf("placed in %v after aws/secret-east was downgraded", p.Regions)
		}
		if used, n := e.usage("aws/secret-east"); n != 0 || used != (router.Resources{}) {
			t.Errorf("downgraded region's usage %+v, %d; want none", used, n)
		}
	})
	t.Run("no other region", func(t *testing.T) {
		var e *env
		var once sync.Once
		e = newEnv(t, nil, state.WithBeforeCommit(func(id string) { once.Do(func() { downgrade(e)(id) }) }))
		e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
		_, err := e.store.Place(context.Background(), "req", secretWorkload(t, "w"))
		var refusal *router.RefusalError
		if !errors.As(err, &refusal) {
			t.Fatalf("Place = %v; want a refusal", err)
		}
		if len(refusal.Regions) != 1 || refusal.Regions[0].Reasons[0].Code != router.ReasonLevel {
			t.Errorf("refusal %+v; want the region refused for its level", refusal.Regions)
		}
		if _, err := e.store.GetPlacement("us-army", "req"); !errors.Is(err, router.ErrNotFound) {
			t.Errorf("placement stored: %v", err)
		}
	})
}

// TestTwoDaemonsRace runs two stores, each with its own client, against
// one etcd, racing to place into the only eligible region, which has
// room for exactly capacity replicas.
func TestTwoDaemonsRace(t *testing.T) {
	const (
		capacity   = 6
		perDaemon  = 50
		sharedIDs  = 10 // request ids both daemons use, for the same workload
		commercial = "aws/us-east-1"
	)
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{
			secretRegion("aws", "secret-east", router.Resources{MilliCPU: capacity * unit.MilliCPU, MemoryMiB: capacity * unit.MemoryMiB}),
			commercialRegion("aws", "us-east-1"),
		},
		[]router.Tenant{army()})
	stores := []*state.Store{e.store, e.open(e.other)}

	type result struct {
		id  string
		p   *router.Placement
		err error
	}
	results := make(chan result, len(stores)*perDaemon)
	var wg sync.WaitGroup
	for d, s := range stores {
		for i := range perDaemon {
			id := fmt.Sprintf("d%d-%02d", d, i)
			if i < sharedIDs {
				id = fmt.Sprintf("shared-%02d", i)
			}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				p, err := s.Place(ctx, id, secretWorkload(t, id))
				results <- result{id, p, err}
			})
		}
	}
	wg.Wait()
	close(results)

	placed := map[string]*router.Placement{}
	refused := 0
	for r := range results {
		var refusal *router.RefusalError
		switch {
		case r.err == nil:
			if prev, ok := placed[r.id]; ok && !prev.CreatedAt.Equal(r.p.CreatedAt) {
				t.Errorf("request %s placed twice: %+v and %+v", r.id, prev, r.p)
			}
			placed[r.id] = r.p
			if !slices.Equal(r.p.Regions, []string{"aws/secret-east"}) {
				t.Errorf("%s placed in %v", r.id, r.p.Regions)
			}
		case errors.As(r.err, &refusal):
			refused++
			for _, v := range refusal.Regions {
				if v.Key == "aws/secret-east" && (len(v.Reasons) != 1 || v.Reasons[0].Code != router.ReasonCapacity) {
					t.Errorf("%s refused with %+v; want capacity", r.id, v.Reasons)
				}
			}
		default:
			t.Errorf("%s: %v", r.id, r.err)
		}
	}
	if len(placed) != capacity {
		t.Errorf("%d placements committed; want %d", len(placed), capacity)
	}
	used, n := e.usage("aws/secret-east")
	if n != int64(len(placed)) || used.MilliCPU != int64(len(placed))*unit.MilliCPU || used.MemoryMiB != int64(len(placed))*unit.MemoryMiB {
		t.Errorf("usage %+v over %d placements; want the sum of %d committed", used, n, len(placed))
	}
	resp, err := e.other.Get(context.Background(), e.prefix+"placements/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != int64(capacity) {
		t.Errorf("%d placement records, %v; want %d", resp.Count, err, capacity)
	}
	t.Logf("%d placed, %d refusals", len(placed), refused)
}

// TestUnavailableWhenEtcdStops stops etcd under a store: within the
// stale bound it must refuse to place.
func TestUnavailableWhenEtcdStops(t *testing.T) {
	const staleAfter = 400 * time.Millisecond
	m := etcdtest.Member(t)
	e := newEnv(t, m, state.WithStaleAfter(staleAfter), state.WithProgressEvery(50*time.Millisecond), state.WithOpTimeout(300*time.Millisecond))
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
	ctx := context.Background()
	if _, err := e.store.Place(ctx, "before", secretWorkload(t, "w")); err != nil {
		t.Fatal(err)
	}

	m.Close()
	stopped := time.Now()
	var err error
	for i := 0; time.Since(stopped) < staleAfter+time.Second; i++ {
		if _, err = e.store.Place(ctx, fmt.Sprintf("after-%d", i), secretWorkload(t, "w")); err != nil {
			break
		}
	}
	if !errors.Is(err, router.ErrUnavailable) {
		t.Fatalf("Place after etcd stopped = %v; want ErrUnavailable", err)
	}
	// Ready itself must say so within the bound.
	for time.Since(stopped) < staleAfter+200*time.Millisecond && e.store.Ready() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.store.Ready(); !errors.Is(err, router.ErrUnavailable) {
		t.Errorf("Ready %v after etcd stopped = %v; want ErrUnavailable", time.Since(stopped), err)
	}
	if _, err := e.store.Place(ctx, "late", secretWorkload(t, "w")); !errors.Is(err, router.ErrUnavailable) {
		t.Errorf("Place = %v; want ErrUnavailable", err)
	}
	if _, err := e.store.Plan(ctx, secretWorkload(t, "w")); !errors.Is(err, router.ErrUnavailable) {
		t.Errorf("Plan = %v; want ErrUnavailable", err)
	}
}

func TestRelease(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
	ctx := context.Background()
	w := secretWorkload(t, "w")
	w.Replicas = 1
	if _, err := e.store.Place(ctx, "a", w); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Place(ctx, "b", w); err != nil {
		t.Fatal(err)
	}
	p, err := e.store.Release(ctx, "us-army", "a")
	if err != nil {
		t.Fatal(err)
	}
	if p.State != router.PlacementReleased || p.ReleasedAt.IsZero() {
		t.Errorf("released placement %+v", p)
	}
	if used, n := e.usage("aws/secret-east"); used != unit || n != 1 {
		t.Errorf("usage after release %+v, %d; want %+v, 1", used, n, unit)
	}
	if st, _ := e.store.GetRegion("aws/secret-east"); st.Used != unit {
		t.Errorf("cached usage %+v; want %+v", st.Used, unit)
	}
	again, err := e.store.Release(ctx, "us-army", "a")
	if err != nil || !again.ReleasedAt.Equal(p.ReleasedAt) {
		t.Errorf("Release again = %+v, %v; want the same released placement", again, err)
	}
	if used, n := e.usage("aws/secret-east"); used != unit || n != 1 {
		t.Errorf("usage after repeat release %+v, %d", used, n)
	}
	if _, err := e.store.Release(ctx, "us-army", "nope"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("Release unknown = %v; want ErrNotFound", err)
	}
	trail, err := e.store.ListAudit(ctx, 10)
	if err != nil || len(trail) != 3 || trail[2].Op != audit.OpRelease || trail[2].RequestID != "a" {
		t.Errorf("audit %+v, %v; want place, place, release a", trail, err)
	}
	// A released request id stays used.
	if got, err := e.store.Place(ctx, "a", w); err != nil || got.State != router.PlacementReleased {
		t.Errorf("Place with a released id = %+v, %v; want the released placement", got, err)
	}
}

func TestDeleteInUse(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
	ctx := context.Background()
	if _, err := e.store.Place(ctx, "a", secretWorkload(t, "w")); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteRegion(ctx, "aws/secret-east"); !errors.Is(err, router.ErrInUse) {
		t.Errorf("DeleteRegion in use = %v; want ErrInUse", err)
	}
	if err := e.store.DeleteTenant(ctx, "us-army"); !errors.Is(err, router.ErrInUse) {
		t.Errorf("DeleteTenant with placements = %v; want ErrInUse", err)
	}
	if err := e.store.DeleteProvider(ctx, "aws"); !errors.Is(err, router.ErrInUse) {
		t.Errorf("DeleteProvider with regions = %v; want ErrInUse", err)
	}
	if _, err := e.store.Release(ctx, "us-army", "a"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteRegion(ctx, "aws/secret-east"); err != nil {
		t.Fatalf("DeleteRegion after release: %v", err)
	}
	if _, err := e.store.GetRegion("aws/secret-east"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("GetRegion after delete = %v; want ErrNotFound", err)
	}
	if err := e.store.DeleteRegion(ctx, "aws/secret-east"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("DeleteRegion again = %v; want ErrNotFound", err)
	}
	if err := e.store.DeleteProvider(ctx, "aws"); err != nil {
		t.Errorf("DeleteProvider without regions: %v", err)
	}
	if err := e.store.DeleteTenant(ctx, "us-army"); err != nil {
		t.Errorf("DeleteTenant with only released placements: %v", err)
	}
	if _, err := e.store.GetTenant("us-army"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("GetTenant after delete = %v", err)
	}
}

// TestDeleteRegionRacesPlace deletes the only region while placements
// race into it: either the delete wins and nothing is placed there
// afterwards, or it is refused as in use; the usage never lies.
func TestDeleteRegionRacesPlace(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
	ctx := context.Background()
	var wg sync.WaitGroup
	var delErr error
	for i := range 20 {
		wg.Go(func() { _, _ = e.store.Place(ctx, fmt.Sprint("p", i), secretWorkload(t, "w")) })
	}
	wg.Go(func() { delErr = e.store.DeleteRegion(ctx, "aws/secret-east") })
	wg.Wait()
	page, err := e.store.ListPlacements(state.PlacementFilter{}, 0, "")
	items := page.Placements
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case delErr == nil:
		resp, _ := e.other.Get(ctx, e.prefix+"usage/aws/secret-east")
		if len(resp.Kvs) != 0 {
			t.Errorf("usage record survives the region")
		}
		if len(items) != 0 {
			t.Errorf("region deleted with %d placements in it", len(items))
		}
	case errors.Is(delErr, router.ErrInUse) || errors.Is(delErr, router.ErrConflict):
		if _, n := e.usage("aws/secret-east"); n != int64(len(items)) {
			t.Errorf("usage counts %d placements; %d exist", n, len(items))
		}
	default:
		t.Fatalf("DeleteRegion = %v", delErr)
	}
}

func TestListPlacements(t *testing.T) {
	e := newEnv(t, nil)
	navy := router.Tenant{ID: "us-navy", Name: "US Navy", Nation: "USA", Sector: "defense", Ceiling: "SECRET//NOFORN"}
	e.seed([]router.Provider{provider("aws"), provider("azure")},
		[]router.Region{secretRegion("aws", "secret-east", big), secretRegion("azure", "secret-west", big)},
		[]router.Tenant{army(), navy})
	ctx := context.Background()
	var want []string
	for i := range 7 {
		w := secretWorkload(t, "w")
		if i%2 == 1 {
			w.Tenant = "us-navy"
		}
		w.Preferences.Providers = []string{[]string{"aws", "azure"}[i%3/2]}
		id := fmt.Sprintf("p-%02d", 6-i) // ids in the reverse order of creation
		if _, err := e.store.Place(ctx, id, w); err != nil {
			t.Fatal(err)
		}
		want = append(want, w.Tenant+"/"+id)
	}
	slices.Sort(want) // the order of List: by tenant, then request id
	if _, err := e.store.Release(ctx, "us-navy", "p-03"); err != nil {
		t.Fatal(err)
	}

	placed, released := router.PlacementPlaced, router.PlacementReleased
	for _, tc := range []struct {
		name string
		f    state.PlacementFilter
		keep func(p *router.Placement) bool
	}{
		{"all", state.PlacementFilter{}, func(*router.Placement) bool { return true }},
		{"tenant", state.PlacementFilter{Tenant: "us-navy"}, func(p *router.Placement) bool { return p.Tenant == "us-navy" }},
		{"state", state.PlacementFilter{State: &released}, func(p *router.Placement) bool { return p.State == released }},
		{"tenant and state", state.PlacementFilter{Tenant: "us-army", State: &placed}, func(p *router.Placement) bool {
			return p.Tenant == "us-army" && p.State == placed
		}},
		{"region", state.PlacementFilter{Region: "azure/secret-west"}, func(p *router.Placement) bool { return p.Regions[0] == "azure/secret-west" }},
		{"region and tenant", state.PlacementFilter{Region: "aws/secret-east", Tenant: "us-army"}, func(p *router.Placement) bool {
			return p.Regions[0] == "aws/secret-east" && p.Tenant == "us-army"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var expect []string
			for _, key := range want {
				p, err := e.store.GetPlacement("", key[strings.Index(key, "/")+1:]) // each id is one tenant's
				if err != nil {
					t.Fatal(err)
				}
				if tc.keep(p) {
					expect = append(expect, key)
				}
			}
			var got []string
			token := ""
			for pages := 0; ; pages++ {
				page, err := e.store.ListPlacements(tc.f, 2, token)
				items, next := page.Placements, page.Next
				if err != nil {
					t.Fatal(err)
				}
				if len(items) > 2 || pages > 10 {
					t.Fatalf("page of %d items, page %d", len(items), pages)
				}
				for _, p := range items {
					got = append(got, p.Tenant+"/"+p.ID)
				}
				if next == "" {
					break
				}
				token = next
			}
			if !slices.Equal(got, expect) {
				t.Errorf("listed %v; want %v", got, expect)
			}
		})
	}
	if _, err := e.store.ListPlacements(state.PlacementFilter{}, 2, "!!"); err == nil {
		t.Error("a bad page token was accepted")
	}
}

func TestCatalogue(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	r := secretRegion("aws", "secret-east", big)
	var inv *router.InvalidError
	if _, err := e.store.PutRegion(ctx, &r); !errors.As(err, &inv) || inv.Violations[0].Field != "region.provider" {
		t.Errorf("PutRegion without its provider = %v; want an invalid region.provider", err)
	}
	p := provider("aws")
	if err := e.store.PutProvider(ctx, &p); err != nil {
		t.Fatal(err)
	}
	rev, err := e.store.PutRegion(ctx, &r)
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.store.GetRegion("aws/secret-east")
	if err != nil || st.Rev != rev || st.UsageRev != rev || st.Region.Cost != 1 {
		t.Fatalf("GetRegion right after PutRegion = %+v, %v; want revision %d", st, err, rev)
	}
	// Replacing the region keeps its usage.
	tn := army()
	if err := e.store.PutTenant(ctx, &tn); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Place(ctx, "a", secretWorkload(t, "w")); err != nil {
		t.Fatal(err)
	}
	r.Capacity = router.Resources{MilliCPU: 1, MemoryMiB: 1} // below what is used: allowed
	if _, err := e.store.PutRegion(ctx, &r); err != nil {
		t.Fatal(err)
	}
	st, _ = e.store.GetRegion("aws/secret-east")
	if st.Used != unit || st.Region.Capacity != r.Capacity {
		t.Errorf("after replacing: %+v", st)
	}
	if _, err := e.store.Place(ctx, "b", secretWorkload(t, "w")); !errors.Is(err, router.ErrNoEligibleRegion) {
		t.Errorf("Place into a region over capacity = %v; want a refusal", err)
	}
	regions, lrev := e.store.ListRegions()
	if len(regions) != 1 || lrev != e.store.Revision() {
		t.Errorf("ListRegions = %d regions at %d", len(regions), lrev)
	}
	if ps := e.store.ListProviders(); len(ps) != 1 || ps[0].ID != "aws" {
		t.Errorf("ListProviders = %+v", ps)
	}
	if ts := e.store.ListTenants(); len(ts) != 1 || ts[0].ID != "us-army" {
		t.Errorf("ListTenants = %+v", ts)
	}
	bad := r
	bad.Accreditation.Expires = time.Time{}
	var invalid *router.InvalidError
	if _, err := e.store.PutRegion(ctx, &bad); !errors.As(err, &invalid) {
		t.Errorf("PutRegion of an invalid region = %v; want InvalidError", err)
	}
}

func TestSeed(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	var regions []router.Region
	for i := range 150 { // 300 operations: three transactions
		regions = append(regions, secretRegion("aws", fmt.Sprintf("r-%03d", i), big))
	}
	ok, err := e.store.Seed(ctx, []router.Provider{provider("aws")}, regions, []router.Tenant{army()})
	if err != nil || !ok {
		t.Fatalf("Seed = %v, %v", ok, err)
	}
	if got, _ := e.store.ListRegions(); len(got) != len(regions) {
		t.Errorf("%d regions after seeding %d", len(got), len(regions))
	}
	if _, n := e.usage("aws/r-149"); n != 0 {
		t.Errorf("seeded usage %d", n)
	}
	resp, err := e.other.Get(ctx, e.prefix+"seeded")
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), "complete") {
		t.Errorf("seeded marker %v, %v", resp.Kvs, err)
	}
	ok, err = e.store.Seed(ctx, []router.Provider{provider("azure")}, nil, nil)
	if err != nil || ok {
		t.Errorf("second Seed = %v, %v; want false", ok, err)
	}
	if _, err := e.store.GetProvider("azure"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("second seed wrote: %v", err)
	}
}

// TestConcurrentPlacesOneStore places from many goroutines through one
// store, so commits go in batches: with replicas, and with request ids
// placed by several goroutines at once. Every region's usage must equal
// what its placements use, and every request id must hold one placement.
func TestConcurrentPlacesOneStore(t *testing.T) {
	e := newEnv(t, nil)
	var regions []router.Region
	for i := range 8 {
		regions = append(regions, secretRegion([]string{"aws", "azure"}[i%2], fmt.Sprintf("r-%d", i), big))
	}
	e.seed([]router.Provider{provider("aws"), provider("azure")}, regions, []router.Tenant{army()})
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 120)
	for i := range 120 {
		id := fmt.Sprint("p-", i)
		if i%10 == 0 {
			id = fmt.Sprint("shared-", i%30) // three goroutines each
		}
		wg.Go(func() {
			w := secretWorkload(t, "w")
			w.Replicas = 1 + len(id)%3
			_, err := e.store.Place(ctx, id, w)
			if err != nil && !errors.Is(err, router.ErrRequestReused) {
				errs <- fmt.Errorf("%s: %w", id, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	var all []*router.Placement
	for token := ""; ; {
		page, err := e.store.ListPlacements(state.PlacementFilter{}, 50, token)
		items, next := page.Placements, page.Next
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, items...)
		if token = next; token == "" {
			break
		}
	}
	if len(all) != 111 { // 108 distinct ids and 3 shared
		t.Errorf("%d placements; want 111", len(all))
	}
	want := map[string]int64{}
	for _, p := range all {
		if len(p.Regions) != p.Workload.Replicas {
			t.Errorf("%s: %d regions for %d replicas", p.ID, len(p.Regions), p.Workload.Replicas)
		}
		for _, r := range p.Regions {
			want[r]++
		}
	}
	for _, r := range regions {
		used, n := e.usage(r.Key())
		if n != want[r.Key()] || used.MilliCPU != n*unit.MilliCPU {
			t.Errorf("%s: usage %+v over %d placements; %d placements name it", r.Key(), used, n, want[r.Key()])
		}
	}
}
