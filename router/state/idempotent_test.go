package state_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// A daemon whose cache lags (still within its stale bound) must not
// refuse a request id another daemon has already placed: the answer is
// that placement. Here the lagging store saw the region full, and not
// the release and the placement that followed.
func TestRequestIDPlacedElsewhereIsNotRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", unit)}, []router.Tenant{army()})
	var stall atomic.Bool
	b := e.open(e.other, state.WithBeforeApply(func(watch context.Context) {
		if stall.Load() {
			<-watch.Done()
		}
	}))
	e.place("y", secretWorkload(t, "y")) // fills s1
	waitFor(t, b, e.store.Revision())

	stall.Store(true)
	if _, err := e.store.Release(context.Background(), "us-army", "y"); err != nil {
		t.Fatal(err)
	}
	x := e.place("x", secretWorkload(t, "x"))
	if b.Ready() != nil {
		t.Fatal("b not ready: the test needs a lagging but ready store")
	}
	got, err := b.Place(context.Background(), "x", secretWorkload(t, "x"))
	if err != nil {
		t.Fatalf("lagging store: %v; want the placement already made", err)
	}
	if got.ID != "x" || got.Regions[0] != x.Regions[0] || got.CreatedAt != x.CreatedAt {
		t.Fatalf("got %+v; want %+v", got, x)
	}
	stall.Store(false)
}
