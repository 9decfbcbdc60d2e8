package state_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/label"
)

func as(name string) context.Context {
	return authz.NewContext(context.Background(), &authz.Principal{ID: "spiffe://test/admin/" + name, Kind: "admin", Name: name, Roles: []authz.Role{authz.RoleCatalogAdmin}})
}

func TestTwoPersonRegionChanges(t *testing.T) {
	e := newEnv(t, nil)
	s1 := secretRegion("aws", "s1", big)
	e.seed([]router.Provider{provider("aws")}, []router.Region{s1}, []router.Tenant{army()})
	alice, bob := as("alice"), as("bob")

	// An operational change is not a proposal.
	drained := s1
	drained.Status = router.StatusDraining
	if _, err := e.store.ProposeRegionChange(alice, &drained, ""); err == nil {
		t.Fatal("a status change was accepted as a two-person proposal")
	}

	// Lowering: proposed by alice, not applied until bob approves.
	lower := s1
	lower.Accreditation.MaxLevel = label.CUI
	lower.NetworkDomain = router.DomainInternet
	c, err := e.store.ProposeRegionChange(alice, &lower, "ATO scope reduced")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != router.ChangeLower || c.State != router.ChangePending || c.ProposedBy != "spiffe://test/admin/alice" ||
		!slices.Contains(c.Fields, "accreditation.max_level") || !slices.Contains(c.Fields, "network_domain") {
		t.Fatalf("proposal %+v", c)
	}
	if st, _ := e.store.GetRegion("aws/s1"); st.Region.Accreditation.MaxLevel != label.Secret {
		t.Fatal("the proposal changed the region")
	}
	if _, err := e.store.ApproveChange(alice, c.ID); !errors.Is(err, router.ErrPermissionDenied) {
		t.Fatalf("self-approval: %v; want ErrPermissionDenied", err)
	}
	done, err := e.store.ApproveChange(bob, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != router.ChangeApplied || done.DecidedBy != "spiffe://test/admin/bob" {
		t.Fatalf("approved %+v", done)
	}
	if st, _ := e.store.GetRegion("aws/s1"); st.Region.Accreditation.MaxLevel != label.CUI {
		t.Fatalf("approved change not applied: %v", st.Region.Accreditation.MaxLevel)
	}
	if _, err := e.store.ApproveChange(bob, c.ID); !errors.Is(err, router.ErrChangeNotPending) {
		t.Fatalf("second approval: %v", err)
	}

	// A proposal overtaken by another change is never applied.
	revoke := lower
	revoke.Accreditation.Revoked = true
	c2, err := e.store.ProposeRegionChange(alice, &revoke, "")
	if err != nil {
		t.Fatal(err)
	}
	if c2.Kind != router.ChangeRevoke {
		t.Fatalf("kind %s", c2.Kind)
	}
	lower.Capacity = unit // an operational change lands first
	e.putRegion(lower)
	if _, err := e.store.ApproveChange(bob, c2.ID); !errors.Is(err, router.ErrChangeNotPending) {
		t.Fatalf("stale approval: %v; want ErrChangeNotPending", err)
	}
	if st, _ := e.store.GetRegion("aws/s1"); st.Region.Accreditation.Revoked {
		t.Fatal("a superseded proposal was applied")
	}
	if got, _ := e.store.GetChange(context.Background(), c2.ID); got.State != router.ChangeRejected {
		t.Fatalf("superseded proposal state %s", got.State)
	}

	// Adding a region is a proposal too; a rejected one is never applied.
	s2 := secretRegion("aws", "s2", big)
	c3, err := e.store.ProposeRegionChange(alice, &s2, "new enclave")
	if err != nil || c3.Kind != router.ChangeAdd {
		t.Fatalf("add: %+v %v", c3, err)
	}
	if _, err := e.store.RejectChange(bob, c3.ID, "not accredited yet"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ApproveChange(bob, c3.ID); !errors.Is(err, router.ErrChangeNotPending) {
		t.Fatalf("approve rejected: %v", err)
	}
	if _, err := e.store.GetRegion("aws/s2"); !errors.Is(err, router.ErrNotFound) {
		t.Fatalf("rejected region exists: %v", err)
	}
	c4, err := e.store.ProposeRegionChange(alice, &s2, "new enclave, accredited")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ApproveChange(bob, c4.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := e.store.GetRegion("aws/s2"); err != nil || st.UsageRev == 0 {
		t.Fatalf("added region: %+v %v (a usage record is created with it)", st, err)
	}

	// Both people are in the audit trail.
	entries, err := e.store.ListAudit(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string][]string{}
	for _, a := range entries {
		ops[a.Op] = append(ops[a.Op], a.Actor)
	}
	if len(ops[audit.OpChangeProposed]) != 4 || len(ops[audit.OpChangeApproved]) != 2 || len(ops[audit.OpChangeRejected]) != 2 {
		t.Fatalf("audit ops %v", ops)
	}
	for _, who := range ops[audit.OpChangeApproved] {
		if who != "spiffe://test/admin/bob" {
			t.Errorf("approval recorded as %q", who)
		}
	}
	list, err := e.store.ListChanges(context.Background(), router.ChangePending, 0)
	if err != nil || len(list) != 0 {
		t.Fatalf("pending: %v %v", list, err)
	}
}
