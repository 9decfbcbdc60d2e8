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
	e := newEnv(t, nil)
	s1 := secretRegion("aws", "s1", big)
	s1.Cost = 0.5
	e.seed([]router.Provider{provider("aws"), provider("azure")}, []router.Region{s1, secretRegion("azure", "s2", big)}, []router.Tenant{army()})
	e.place("w", secretWorkload(t, "w"))
	a, err := e.store.ConnectAgent(context.Background(), "azure/s2", "agent-s2", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	reconcile(t, e.store, state.ReconcilerConfig{Name: "a", Interval: 50 * time.Millisecond})

	drained := s1
	drained.Status = router.StatusDraining
	e.putRegion(drained)
	eventually(t, 10*time.Second, func() (bool, string) {
		p := e.placements()["w"].P
		return p.Moves == 1, fmt.Sprintf("%+v", p)
	})
	time.Sleep(300 * time.Millisecond)
	if p := e.placements()["w"].P; len(p.Retiring) != 1 {
		t.Fatalf("retiring %+v, replicas %+v: the old copy went before s2's connected agent acknowledged the new one", p.Retiring, p.Replicas)
	}
	if err := a.Ack(context.Background(), "w", router.ReplicaRunning, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		p := e.placements()["w"].P
		return len(p.Retiring) == 0, fmt.Sprintf("%+v", p.Retiring)
	})
	e.checkUsage("aws/s1", "azure/s2")
}
