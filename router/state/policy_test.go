package state_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/state"
)

// TestTenantPolicy checks that Place and Plan hold a tenant to the
// policy in its record as the snapshot holds it: the ceiling, the
// operator-set restrictions, and which of its users may submit.
func TestTenantPolicy(t *testing.T) {
	e := newEnv(t, nil)
	army := army()
	army.Ceiling = "SECRET//NOFORN"
	army.Members = []router.TenantMember{
		{Name: "sub", Roles: []authz.Role{authz.RoleSubmitter}},
		{Name: "aud", Roles: []authz.Role{authz.RoleTenantAuditor}},
	}
	e.seed([]router.Provider{provider("aws"), provider("azure")},
		[]router.Region{secretRegion("aws", "s1", big), secretRegion("azure", "s2", big)},
		[]router.Tenant{army})
	user := func(tenant, name string) context.Context {
		return authz.NewContext(context.Background(), &authz.Principal{
			ID: "spiffe://td/tenant/" + tenant + "/user/" + name, Kind: authz.KindTenant, Tenant: tenant, Name: name})
	}
	secret := secretWorkload(t, "w")
	ts := secretWorkload(t, "ts")
	ts.Banner = "TOP SECRET//NOFORN"
	if err := router.ValidateWorkload(ts, "US"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		ctx     context.Context
		w       *router.Workload
		wantErr string // "" for success; else a part of a PermissionDenied message
	}{
		{"system within the ceiling", context.Background(), secret, ""},
		{"submitter within the ceiling", user("us-army", "sub"), secret, ""},
		{"above the ceiling", context.Background(), ts, "above tenant us-army's ceiling SECRET//NOFORN"},
		{"submitter above the ceiling", user("us-army", "sub"), ts, "ceiling SECRET//NOFORN"},
		{"auditor may not submit", user("us-army", "aud"), secret, "does not grant aud the tenant-submitter role"},
		{"not a member", user("us-army", "nobody"), secret, "does not grant nobody"},
		{"another tenant's user", user("us-navy", "sub"), secret, "for tenant us-navy only"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, perr := e.store.Plan(tt.ctx, tt.w)
			_, err := e.store.Place(tt.ctx, "req-"+string(rune('a'+i)), tt.w)
			for what, err := range map[string]error{"Plan": perr, "Place": err} {
				switch {
				case tt.wantErr == "" && err != nil:
					t.Errorf("%s: %v", what, err)
				case tt.wantErr != "" && (!errors.Is(err, router.ErrPermissionDenied) || !strings.Contains(err.Error(), tt.wantErr)):
					t.Errorf("%s: got %v; want permission denied with %q", what, err, tt.wantErr)
				}
			}
		})
	}

	// Every Place refused for policy is on the record.
	entries, err := e.store.ListAudit(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var ceilingRefusals int
	for _, a := range entries {
		if a.Op == audit.OpRefuse && len(a.Reasons) == 1 && strings.Contains(a.Reasons[0], "ceiling") {
			ceilingRefusals++
		}
	}
	if ceilingRefusals < 2 {
		t.Errorf("%d ceiling refusals audited; want one per Place above the ceiling", ceilingRefusals)
	}

	// Operator-set restrictions hold whatever the workload asks, and
	// never widen: deny azure, allow only aws/s1.
	restrict := func(f func(*router.Tenant)) {
		t.Helper()
		cur, err := e.store.GetTenant("us-army")
		if err != nil {
			t.Fatal(err)
		}
		next := *cur
		f(&next)
		if err := router.ValidateTenant(&next); err != nil {
			t.Fatal(err)
		}
		if err := e.store.PutTenant(context.Background(), &next); err != nil {
			t.Fatal(err)
		}
		if err := e.store.WaitFor(context.Background(), e.store.Revision()); err != nil {
			t.Fatal(err)
		}
	}
	restrict(func(t *router.Tenant) { t.DeniedProviders = []string{"aws"} })
	w := secretWorkload(t, "w2")
	w.Preferences.Providers = []string{"aws"}
	plan := waitPlan(t, e.store, w, func(p state.Plan) bool { return slices.Equal(p.Chosen, []string{"azure/s2"}) })
	for _, v := range plan.Regions {
		if v.Key == "aws/s1" && (v.Eligible || v.Reasons[0].Code != router.ReasonPolicy) {
			t.Errorf("aws/s1: got %+v; want ineligible for policy", v)
		}
	}
	restrict(func(t *router.Tenant) { t.DeniedProviders, t.AllowedRegions = nil, []string{"aws/s1"} })
	waitPlan(t, e.store, w, func(p state.Plan) bool { return slices.Equal(p.Chosen, []string{"aws/s1"}) })
	restrict(func(t *router.Tenant) { t.DeniedRegions = []string{"aws/s1"} })
	plan = waitPlan(t, e.store, w, func(p state.Plan) bool { return p.Refusal != nil })
	if !errors.Is(plan.Refusal, router.ErrNoEligibleRegion) || !strings.Contains(plan.Refusal.Error(), "policy 2") {
		t.Errorf("refusal: got %v; want no eligible region, policy 2", plan.Refusal)
	}
}

// waitPlan plans w until ok accepts the plan (the cache catches up).
func waitPlan(t *testing.T, s *state.Store, w *router.Workload, ok func(state.Plan) bool) state.Plan {
	t.Helper()
	var p state.Plan
	var err error
	for range 100 {
		if p, err = s.Plan(context.Background(), w); err == nil && ok(p) {
			return p
		}
		if err := s.WaitFor(context.Background(), s.Revision()); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("plan: got %+v, %v", p, err)
	return p
}
