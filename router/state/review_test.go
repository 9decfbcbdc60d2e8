package state_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// A tenant whose only placement is stranded (live, not "placed") must
// not be deletable: the reconciler rechecks a placement against its
// tenant, and without one it can never flag it again.
func TestDeleteTenantRefusedWhileAPlacementIsStranded(t *testing.T) {
	e := newEnv(t, nil)
	s1 := secretRegion("aws", "s1", big)
	e.seed([]router.Provider{provider("aws")}, []router.Region{s1, commercialRegion("aws", "c1")}, []router.Tenant{army()})
	e.place("w", secretWorkload(t, "w"))
	reconcile(t, e.store, state.ReconcilerConfig{Name: "a", Interval: 100 * time.Millisecond})

	drained := s1
	drained.Status = router.StatusDraining // nowhere else to go: stranded
	e.putRegion(drained)
	eventually(t, 10*time.Second, func() (bool, string) {
		p := e.placements()["w"].P
		return p.State == router.PlacementStranded, fmt.Sprintf("%+v", p)
	})
	err := e.store.DeleteTenant(context.Background(), "us-army")
	if !errors.Is(err, router.ErrInUse) {
		t.Errorf("DeleteTenant with a stranded placement: %v, want ErrInUse", err)
	}
	// Whatever happened, the placement must still be flagged when its
	// region stops covering it.
	revoked := drained
	revoked.Accreditation.Revoked = true
	e.putRegion(revoked)
	eventually(t, 5*time.Second, func() (bool, string) {
		p := e.placements()["w"].P
		return p.State == router.PlacementViolation, fmt.Sprintf("%+v", p)
	})
}

// A region whose agent is connected but has not reported yet (no health
// record) has an agent to acknowledge the replacement: the old copy must
// not be released on the strength of "no agent".
func TestReconcileWaitsForAConnectedAgentThatHasNotReported(t *testing.T) {
	// Given a placement in aws/s1, the cheaper of two SECRET regions, and
	// an agent connected for azure/s2 that has not reported,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
		placed("w")
	a := s.agentConnected("azure/s2", "agent-s2")
	s.reconciling(state.ReconcilerConfig{Name: "a", Interval: 50 * time.Millisecond})

	// when aws/s1 is drained,
	s.whenDrained("aws/s1")

	// then the placement moves to azure/s2,
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		return p.Moves == 1, fmt.Sprintf("%+v", p)
	})
	// and several passes later the old copy is still there.
	time.Sleep(300 * time.Millisecond)
	if p := s.placements()["w"].P; len(p.Retiring) != 1 {
		t.Fatalf("retiring %+v, replicas %+v: the old copy went before s2's connected agent acknowledged the new one", p.Retiring, p.Replicas)
	}

	// When the agent acknowledges the new replica running, then the old copy goes.
	if err := a.Ack(context.Background(), "us-army", "w", router.ReplicaRunning, ""); err != nil {
		t.Fatal(err)
	}
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		return len(p.Retiring) == 0, fmt.Sprintf("%+v", p.Retiring)
	})
	s.thenUsageExact("aws/s1", "azure/s2")
}

// Moves, retirements, releases and placements from two stores racing:
// usage stays the sum over the live placements.
func TestReconcileUsageUnderRacingReleasesAndPlacements(t *testing.T) {
	e := newEnv(t, nil)
	s1 := secretRegion("aws", "s1", big)
	s1.Cost = 0.5
	s2 := secretRegion("azure", "s2", big)
	s2.Cost = 0.7
	s3 := secretRegion("gcp", "s3", big)
	e.seed([]router.Provider{provider("aws"), provider("azure"), provider("gcp")}, []router.Region{s1, s2, s3}, []router.Tenant{army()})
	// s2 has an agent (a health record): its copies wait for acks.
	waitFor(t, e.store, e.putJSON("health/azure/s2", router.Health{Healthy: true, Since: time.Now().UTC(), Agent: "agent-s2"}))
	b := e.open(e.other)
	stop := reconcile(t, e.store, state.ReconcilerConfig{Name: "a", Interval: 50 * time.Millisecond})
	ctx := context.Background()
	const n = 60
	for i := range n {
		e.place(fmt.Sprintf("w%d", i), secretWorkload(t, fmt.Sprintf("w%d", i)))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := range 6 {
			for _, r := range []router.Region{s1, s2, s3} {
				if (round+len(r.ID))%3 == 0 {
					r.Status = router.StatusDraining
				}
				if _, err := e.store.PutRegion(ctx, &r); err != nil {
					t.Error(err)
					return
				}
			}
			time.Sleep(70 * time.Millisecond)
		}
		for _, r := range []router.Region{s1, s2, s3} {
			if _, err := e.store.PutRegion(ctx, &r); err != nil {
				t.Error(err)
			}
		}
	}()
	for i := range n {
		id := fmt.Sprintf("w%d", i)
		if i%2 == 0 {
			if _, err := b.Release(ctx, "us-army", id); err != nil {
				t.Errorf("release %s: %v", id, err)
			}
		} else {
			nid := fmt.Sprintf("x%d", i)
			_, _ = b.Place(ctx, nid, secretWorkload(t, nid))
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-done
	time.Sleep(500 * time.Millisecond)
	stop() // a still record to read
	e.checkUsage("aws/s1", "azure/s2", "gcp/s3")
}
