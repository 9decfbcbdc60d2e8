package state

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
)

// What the purge takes from the cache: released placements released no
// later than the cutoff, oldest first, at most max; never a live one.
func TestDuePurge(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC) }
	released := func(id string, when time.Time) *router.Placement {
		return &router.Placement{ID: id, Tenant: "t", State: router.PlacementReleased, ReleasedAt: when, CreatedAt: at(0)}
	}
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
	} {
		if err := tx.Insert(tablePlacements, &placementRecord{P: p, Rev: 1}); err != nil {
			t.Fatal(err)
		}
	}
	tx.Commit()

	tests := []struct {
		cutoff time.Time
		max    int
		want   []string
	}{
		{at(0), 10, nil},
		{at(1), 10, []string{"c"}},
		{at(3), 10, []string{"c", "b", "a"}},
		{at(3), 2, []string{"c", "b"}},
		{at(10), 10, []string{"c", "b", "a", "no-time", "zoned"}},
		{at(60), 100, []string{"c", "b", "a", "no-time", "zoned", "late"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.cutoff.Format("15:04"), tt.max), func(t *testing.T) {
			tx := db.Txn(false)
			defer tx.Abort()
			due, err := duePurgeTxn(tx, tt.cutoff, tt.max)
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
