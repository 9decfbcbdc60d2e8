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
	// Given a placement in aws/s1, the only SECRET region,
	s := given(t).
		regions(secretRegion("aws", "s1", big), commercialRegion("aws", "c1")).
		placed("w").
		reconciling(state.ReconcilerConfig{Name: "a", Interval: 100 * time.Millisecond})

	// when aws/s1 is drained, with nowhere else to go,
	s.whenDrained("aws/s1")

	// then the placement is stranded, and its tenant may not be deleted;
	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) {
		return p.State == router.PlacementStranded, fmt.Sprintf("%+v", p)
	})
	err := s.store.DeleteTenant(context.Background(), "us-army")
	if !errors.Is(err, router.ErrInUse) {
		t.Errorf("DeleteTenant with a stranded placement: %v, want ErrInUse", err)
	}

	// whatever happened, when its region stops covering it, then the
	// placement is still flagged.
	s.whenRevoked("aws/s1")
	s.thenPlacement("w", 5*time.Second, func(p router.Placement) (bool, string) {
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
	ctx := context.Background()
	const n = 60
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("w%d", i))
	}
	s2 := secretRegion("azure", "s2", big)
	s2.Cost = 0.7
	// Given placements in aws/s1, the cheapest of three SECRET regions;
	// azure/s2 with an agent (a health record: its copies wait for acks);
	// a second daemon b, and a running reconciler,
	s := given(t).
		regions(cheaper(secretRegion("aws", "s1", big)), s2, secretRegion("gcp", "s3", big)).
		agentIn("azure/s2")
	b := s.open(s.other)
	s.reconciling(state.ReconcilerConfig{Name: "a", Interval: 50 * time.Millisecond}).
		placed(ids...)

	// when the regions drain and come back, round after round, while b
	// releases half the placements and places others,
	regions := []router.Region{s.catalog["aws/s1"], s.catalog["azure/s2"], s.catalog["gcp/s3"]}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := range 6 {
			for _, r := range regions {
				if (round+len(r.ID))%3 == 0 {
					r.Status = router.StatusDraining
				}
				if _, err := s.store.PutRegion(ctx, &r); err != nil {
					t.Error(err)
					return
				}
			}
			time.Sleep(70 * time.Millisecond)
		}
		for _, r := range regions {
			if _, err := s.store.PutRegion(ctx, &r); err != nil {
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

	// then, the reconciler stopped (a still record to read), each
	// region's usage is the sum over the live placements.
	s.stopReconciling()
	s.thenUsageExact("aws/s1", "azure/s2", "gcp/s3")
}
