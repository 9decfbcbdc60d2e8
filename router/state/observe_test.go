package state_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// recorder is an Observer that counts what it is told.
type recorder struct {
	mu                  sync.Mutex
	decided, committed  int
	committedOK, failed int
}

func (r *recorder) Decided(time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decided++
}

func (r *recorder) Committed(_ time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.committed++
	if ok {
		r.committedOK++
	} else {
		r.failed++
	}
}

// Place reports each decision and commit to the observer; Stats counts
// live agents and flagged placements from the cache.
func TestObserverAndStats(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, nil, state.WithObserver(rec), state.WithProgressEvery(20*time.Millisecond))
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
	ctx := context.Background()
	if _, err := e.store.Place(ctx, "a", secretWorkload(t, "w")); err != nil {
		t.Fatal(err)
	}
	w := secretWorkload(t, "w")
	w.Replicas = 2 // one region: refused, decided but never committed
	if _, err := e.store.Place(ctx, "b", w); err == nil {
		t.Fatal("two replicas in one region placed")
	}
	rec.mu.Lock()
	if rec.decided != 2 || rec.committed != 1 || rec.committedOK != 1 {
		t.Errorf("observer: %d decided, %d committed (%d ok); want 2, 1 (1)", rec.decided, rec.committed, rec.committedOK)
	}
	rec.mu.Unlock()

	p, err := e.store.GetPlacement("us-army", "a")
	if err != nil {
		t.Fatal(err)
	}
	stranded, violating := *p, *p
	stranded.ID, stranded.State = "s", router.PlacementStranded
	violating.ID, violating.State = "v", router.PlacementViolation
	e.putJSON("placements/us-army/s", stranded)
	e.putJSON("placements/us-army/v", violating)
	rev := e.putJSON("live/aws/secret-east", map[string]any{"agent": "agent-1", "lease": 1, "healthy": true})
	waitFor(t, e.store, rev)

	deadline := time.Now().Add(5 * time.Second)
	for e.store.Stats().EtcdRevision < rev && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the next freshness read
	}
	st := e.store.Stats()
	if !st.Ready || st.Revision < rev || st.EtcdRevision < rev || !st.EtcdReachable || st.FreshnessAge > time.Second {
		t.Errorf("Stats %+v; want ready, at revision %d or later, confirmed just now", st, rev)
	}
	if st.LiveAgents != 1 || st.Stranded != 1 || st.Violating != 1 {
		t.Errorf("Stats counts %d live agents, %d stranded, %d violating; want 1 each", st.LiveAgents, st.Stranded, st.Violating)
	}
}
