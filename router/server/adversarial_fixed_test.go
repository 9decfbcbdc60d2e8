package server_test

// Found by the adversarial review of issue 8 and fixed with it: a
// tenant's users learned of a hidden provider from Plan's policy
// reasons, and from GetProvider's timing.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/providers"
	"github.com/classroute/classroute/router"
)

// A tenant's allowed_providers may name a provider its users may not
// know of (GetTenant hides it: tenantToProto keeps only known
// providers). The policy rule's explanation lists every allowed
// provider, so Plan's verdicts, and a Place refusal's details, name the
// hidden provider to the tenant's users.
func TestReviewPolicyReasonNamesHiddenProvider(t *testing.T) {
	e := startEnvCatalog(t, shared, false, withHidden)
	got, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "nld-mod"})
	if err != nil {
		t.Fatal(err)
	}
	tn := got.GetTenant()
	tn.Members = []*pb.TenantMember{{Name: "anouk", Roles: []string{"tenant-submitter", "tenant-auditor"}}}
	tn.AllowedProviders = []string{"aws", hidProv}
	if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn}); err != nil {
		t.Fatal(err)
	}
	// What the tenant's user is told of its own record: no hidprov.
	mine, err := e.catalog.GetTenant(as(t, asDutch), &pb.GetTenantRequest{Id: "nld-mod"})
	if err != nil {
		t.Fatal(err)
	}
	if s := prototext.Format(mine); strings.Contains(s, hidProv) {
		t.Fatalf("GetTenant names %s: %s", hidProv, s)
	}
	w := &pb.Workload{Name: "nl", Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"*"},
		Resources: &pb.Resources{MilliCpu: 1000}, Replicas: 1}
	plan, err := e.place.Plan(as(t, asDutch), &pb.PlanRequest{Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range plan.GetRegions() {
		for _, r := range v.GetReasons() {
			if strings.Contains(r.GetMessage(), hidProv) {
				t.Errorf("Plan verdict of %s names the hidden provider: %s: %s", v.GetRegion(), r.GetCode(), r.GetMessage())
				return
			}
		}
	}
}

// GetProvider answers a provider that does not exist at once, but one
// that exists and is hidden only after walking every region
// (knownProviders): the two NOT_FOUNDs differ in time.
func TestReviewGetProviderTimingHiddenVsMissing(t *testing.T) {
	e := startEnvCatalog(t, shared, false, withManyHidden)
	grantDutchAnouk(t, e, "tenant-submitter")
	call := func(id string) time.Duration {
		start := time.Now()
		_, err := e.catalog.GetProvider(as(t, asDutch), &pb.GetProviderRequest{Id: id})
		d := time.Since(start)
		if err == nil {
			t.Fatalf("GetProvider %s: found", id)
		}
		return d
	}
	var hid, missing []time.Duration
	for range 3000 {
		hid = append(hid, call("a-hid"))
		missing = append(missing, call("no-such"))
	}
	slices.Sort(hid)
	slices.Sort(missing)
	h, m := hid[len(hid)/2], missing[len(missing)/2]
	t.Logf("GetProvider NOT_FOUND median: hidden provider %v, missing provider %v (%+v)", h, m, h-m)
	if h-m > 10*time.Microsecond {
		t.Errorf("a hidden provider's NOT_FOUND takes %v longer than a missing one's", h-m)
	}
}

// withManyHidden adds 200 regions of a provider that sorts before every
// other, serving France only: hidden from the Dutch and Kenyan users.
func withManyHidden(c *providers.Catalog) {
	c.Providers = append(c.Providers, router.Provider{ID: "a-hid", Name: "Hidden Cloud", Jurisdiction: "FRA"})
	var base router.Region
	for _, r := range c.Regions {
		if r.Key() == "aws/us-east-1" {
			base = r
		}
	}
	for i := range 200 {
		r := base
		r.Provider, r.ID, r.Name = "a-hid", fmt.Sprintf("fr-%03d", i), "Hidden"
		r.Country, r.OperatorJurisdiction, r.OperatorNationalities = "FRA", "FRA", []string{"FRA"}
		r.Customers = []string{"FRA/defense"}
		c.Regions = append(c.Regions, r)
	}
}

// grantDutchAnouk makes anouk a member of nld-mod with roles.
func grantDutchAnouk(t *testing.T, e *env, roles ...string) {
	t.Helper()
	got, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "nld-mod"})
	if err != nil {
		t.Fatal(err)
	}
	tn := got.GetTenant()
	tn.Members = []*pb.TenantMember{{Name: "anouk", Roles: roles}}
	if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn}); err != nil {
		t.Fatal(err)
	}
}
