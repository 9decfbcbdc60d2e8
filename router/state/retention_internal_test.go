package state

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
)

// What the purge takes from the cache: released placements released no
// later than the cutoff, oldest first, then each tenant's beyond its
// keep most recent; at most max; never a live one.
func TestDuePurge(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC) }
	releasedOf := func(tenant, id string, when time.Time) *router.Placement {
		return &router.Placement{ID: id, Tenant: tenant, State: router.PlacementReleased, ReleasedAt: when, CreatedAt: at(0)}
	}
	released := func(id string, when time.Time) *router.Placement { return releasedOf("t", id, when) }
	noTime := &router.Placement{ID: "no-time", Tenant: "t", State: router.PlacementReleased, CreatedAt: at(0), UpdatedAt: at(4)}
	db := newDB()
	tx := db.Txn(true)
	for _, p := range []*router.Placement{
		released("b", at(2)),
		released("a", at(3)),
		released("c", at(1)),
		noTime, // falls back to its last update, minute 4
		released("late", at(30)),
		{ID: "live", Tenant: "t", State: router.PlacementPlaced, CreatedAt: at(0)},
		{ID: "stranded", Tenant: "t", State: router.PlacementStranded, CreatedAt: at(0)},
		// A time zone other than UTC sorts by the instant.
		released("zoned", at(5).In(time.FixedZone("east", 10*3600))),
		// Tenants whose ids sort on either side of "t/".
		releasedOf("t-x", "x1", at(1)),
		releasedOf("t-x", "x2", at(2)),
		releasedOf("t-x", "x3", at(3)),
		releasedOf("t0", "z1", at(0)),
		{ID: "live0", Tenant: "t0", State: router.PlacementPlaced, CreatedAt: at(0)},
	} {
		if err := tx.Insert(tablePlacements, &placementRecord{P: p, Rev: 1}); err != nil {
			t.Fatal(err)
		}
	}
	tx.Commit()

	var never time.Time
	tests := []struct {
		cutoff time.Time
		keep   int
		max    int
		want   []string
	}{
		{never, 0, 10, nil},
		{at(0), 0, 10, []string{"z1"}},
		{at(1), 0, 10, []string{"z1", "x1", "c"}},
		// Released at the same time: by placement key ("t-x/..." first).
		{at(3), 0, 10, []string{"z1", "x1", "c", "x2", "b", "x3", "a"}},
		{at(3), 0, 2, []string{"z1", "x1"}},
		{at(10), 0, 20, []string{"z1", "x1", "c", "x2", "b", "x3", "a", "no-time", "zoned"}},
		{at(60), 0, 100, []string{"z1", "x1", "c", "x2", "b", "x3", "a", "no-time", "zoned", "late"}},
		// Each tenant's newest keep stay; the rest go, tenant by tenant
		// ("t-x", "t", "t0"), newest first.
		{never, 2, 100, []string{"x1", "no-time", "a", "b", "c"}},
		{never, 5, 100, []string{"c"}},
		{never, 6, 100, nil},
		{never, 2, 3, []string{"x1", "no-time", "a"}},
		// Both: past the cutoff first, then beyond the count, once each.
		{at(1), 2, 100, []string{"z1", "x1", "c", "no-time", "a", "b"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/keep%d/max%d", tt.cutoff.Format("15:04"), tt.keep, tt.max), func(t *testing.T) {
			tx := db.Txn(false)
			defer tx.Abort()
			due, err := duePurgeTxn(tx, purgePolicy{cutoff: tt.cutoff, keep: tt.keep}, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range due {
				got = append(got, p.P.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}
