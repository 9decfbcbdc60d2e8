package state_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// TestListPlacementsPaged lists placements of two replicas each (so
// that a placement is under two regions), live and released, of two
// tenants, by every filter and at every page size, and checks each list
// against the filter applied to them all: every placement once, in key
// order, whichever indexes the list walks and wherever its pages end.
func TestListPlacementsPaged(t *testing.T) {
	e := newEnv(t, nil)
	navy := router.Tenant{ID: "us-navy", Name: "US Navy", Nation: "USA", Sector: "defense", Ceiling: "SECRET//NOFORN"}
	e.seed([]router.Provider{provider("aws"), provider("azure")},
		[]router.Region{secretRegion("aws", "a", big), secretRegion("aws", "b", big), secretRegion("azure", "c", big)},
		[]router.Tenant{army(), navy})
	ctx := context.Background()
	for i := range 12 {
		w := secretWorkload(t, "w")
		w.Replicas = 2
		if i%3 == 1 {
			w.Tenant = "us-navy"
		}
		w.Preferences.Providers = []string{[]string{"aws", "azure"}[i%2]}
		id := fmt.Sprintf("p-%02d", (i*7)%12)
		if _, err := e.store.Place(ctx, id, w); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			if _, err := e.store.Release(ctx, w.Tenant, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := listAll(t, e.store)
	if len(all) != 12 {
		t.Fatalf("%d placements; want 12", len(all))
	}
	placed, released := router.PlacementPlaced, router.PlacementReleased
	filters := []state.PlacementFilter{
		{Tenant: "us-army"}, {Tenant: "us-navy"},
		{State: &placed}, {State: &released},
		{Tenant: "us-navy", State: &released},
	}
	for _, r := range []string{"aws/a", "aws/b", "azure/c"} {
		filters = append(filters, state.PlacementFilter{Region: r}, state.PlacementFilter{Region: r, State: &released})
	}
	for _, f := range filters {
		var want []string
		for _, p := range all {
			if (f.Tenant == "" || p.Tenant == f.Tenant) && (f.State == nil || p.State == *f.State) &&
				(f.Region == "" || slices.Contains(p.Regions, f.Region)) {
				want = append(want, p.Tenant+"/"+p.ID)
			}
		}
		for size := 1; size <= 4; size++ {
			var got []string
			token := ""
			for pages := 0; ; pages++ {
				page, err := e.store.ListPlacements(f, size, token)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Placements) > size || pages > 20 {
					t.Fatalf("%+v: page of %d items, page %d", f, len(page.Placements), pages)
				}
				for _, p := range page.Placements {
					got = append(got, p.Tenant+"/"+p.ID)
				}
				if token = page.Next; token == "" {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s, pages of %d: listed %v; want %v", describeFilter(f), size, got, want)
			}
		}
	}
}

func describeFilter(f state.PlacementFilter) string {
	s := fmt.Sprintf("tenant %q region %q", f.Tenant, f.Region)
	if f.State != nil {
		s += " state " + f.State.String()
	}
	return s
}
