package state_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
)

// A tenant whose policy caps its live placements is refused a Place
// beyond the cap (audited as a refusal), still gets back a placement it
// already made, and may place again once one is released.
func TestTenantPlacementCap(t *testing.T) {
	e := newEnv(t, nil)
	tn := army()
	tn.MaxPlacements = 2
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{tn})
	ctx := context.Background()
	e.place("a", secretWorkload(t, "w-a"))
	e.place("b", secretWorkload(t, "w-b"))
	_, err := e.store.Place(ctx, "c", secretWorkload(t, "w-c"))
	if !errors.Is(err, router.ErrPlacementCap) || !strings.Contains(err.Error(), "tenant us-army holds 2 live placements, its cap (max_placements)") {
		t.Fatalf("third Place: %v; want ErrPlacementCap naming the cap", err)
	}
	if ops := e.auditOps(); ops[audit.OpRefuse] != 1 {
		t.Errorf("audit %v; want the refusal on the record", ops)
	}
	// A retry of a placement made is answered, at the cap too.
	if p, err := e.store.Place(ctx, "b", secretWorkload(t, "w-b")); err != nil || p.ID != "b" {
		t.Errorf("Place b again: %v, %v; want b", p, err)
	}
	if _, err := e.store.Release(ctx, "us-army", "a"); err != nil {
		t.Fatal(err)
	}
	// Released placements do not count.
	e.place("c", secretWorkload(t, "w-c"))
	if _, err := e.store.Place(ctx, "d", secretWorkload(t, "w-d")); !errors.Is(err, router.ErrPlacementCap) {
		t.Errorf("Place d: %v; want ErrPlacementCap", err)
	}
	// Another tenant is not held to it.
	other := army()
	other.ID = "us-navy"
	if err := e.store.PutTenant(ctx, &other); err != nil {
		t.Fatal(err)
	}
	w := secretWorkload(t, "w-n")
	w.Tenant = "us-navy"
	for _, id := range []string{"n1", "n2", "n3"} {
		if _, err := e.store.Place(ctx, id, w); err != nil {
			t.Errorf("us-navy Place %s: %v", id, err)
		}
	}
}
