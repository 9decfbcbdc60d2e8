package router

import (
	"testing"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// Adversarial review of issue 12's wiring (branch review12). Each test
// states what must hold; a failing one is a finding.

// review12Table is the default equivalence table.
func review12Table(tb testing.TB) equiv.Table {
	tb.Helper()
	t, err := equiv.NewTable(equiv.Default())
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// review12Workload is a validated workload of marking m in scheme s.
func review12Workload(tb testing.TB, s marking.Scheme, m string) *Workload {
	tb.Helper()
	w := &Workload{Name: "w", Tenant: "t", Scheme: s, Banner: m, AllowedCountries: []string{"*"},
		Resources: Resources{MilliCPU: 100}, Replicas: 1}
	if err := ValidateWorkload(w, ""); err != nil {
		tb.Fatal(err)
	}
	return w
}

// review12UKRegion is uksouth as the catalogue has it: US UNCLASSIFIED,
// and UK OFFICIAL (with SENSITIVE) from a UK department.
func review12UKRegion() *Region {
	r := baseRegion()
	r.Provider, r.ID, r.Country, r.OperatorJurisdiction = "azure", "uksouth", "GBR", "USA"
	r.OperatorNationalities = []string{"GBR"}
	r.NetworkDomain, r.Personnel = DomainInternet, PersonnelNone
	r.Accreditation = Accreditation{MaxLevel: label.Unclassified, Expires: testNow.AddDate(2, 0, 0)}
	r.Accreditations = []SchemeAccreditation{{Scheme: marking.GBR, MaxLevel: "OFFICIAL", Caveats: []string{"SENSITIVE"},
		Authority: "UK department", Expires: testNow.AddDate(1, 0, 0)}}
	r.Customers = []string{"*"}
	return r
}

func review12Tenant() *Tenant {
	return &Tenant{ID: "t", Nation: "GBR", Sector: "defense", Ceiling: "TOP SECRET//REL TO USA, GBR",
		CeilingLabel: label.MustParse("TOP SECRET//REL TO USA, GBR"),
		Ceilings:     []SchemeCeiling{{Scheme: marking.GBR, Level: "TOP SECRET", Parsed: marking.Level{Name: "TOP SECRET", Rank: 2}}}}
}

// A foreign placement whose region lost the accreditation that held it
// (revoked, or expired) no longer covers the workload: like a US
// placement whose accreditation is revoked, the recheck must say
// violation, so that the reconciler flags it at once.
func TestReview12RecheckForeignAccreditationLostIsViolation(t *testing.T) {
	e := NewEngine()
	w := review12Workload(t, marking.GBR, "OFFICIAL-SENSITIVE")
	for _, tc := range []struct {
		name   string
		mutate func(r *Region)
	}{
		{"GBR accreditation revoked", func(r *Region) { r.Accreditations[0].Revoked = true }},
		{"GBR accreditation expired", func(r *Region) { r.Accreditations[0].Expires = testNow.Add(-1) }},
		{"GBR accreditation withdrawn from the region", func(r *Region) { r.Accreditations = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := review12UKRegion()
			in := Input{Workload: w, Tenant: review12Tenant(), Regions: []RegionState{{Region: r}}, Now: testNow, Equivalence: review12Table(t)}
			if reasons, _ := e.Recheck(in, 0); len(reasons) != 0 {
				t.Fatalf("baseline: reasons %v; want none", reasons)
			}
			tc.mutate(r)
			reasons, violation := e.Recheck(in, 0)
			if len(reasons) == 0 || !violation {
				t.Errorf("Recheck = %v, violation %v; want a violation: the region no longer holds UK OFFICIAL-SENSITIVE", reasons, violation)
			}
		})
	}
}

// Withdrawing (or the expiry of) the equivalence entry a placement was
// made through re-routes it "like an accreditation change (violation
// flagged at once)" (issue 12, part 4).
func TestReview12RecheckEquivalenceWithdrawnIsViolation(t *testing.T) {
	e := NewEngine()
	// UK/US EYES ONLY: a UK SECRET naming no releasability is UK
	// nationals' only, whatever an entry says.
	w := review12Workload(t, marking.GBR, "UK SECRET UK/US EYES ONLY")
	r := baseRegion() // US SECRET, operated by USA nationals
	r.Customers = []string{"*"}
	w.AllowedCountries = []string{"USA"}
	w.Capabilities, w.StorageTier = nil, ""
	in := Input{Workload: w, Tenant: review12Tenant(), Regions: []RegionState{{Region: r}}, Now: testNow, Equivalence: review12Table(t)}
	if reasons, _ := e.Recheck(in, 0); len(reasons) != 0 {
		t.Fatalf("baseline: reasons %v; want none (UK SECRET held as US SECRET through GBR→US)", reasons)
	}
	entries := equiv.Default()
	for i := range entries {
		if entries[i].From == marking.GBR && entries[i].To == marking.US {
			entries[i].Withdrawn = true
		}
	}
	tab, err := equiv.NewTable(entries)
	if err != nil {
		t.Fatal(err)
	}
	in.Equivalence = tab
	reasons, violation := e.Recheck(in, 0)
	if len(reasons) == 0 || !violation {
		t.Errorf("Recheck = %v, violation %v; want a violation: no entry in force reads UK SECRET as US", reasons, violation)
	}
}

// Lowering a tenant's ceiling in another scheme changes what it may
// hold: the reconciler looks again at a tenant's placements only when
// SamePolicy says its policy changed.
func TestReview12SamePolicySchemeCeilings(t *testing.T) {
	a, b := review12Tenant(), review12Tenant()
	b.Ceilings = []SchemeCeiling{{Scheme: marking.GBR, Level: "OFFICIAL", Parsed: marking.Level{Name: "OFFICIAL", Rank: 0}}}
	if a.SamePolicy(b) {
		t.Error("SamePolicy = true after the tenant's GBR ceiling was lowered from TOP SECRET to OFFICIAL; want false")
	}
	b = review12Tenant()
	b.Ceilings = nil
	if a.SamePolicy(b) {
		t.Error("SamePolicy = true after the tenant's GBR ceiling was removed; want false")
	}
}

// A tenant may know of (and use) no accreditation above its ceiling: the
// region stays known by its US accreditation (MayKnow), but its
// accreditations in other schemes are read against the tenant's ceilings
// in those schemes (KnowsAccreditation): one above them neither holds
// the tenant's labels nor is named to its users.
func TestReview12MayKnowReadsSchemeCeilings(t *testing.T) {
	// Konza: US UNCLASSIFIED, KEN CONFIDENTIAL.
	r := review12UKRegion()
	r.Provider, r.ID, r.Country, r.OperatorJurisdiction, r.OperatorNationalities = "konza", "nairobi", "KEN", "KEN", []string{"KEN"}
	r.Accreditations = []SchemeAccreditation{{Scheme: marking.KEN, MaxLevel: "CONFIDENTIAL", Level: marking.Level{Name: "CONFIDENTIAL", Rank: 1},
		Authority: "ICT Authority", Expires: testNow.AddDate(1, 0, 0)}}
	r.Customers = []string{"KEN"}
	// A Kenyan tenant cleared to KEN RESTRICTED only.
	tn := &Tenant{ID: "ke-county", Nation: "KEN", Sector: "civil", Ceiling: "UNCLASSIFIED", CeilingLabel: label.MustParse("UNCLASSIFIED"),
		Ceilings: []SchemeCeiling{{Scheme: marking.KEN, Level: "RESTRICTED", Parsed: marking.Level{Name: "RESTRICTED", Rank: 0}}}}
	if tn.KnowsAccreditation(&r.Accreditations[0]) {
		t.Error("KnowsAccreditation = true: a tenant whose KEN ceiling is RESTRICTED learns of a KEN CONFIDENTIAL accreditation (GetRegion, ListRegions, Plan reasons)")
	}
	if c := CoverRegion(marking.MustParse(marking.KEN, "RESTRICTED"), r, tn, review12Table(t), testNow); c.OK || len(c.Reasons) != 1 ||
		c.Reasons[0].Code != ReasonNoEquivalence || c.Reasons[0].Equivalence[0] != "KEN→US v1" {
		t.Errorf("CoverRegion = %+v; want only the US accreditation read, and refused (no_equivalence)", c)
	}
	// A tenant with no ceiling in a scheme at all.
	nld := &Tenant{ID: "nld-mod", Nation: "NLD", Sector: "defense", Ceiling: "UNCLASSIFIED", CeilingLabel: label.MustParse("UNCLASSIFIED")}
	eu := review12UKRegion()
	eu.Accreditations = []SchemeAccreditation{{Scheme: marking.NATO, MaxLevel: "NATO SECRET", Level: marking.Level{Name: "NATO SECRET", Rank: 3},
		Authority: "NATO", Expires: testNow.AddDate(1, 0, 0)}}
	if nld.KnowsAccreditation(&eu.Accreditations[0]) {
		t.Error("KnowsAccreditation = true: a tenant with no NATO ceiling learns of a NATO SECRET accreditation")
	}
}

// A foreign classified label that names no releasability is not
// releasable to every nation once it is read into another scheme: the
// AUS→US entry lets the US hold AUS SECRET, not third nations (DOMAIN.md
// §6.4: "FGI: an entry, and operators inside its releasability"; §0:
// classified with no foreign-disclosure marking fails closed).
func TestReview12ForeignClassifiedNoCaveatThirdNationOperators(t *testing.T) {
	e := NewEngine()
	w := review12Workload(t, marking.AUS, "[SEC=SECRET]")
	w.Capabilities, w.StorageTier, w.AllowedCountries = nil, "", []string{"USA"}
	r := baseRegion() // US SECRET
	r.Customers = []string{"*"}
	r.OperatorNationalities = []string{"CHN", "USA"}
	tn := &Tenant{ID: "t", Nation: "AUS", Sector: "defense", Ceiling: "TOP SECRET//REL TO USA, AUS, GBR",
		CeilingLabel: label.MustParse("TOP SECRET//REL TO USA, AUS, GBR"),
		Ceilings:     []SchemeCeiling{{Scheme: marking.AUS, Level: "TOP-SECRET", Parsed: marking.Level{Name: "TOP-SECRET", Rank: 3}}}}
	d := e.Plan(Input{Workload: w, Tenant: tn, Regions: []RegionState{{Region: r}}, Now: testNow, Equivalence: review12Table(t)})
	if len(d.Verdicts) == 1 && d.Verdicts[0].Eligible {
		t.Error("AUS SECRET (no RI caveat) is eligible on a region operated by CHN nationals, through AUS→US")
	}
}

// The consequence in Reconcile: UK OFFICIAL-SENSITIVE left on uksouth
// after its GBR accreditation is revoked is never flagged (no
// ActionFlag, state not violation), whether moves are paced or no region
// can take it.
func TestReview12ReconcileForeignAccreditationRevoked(t *testing.T) {
	w := review12Workload(t, marking.GBR, "OFFICIAL-SENSITIVE")
	r := review12UKRegion()
	r.Accreditations[0].Revoked = true
	p := &Placement{ID: "p1", Tenant: "t", Workload: *w, Regions: []string{r.Key()}, Scores: []float64{1},
		State: PlacementPlaced, CreatedAt: testNow.Add(-1)}
	for _, moves := range []int{0, AnyMoves} {
		rc := Reconcile(NewEngine(), p, ReconcileInput{Tenant: review12Tenant(), Regions: []RegionState{{Region: r}},
			Now: testNow, Equivalence: review12Table(t), MaxMoves: moves})
		flagged := false
		for _, a := range rc.Actions {
			flagged = flagged || a.Kind == ActionFlag
		}
		state := p.State
		if rc.Next != nil {
			state = rc.Next.State
		}
		if !flagged || state != PlacementViolation {
			t.Errorf("MaxMoves %d: actions %+v, state %s; want ActionFlag and state violation", moves, rc.Actions, state)
		}
	}
}
