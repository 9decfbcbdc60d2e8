package server_test

import (
	"testing"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// A tenant's user sees, of a region's accreditations in other schemes,
// only those within the tenant's ceilings: a Kenyan tenant cleared to
// KEN RESTRICTED does not learn that Konza holds KEN CONFIDENTIAL, and a
// Dutch tenant with no NATO ceiling does not learn of NATO accreditations.
// An administrator sees them all.
func TestSchemeAccreditationsRedacted(t *testing.T) {
	e := newEnv(t)
	got, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "ke-moh"})
	if err != nil {
		t.Fatal(err)
	}
	tn := got.GetTenant()
	tn.Members = []*pb.TenantMember{{Name: "amina", Roles: []string{"tenant-submitter"}}}
	tn.Ceilings = []*pb.SchemeCeiling{{Scheme: "KEN", Level: "RESTRICTED"}}
	if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn}); err != nil {
		t.Fatal(err)
	}
	grantDutch(t, e)
	for _, tc := range []struct {
		caller, region string
		want           int
	}{
		{asAdmin, "ke-gov/konza-1", 1},
		{"/tenant/ke-moh/user/amina", "ke-gov/konza-1", 0},
		{asAdmin, "aws/eusc-de-east-1", 1},
		{asDaan, "aws/eusc-de-east-1", 0},
	} {
		r, err := e.catalog.GetRegion(as(t, tc.caller), &pb.GetRegionRequest{Key: tc.region})
		if err != nil {
			t.Fatalf("%s GetRegion %s: %v", tc.caller, tc.region, err)
		}
		if n := len(r.GetRegion().GetAccreditations()); n != tc.want {
			t.Errorf("%s sees %d accreditations of %s; want %d", tc.caller, n, tc.region, tc.want)
		}
		list, err := e.catalog.ListRegions(as(t, tc.caller), &pb.ListRegionsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, reg := range list.GetRegions() {
			if reg.GetKey() == tc.region && len(reg.GetAccreditations()) != tc.want {
				t.Errorf("%s lists %d accreditations of %s; want %d", tc.caller, len(reg.GetAccreditations()), tc.region, tc.want)
			}
		}
	}
	// Nor may the Kenyan tenant's CONFIDENTIAL go there: above its ceiling.
	w := &pb.Workload{Name: "memo", Tenant: "ke-moh", Label: "CONFIDENTIAL", AllowedStorageCountries: []string{"KEN"},
		Resources: &pb.Resources{MilliCpu: 100, MemoryMib: 128}, Replicas: 1}
	if _, err := e.place.Plan(as(t, "/tenant/ke-moh/user/amina"), &pb.PlanRequest{Workload: w}); err == nil {
		t.Error("Plan of KEN CONFIDENTIAL above the tenant's KEN ceiling: no error")
	}
}
