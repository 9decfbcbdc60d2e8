package providers

import (
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/marking"
)

// Review12: a caveat-less foreign classified label has AnyNation
// (router/marking), so once an entry reads it into the US scheme it may
// rest on any region whose US accreditation holds the mapped level,
// whoever operates it. The AUS→US agreement lets the US hold AUS SECRET;
// it does not release it to UK operators (the third-party rule), yet
// [SEC=SECRET] lands on aws/uk-classified-1 (GBR-operated, in the UK)
// through AUS→US, where the US scheme's own SECRET (no REL TO) may not
// go. Likewise UK SECRET reaches the Australian-operated aws/ap-tsc-au-1
// through GBR→US.
func TestReview12CaveatlessForeignLabelThroughEntryToThirdNation(t *testing.T) {
	cat := mustDefault(t)
	tenants := map[string]*router.Tenant{}
	for i := range cat.Tenants {
		tenants[cat.Tenants[i].ID] = &cat.Tenants[i]
	}
	table, err := equiv.NewTable(equiv.Default())
	if err != nil {
		t.Fatal(err)
	}
	regions := make([]router.RegionState, len(cat.Regions))
	for i := range cat.Regions {
		regions[i] = router.RegionState{Region: &cat.Regions[i]}
	}
	for _, tc := range []struct {
		tenant, marking, region string
	}{
		{"aus-defence", "[SEC=SECRET]", "aws/uk-classified-1"},
		{"gbr-mod", "UK SECRET", "aws/ap-tsc-au-1"},
	} {
		w := &router.Workload{Name: "w", Tenant: tc.tenant, Banner: tc.marking, AllowedCountries: []string{"*"},
			Resources: router.Resources{MilliCPU: 100}, Replicas: 1}
		if err := router.ValidateWorkload(w, tenants[tc.tenant].DefaultScheme()); err != nil {
			t.Fatal(err)
		}
		in := router.Input{Workload: w, Tenant: tenants[tc.tenant], Regions: regions, Now: exampleNow, Equivalence: table}
		d := router.NewEngine().Plan(in)
		for _, e := range d.Explain(&in) {
			if e.Key == tc.region && e.Eligible {
				t.Errorf("%s (%s) is eligible on %s via %q: operated by a third nation's nationals",
					tc.marking, marking.Scheme(w.Scheme), tc.region, e.Via)
			}
		}
	}
}
