package state_test

import (
	"context"
	"errors"
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/label"
)

// The two-person rule compares who proposed and who approves by kind,
// tenant, name and region, never by how the ID happens to be spelled:
// even a principal whose ID string differs from the proposer's (which
// the edge no longer lets in) is the proposer when its parts are.
func TestTwoPersonComparesPrincipalsNotSpellings(t *testing.T) {
	e := newEnv(t, nil)
	s1 := secretRegion("aws", "s1", big)
	e.seed([]router.Provider{provider("aws")}, []router.Region{s1}, []router.Tenant{army()})
	lower := s1
	lower.Accreditation.MaxLevel = label.CUI
	c, err := e.store.ProposeRegionChange(as("alice"), &lower, "ATO scope reduced")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{
		"spiffe://test/admin/al%69ce",
		"spiffe://test/admin/alice?",
		"SPIFFE://test/admin/alice",
		"spiffe://elsewhere/admin/alice",
	} {
		alice := authz.NewContext(context.Background(), &authz.Principal{ID: id, Kind: authz.KindAdmin, Name: "alice", Roles: []authz.Role{authz.RoleCatalogAdmin}})
		if _, err := e.store.ApproveChange(alice, c.ID); !errors.Is(err, router.ErrPermissionDenied) {
			t.Errorf("approval by alice as %s: %v; want ErrPermissionDenied", id, err)
		}
	}
	got, err := e.store.GetChange(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != router.ChangePending {
		t.Fatalf("change is %s (decided by %s); want pending", got.State, got.DecidedBy)
	}
	if _, err := e.store.ApproveChange(as("bob"), c.ID); err != nil {
		t.Fatalf("approval by bob: %v", err)
	}
}
