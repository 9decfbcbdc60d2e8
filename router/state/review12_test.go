package state_test

import (
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/marking"
	"github.com/classroute/classroute/router/state"
)

// Review12: an accreditation in another scheme than the US expires with
// no write to etcd, as a US one does: the reconciler must wake for it
// too. Here UK OFFICIAL data sits in aws/u1, whose GBR accreditation
// ends in two seconds (its US accreditation runs a year); azure/u2 holds UK
// OFFICIAL for a year. The reconciler wakes only for region.accreditation's
// expiry (state/reconcile.go summarize, noteExpiry, expiredIn), so the
// placement stays where nothing holds it until a sweep.
func TestReview12ReconcilerCatchesSchemeAccreditationExpiry(t *testing.T) {
	s := given(t)
	expires := time.Now().Add(2 * time.Second).UTC()
	uk := func(prov, id string, until time.Time) router.Region {
		r := commercialRegion(prov, id)
		r.Country, r.OperatorNationalities = "GBR", []string{"GBR"}
		r.Accreditations = []router.SchemeAccreditation{{Scheme: marking.GBR, MaxLevel: "OFFICIAL", Authority: "UK department", Expires: until}}
		return r
	}
	u1 := uk("aws", "u1", expires)
	u1.Cost = 0.05 // the first choice
	u2 := uk("azure", "u2", time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second))
	u2.Cost = 5
	mod := router.Tenant{ID: "gbr-mod", Name: "UK MOD", Nation: "GBR", Sector: "defense", Ceiling: "UNCLASSIFIED",
		Ceilings: []router.SchemeCeiling{{Scheme: marking.GBR, Level: "OFFICIAL"}}}
	w := &router.Workload{Name: "w", Tenant: "gbr-mod", Banner: "UK OFFICIAL", AllowedCountries: []string{"GBR"}, Resources: unit, Replicas: 1}
	if err := router.ValidateWorkload(w, ""); err != nil {
		t.Fatal(err)
	}
	s.tenants(mod).regions(u1, u2).placedAs("w", w)
	s.thenPlacement("w", time.Second, placementIn("aws/u1"))
	s.reconciling(state.ReconcilerConfig{Name: "a", Interval: time.Hour, Audit: state.AuditChainConfig{Disabled: true}, AuditIndexDisabled: true}).
		leading()

	// When the GBR accreditation of aws/u1 ends, with no write to etcd,
	// the replica must leave it within a few seconds.
	s.thenPlacement("w", time.Until(expires)+4*time.Second, placementIn("azure/u2"))
}
