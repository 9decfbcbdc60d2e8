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
