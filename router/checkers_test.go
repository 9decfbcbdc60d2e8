package router

import (
	"errors"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// testNow is the Now of every test decision.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// lab builds a label from its fields. With no nations, UNCLASSIFIED and
// CUI labels are releasable to anyone and classified ones to USA only,
// as the parser does (DOMAIN.md §0).
func lab(level label.Level, controls []string, nations ...string) label.Label {
	l := label.Label{Level: level, Controls: slices.Sorted(slices.Values(controls))}
	switch {
	case len(nations) > 0:
		l.Nations = slices.Sorted(slices.Values(nations))
	case level <= label.CUI:
		l.AnyNation = true
	default:
		l.Nations = []string{label.USA}
	}
	return l
}

// baseRegion is a known-good region for baseWorkload: every mutation in
// the checker tests starts from it.
func baseRegion() *Region {
	return &Region{
		Provider:              "aws",
		ID:                    "us-isob-east-1",
		Name:                  "AWS Secret Region",
		Country:               "USA",
		OperatorJurisdiction:  "USA",
		OperatorNationalities: []string{"USA"},
		Personnel:             PersonnelClearedSecret,
		NetworkDomain:         DomainSIPRNet,
		Accreditation: Accreditation{
			MaxLevel:    label.Secret,
			Controls:    []string{"TK", "SAR-BP", "SI"}, // unsorted on purpose
			ImpactLevel: 6,
			Expires:     testNow.AddDate(1, 0, 0),
		},
		Customers:    []string{"USA/defense"},
		Capabilities: []string{"ai-agents", "gpu"},
		StorageTiers: []string{"online", "nearline"},
		Capacity:     Resources{MilliCPU: 64000, MemoryMiB: 262144, GPU: 8},
		Location:     Location{Lat: 38.9, Lon: -77.4},
		Cost:         1.5,
		Status:       StatusActive,
	}
}

// baseWorkload is a known-good SECRET//SAR-BP//REL TO USA, GBR workload for baseRegion.
func baseWorkload() *Workload {
	return &Workload{
		Name:                 "logistics",
		Tenant:               "us-army",
		Label:                label.MustParse("SECRET//SAR-BP//REL TO USA, GBR"),
		Banner:               "SECRET//SAR-BP//REL TO USA, GBR",
		AllowedCountries:     []string{"USA"},
		AllowedJurisdictions: []string{"USA"},
		Capabilities:         []string{"gpu"},
		StorageTier:          "nearline",
		Resources:            Resources{MilliCPU: 4000, MemoryMiB: 8192, GPU: 1},
		Replicas:             1,
	}
}

func baseTenant() *Tenant {
	return &Tenant{ID: "us-army", Name: "US Army", Nation: "USA", Sector: "defense"}
}

// oneRegion is an Input of one region.
func oneRegion(r *Region, w *Workload, t *Tenant, used Resources) Input {
	return Input{Workload: w, Tenant: t, Regions: []RegionState{{Region: r, Used: used}}, Now: testNow}
}

// mutation changes the baseline of a checker test.
type mutation struct {
	name   string
	region func(r *Region)
	work   func(w *Workload)
	tenant func(t **Tenant)
	used   Resources
}

func (m mutation) input(tb testing.TB) Input {
	tb.Helper()
	r, w, t := baseRegion(), baseWorkload(), baseTenant()
	if m.region != nil {
		m.region(r)
	}
	if m.work != nil {
		m.work(w)
	}
	if m.tenant != nil {
		m.tenant(&t)
	}
	return oneRegion(r, w, t, m.used)
}

// codes returns the reason codes of v.
func codes(v Verdict) []ReasonCode {
	out := make([]ReasonCode, len(v.Reasons))
	for i, r := range v.Reasons {
		out[i] = r.Code
	}
	return out
}

func TestBaselineEligible(t *testing.T) {
	in := mutation{}.input(t)
	d := NewEngine().Plan(in)
	if d.Err != nil {
		t.Fatalf("Plan: %v", d.Err)
	}
	if got := d.Verdicts[0]; !got.Eligible || !got.Chosen || len(got.Reasons) != 0 {
		t.Fatalf("baseline verdict = %+v; want eligible and chosen with no reasons", got)
	}
	if got := NewEngine().Place(in); got.Err != nil || !slices.Equal(got.Chosen, []int{0}) {
		t.Fatalf("Place = %v, %v; want [0], <nil>", got.Chosen, got.Err)
	}
}

func TestCheckersFail(t *testing.T) {
	expired := testNow.Add(-24 * time.Hour)
	tests := []struct {
		mutation
		code ReasonCode
		msg  string // the reason's message contains this
	}{
		{mutation{name: "level below label", region: func(r *Region) { r.Accreditation.MaxLevel = label.Confidential }},
			ReasonLevel, "accredited to CONFIDENTIAL; label is SECRET"},
		{mutation{name: "accreditation expired", region: func(r *Region) { r.Accreditation.Expires = expired }},
			ReasonAccreditation, "accreditation expired 2026-05-31"},
		{mutation{name: "accreditation expires now", region: func(r *Region) { r.Accreditation.Expires = testNow }},
			ReasonAccreditation, "accreditation expired 2026-06-01"},
		{mutation{name: "accreditation revoked", region: func(r *Region) { r.Accreditation.Revoked = true }},
			ReasonAccreditation, "accreditation revoked"},
		{mutation{name: "accreditation without expiry", region: func(r *Region) { r.Accreditation.Expires = time.Time{} }},
			ReasonAccreditation, "no expiry date"},
		{mutation{name: "impact level below the asked",
			region: func(r *Region) {
				r.Accreditation.MaxLevel, r.Accreditation.ImpactLevel, r.Accreditation.FedRAMP = label.CUI, 4, FedRAMPHigh
			},
			work: func(w *Workload) { w.Label = lab(label.CUI, nil); w.MinImpactLevel = 5 }},
			ReasonAuthorization, "impact level IL4; workload needs IL5"},
		{mutation{name: "US defense CUI needs IL4 without asking",
			region: func(r *Region) {
				r.Accreditation.MaxLevel, r.Accreditation.ImpactLevel, r.Accreditation.FedRAMP = label.CUI, 2, FedRAMPModerate
			},
			work: func(w *Workload) { w.Label = lab(label.CUI, nil) }},
			ReasonAuthorization, "impact level IL2; workload needs IL4"},
		{mutation{name: "US defense unclassified needs IL2 without asking",
			region: func(r *Region) { r.Accreditation.MaxLevel, r.Accreditation.ImpactLevel = label.Unclassified, 0 },
			work:   func(w *Workload) { w.Label = lab(label.Unclassified, nil) }},
			ReasonAuthorization, "no DoD impact level; workload needs IL2"},
		{mutation{name: "US CUI needs FedRAMP Moderate without asking",
			region: func(r *Region) {
				r.Accreditation.MaxLevel, r.Accreditation.ImpactLevel, r.Accreditation.FedRAMP = label.CUI, 0, FedRAMPLow
				r.Customers = []string{"USA"}
			},
			work:   func(w *Workload) { w.Label = lab(label.CUI, nil) },
			tenant: func(t **Tenant) { (*t).Sector = "civil" }},
			ReasonAuthorization, "FedRAMP low; workload needs FedRAMP moderate"},
		{mutation{name: "control not accredited", work: func(w *Workload) {
			w.Label.Controls = []string{"RD", "SAR-BP", "SAR-CD"}
		}}, ReasonControls, "not accredited for RD, SAR-CD"},
		{mutation{name: "foreign operator outside REL TO", region: func(r *Region) {
			r.OperatorNationalities = []string{"USA", "CAN"}
		}}, ReasonReleasability, "operated by CAN nationals; label releasable to USA, GBR only"},
		{mutation{name: "foreign operator of NOFORN data",
			region: func(r *Region) { r.OperatorNationalities = []string{"GBR"} },
			work:   func(w *Workload) { w.Label.Nations = []string{"USA"} }},
			ReasonReleasability, "operated by GBR nationals; label releasable to USA only"},
		{mutation{name: "operators undeclared", region: func(r *Region) { r.OperatorNationalities = nil }},
			ReasonReleasability, "operator nationalities not declared"},
		{mutation{name: "personnel below SECRET", region: func(r *Region) { r.Personnel = PersonnelUSPersonsADP }},
			ReasonPersonnel, "personnel us-persons-adp; SECRET requires cleared-secret"},
		{mutation{name: "personnel below SCI",
			work: func(w *Workload) { w.Label.Controls = []string{"SAR-BP", "SI"} }},
			ReasonPersonnel, "personnel cleared-secret; SCI requires cleared-top-secret"},
		{mutation{name: "ITAR with foreign operators",
			region: func(r *Region) { r.OperatorNationalities = []string{"GBR", "USA"} },
			work:   func(w *Workload) { w.ExportControl = ExportITAR }},
			ReasonPersonnel, "operated by GBR, USA nationals; ITAR data requires US persons only"},
		{mutation{name: "SP-EXPT needs screened US persons",
			region: func(r *Region) {
				r.Personnel = PersonnelNone
				r.Accreditation.Controls = append(r.Accreditation.Controls, "SP-EXPT")
			},
			work: func(w *Workload) { w.Label = lab(label.CUI, []string{"SP-EXPT"}, "USA") }},
			ReasonPersonnel, "personnel none; CUI//SP-EXPT data requires screened-us-persons"},
		{mutation{name: "data outside allowed countries", region: func(r *Region) { r.Country = "GBR" }},
			ReasonResidency, "data would rest in GBR; allowed: USA"},
		{mutation{name: "EAR data abroad",
			region: func(r *Region) { r.Country = "GBR" },
			work: func(w *Workload) {
				w.ExportControl = ExportEAR
				w.AllowedCountries = []string{"*"}
			}},
			ReasonResidency, "data would rest in GBR; EAR data must rest in USA"},
		{mutation{name: "empty allowed countries fail closed", work: func(w *Workload) { w.AllowedCountries = nil }},
			ReasonResidency, "allowed: none"},
		{mutation{name: "star among others is not anywhere",
			region: func(r *Region) { r.Country = "GBR" },
			work:   func(w *Workload) { w.AllowedCountries = []string{"USA", "*"} }},
			ReasonResidency, "data would rest in GBR"},
		{mutation{name: "operator jurisdiction not allowed", region: func(r *Region) { r.OperatorJurisdiction = "GBR" }},
			ReasonJurisdiction, "operator under GBR jurisdiction; allowed: USA"},
		{mutation{name: "customer other sector", region: func(r *Region) { r.Customers = []string{"USA/intelligence"} }},
			ReasonCustomer, "serves USA/intelligence tenants only; tenant us-army is USA/defense"},
		{mutation{name: "customer other nation", tenant: func(t **Tenant) {
			*t = &Tenant{ID: "ke-moh", Nation: "KEN", Sector: "civil"}
		}}, ReasonCustomer, "tenant ke-moh is KEN/civil"},
		{mutation{name: "customer nation prefix is not a match", region: func(r *Region) { r.Customers = []string{"USA/defenseX", "US"} }},
			ReasonCustomer, "tenant us-army is USA/defense"},
		{mutation{name: "no customers", region: func(r *Region) { r.Customers = nil }},
			ReasonCustomer, "serves no tenant"},
		{mutation{name: "nil tenant fails closed", tenant: func(t **Tenant) { *t = nil }},
			ReasonCustomer, "tenant is unknown"},
		{mutation{name: "region above the tenant's ceiling", tenant: func(t **Tenant) {
			(*t).Ceiling, (*t).CeilingLabel = "CUI", label.MustParse("CUI")
		}}, ReasonPolicy, "accredited to SECRET, above tenant us-army's ceiling CUI"},
		{mutation{name: "provider denied to the tenant", tenant: func(t **Tenant) { (*t).DeniedProviders = []string{"x", baseRegion().Provider} }},
			ReasonPolicy, "tenant us-army may not use provider " + baseRegion().Provider},
		{mutation{name: "provider not allowed to the tenant", tenant: func(t **Tenant) { (*t).AllowedProviders = []string{"azure-x"} }},
			ReasonPolicy, "provider " + baseRegion().Provider + " is not among tenant us-army's allowed providers"},
		{mutation{name: "region not allowed to the tenant", tenant: func(t **Tenant) { (*t).AllowedRegions = []string{baseRegion().Provider + "/other"} }},
			ReasonPolicy, "not among tenant us-army's allowed regions"},
		{mutation{name: "region denied to the tenant", tenant: func(t **Tenant) { (*t).DeniedRegions = []string{baseRegion().Key()} }},
			ReasonPolicy, "denied to tenant us-army"},
		{mutation{name: "internet cannot carry SECRET", region: func(r *Region) { r.NetworkDomain = DomainInternet }},
			ReasonNetworkDomain, "internet cannot carry SECRET"},
		{mutation{name: "NIPRNet cannot carry SECRET", region: func(r *Region) { r.NetworkDomain = DomainNIPRNet }},
			ReasonNetworkDomain, "niprnet cannot carry SECRET"},
		{mutation{name: "capability missing", region: func(r *Region) { r.Capabilities = []string{"ai-agents"} }},
			ReasonCapability, "no gpu capability"},
		{mutation{name: "storage tier missing", region: func(r *Region) { r.StorageTiers = []string{"online"} }},
			ReasonCapability, "no nearline storage tier"},
		{mutation{name: "draining", region: func(r *Region) { r.Status = StatusDraining }},
			ReasonHealth, "region is draining"},
		{mutation{name: "offline", region: func(r *Region) { r.Status = StatusOffline }},
			ReasonHealth, "region is offline"},
		{mutation{name: "cpu exhausted", used: Resources{MilliCPU: 62000}},
			ReasonCapacity, "needs cpu 4000m, memory 8192 MiB, gpu 1; free cpu 2000m, memory 262144 MiB, gpu 8"},
		{mutation{name: "gpu exhausted", used: Resources{GPU: 8}},
			ReasonCapacity, "free cpu 64000m, memory 262144 MiB, gpu 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.input(t)
			d := NewEngine().Plan(in)
			v := d.Verdicts[0]
			if got, want := codes(v), []ReasonCode{tt.code}; !slices.Equal(got, want) {
				t.Fatalf("reasons = %v; want %v", v.Reasons, want)
			}
			if got := v.Reasons[0].Message; !strings.Contains(got, tt.msg) {
				t.Errorf("message = %q; want it to contain %q", got, tt.msg)
			}
			if v.Eligible || v.Chosen {
				t.Errorf("verdict eligible=%v chosen=%v; want neither", v.Eligible, v.Chosen)
			}
			if !errors.Is(d.Err, ErrNoEligibleRegion) {
				t.Errorf("Plan err = %v; want %v", d.Err, ErrNoEligibleRegion)
			}
			wantErr := "no eligible region among 1 regions: " + string(tt.code) + " 1"
			if in.Tenant != nil && (tt.code == ReasonCustomer || tt.code == ReasonPolicy && strings.Contains(tt.msg, "ceiling")) {
				// A region the tenant may not know of is no figure of
				// its refusal (see hidden).
				wantErr = "no eligible region: no region serves tenant " + in.Tenant.ID + " within its ceiling"
			}
			if d.Err == nil || d.Err.Error() != wantErr {
				t.Errorf("Plan err = %v; want %q", d.Err, wantErr)
			}
			p := NewEngine().Place(in)
			if p.Err == nil || p.Err.Error() != wantErr || len(p.Chosen) != 0 {
				t.Errorf("Place = %v, %v; want [], %q", p.Chosen, p.Err, wantErr)
			}
		})
	}
}

func TestCheckersPass(t *testing.T) {
	tests := []mutation{
		{name: "unsorted accreditation controls", region: func(r *Region) { r.Accreditation.Controls = []string{"SI", "TK", "SAR-BP"} }},
		{name: "anywhere", region: func(r *Region) { r.Country = "AUS" }, work: func(w *Workload) {
			w.AllowedCountries = []string{"*"}
		}},
		{name: "any jurisdiction", region: func(r *Region) { r.OperatorJurisdiction = "GBR" }, work: func(w *Workload) {
			w.AllowedJurisdictions = nil
		}},
		{name: "operators within REL TO", region: func(r *Region) { r.OperatorNationalities = []string{"GBR", "USA"} }},
		{name: "unclassified any nation", region: func(r *Region) {
			r.OperatorNationalities = []string{"ZAF"}
			r.Personnel = PersonnelNone
			r.NetworkDomain = DomainInternet
		}, work: func(w *Workload) { w.Label = lab(label.Unclassified, nil) }},
		{name: "customer star", region: func(r *Region) { r.Customers = []string{"*"} }},
		{name: "customer nation", region: func(r *Region) { r.Customers = []string{"GBR", "USA"} }},
		{name: "customer nation and sector", region: func(r *Region) { r.Customers = []string{"USA/intelligence", "USA/defense"} }},
		{name: "air-gapped carries SECRET", region: func(r *Region) { r.NetworkDomain = DomainAirGapped }},
		{name: "higher accreditation", region: func(r *Region) {
			r.Accreditation.MaxLevel = label.TopSecret
			r.NetworkDomain = DomainJWICS
		}},
		{name: "no storage tier asked", region: func(r *Region) { r.StorageTiers = nil }, work: func(w *Workload) { w.StorageTier = "" }},
		{name: "exactly full", used: Resources{MilliCPU: 60000, MemoryMiB: 262144 - 8192, GPU: 7}},
		{name: "ITAR on US-only region", work: func(w *Workload) { w.ExportControl = ExportITAR }},
		{name: "classified accreditation satisfies IL and FedRAMP", work: func(w *Workload) {
			w.MinImpactLevel, w.MinFedRAMP = 6, FedRAMPHigh
		}, region: func(r *Region) { r.Accreditation.ImpactLevel, r.Accreditation.FedRAMP = 0, FedRAMPNone }},
		{name: "IL5 FedRAMP High holds US defense CUI", region: func(r *Region) {
			r.Accreditation.MaxLevel, r.Accreditation.ImpactLevel, r.Accreditation.FedRAMP = label.CUI, 5, FedRAMPHigh
		}, work: func(w *Workload) { w.Label = lab(label.CUI, nil) }},
		{name: "foreign tenant CUI needs no US authorisation", region: func(r *Region) {
			r.Accreditation.MaxLevel, r.Accreditation.ImpactLevel = label.CUI, 0
			r.Customers = []string{"*"}
		}, work: func(w *Workload) { w.Label = lab(label.CUI, nil) },
			tenant: func(t **Tenant) { *t = &Tenant{ID: "uk-mod", Nation: "GBR", Sector: "defense"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewEngine().Plan(tt.input(t))
			if v := d.Verdicts[0]; !v.Eligible || d.Err != nil {
				t.Fatalf("verdict = %+v, err %v; want eligible", v, d.Err)
			}
		})
	}
}

// TestPlanReportsEveryReason checks that Plan does not stop at the first
// failing rule, and lists the reasons in chain order.
func TestPlanReportsEveryReason(t *testing.T) {
	in := mutation{
		region: func(r *Region) {
			r.Provider, r.ID = "azure", "southafricanorth"
			r.Country, r.OperatorJurisdiction = "ZAF", "USA"
			r.OperatorNationalities = []string{"ZAF", "USA"}
			r.Personnel = PersonnelNone
			r.NetworkDomain = DomainInternet
			r.Accreditation = Accreditation{MaxLevel: label.Unclassified, Expires: testNow.AddDate(0, 0, -1)}
			r.Customers = []string{"*"}
			r.StorageTiers = []string{"online"}
			r.Status = StatusDraining
		},
		used: Resources{MilliCPU: 64000},
	}.input(t)
	d := NewEngine().Plan(in)
	want := []ReasonCode{
		ReasonLevel, ReasonNetworkDomain, ReasonPersonnel, ReasonHealth, ReasonAccreditation, ReasonCapacity,
		ReasonResidency, ReasonReleasability, ReasonControls, ReasonCapability,
	}
	// The workload asks for no impact level, so authorization passes.
	if got := codes(d.Verdicts[0]); !slices.Equal(got, want) {
		t.Fatalf("codes = %v; want %v", got, want)
	}
	for _, r := range d.Verdicts[0].Reasons {
		if r.Message == "" {
			t.Errorf("reason %s has no message", r.Code)
		}
	}
	// The summary counts each region once, under its first failed rule.
	if got, want := d.Err.Error(), "no eligible region among 1 regions: level 1"; got != want {
		t.Errorf("err = %q; want %q", got, want)
	}
}

func TestNewWant(t *testing.T) {
	tests := []struct {
		name      string
		work      func(w *Workload)
		personnel Personnel
		export    bool
	}{
		{"unclassified", func(w *Workload) { w.Label = lab(label.Unclassified, nil) }, PersonnelNone, false},
		{"CUI", func(w *Workload) { w.Label = lab(label.CUI, nil) }, PersonnelNone, false},
		{"CUI SP-EXPT", func(w *Workload) { w.Label = lab(label.CUI, []string{"SP-EXPT"}) }, PersonnelScreenedUSPersons, true},
		{"EAR", func(w *Workload) { w.Label = lab(label.Unclassified, nil); w.ExportControl = ExportEAR }, PersonnelScreenedUSPersons, true},
		{"CONFIDENTIAL", func(w *Workload) { w.Label = lab(label.Confidential, nil) }, PersonnelClearedSecret, false},
		{"SECRET ITAR", func(w *Workload) { w.ExportControl = ExportITAR }, PersonnelClearedSecret, true},
		{"SECRET SAP", func(w *Workload) {}, PersonnelClearedSecret, false},
		{"SECRET SI-G", func(w *Workload) { w.Label = lab(label.Secret, []string{"SI-G"}) }, PersonnelClearedTopSecret, false},
		{"SECRET HCS-P", func(w *Workload) { w.Label = lab(label.Secret, []string{"HCS-P"}) }, PersonnelClearedTopSecret, false},
		{"SECRET SIGMA is not SCI", func(w *Workload) { w.Label = lab(label.Secret, []string{"SIGMA 20"}) }, PersonnelClearedSecret, false},
		{"TOP SECRET", func(w *Workload) { w.Label = lab(label.TopSecret, nil) }, PersonnelClearedTopSecret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wl := baseWorkload()
			tt.work(wl)
			w := newWant(&Input{Workload: wl})
			if w.personnel != tt.personnel || w.exportControlled != tt.export {
				t.Errorf("personnel, export = %v, %v; want %v, %v", w.personnel, w.exportControlled, tt.personnel, tt.export)
			}
		})
	}
}

// TestFirstFailureDirect checks that Place's direct chain runs the rules
// of NewEngine's chain in the same order: both name the same first
// failure for a few thousand region and workload pairs that fail at
// every rule.
func TestFirstFailureDirect(t *testing.T) {
	e := NewEngine()
	if len(e.checkers) != 16 {
		t.Fatalf("%d checkers; firstFailureDirect knows 16", len(e.checkers))
	}
	tab, err := equiv.NewTable(equiv.Default())
	if err != nil {
		t.Fatal(err)
	}
	foreign := []marking.Label{
		marking.MustParse(marking.GBR, "UK SECRET"), marking.MustParse(marking.KEN, "CONFIDENTIAL"),
		marking.MustParse(marking.NATO, "NATO RESTRICTED"), marking.MustParse(marking.GBR, "OFFICIAL-SENSITIVE"),
	}
	rng := rand.New(rand.NewSource(3))
	regions := genRegions(500, 11)
	for j := 0; j < len(regions); j += 17 {
		// A region accredited above what its network carries.
		r := *regions[j].Region
		r.Accreditation.MaxLevel, r.NetworkDomain = label.TopSecret, NetworkDomain(rng.Intn(3))
		regions[j].Region = &r
	}
	for j := 5; j < len(regions); j += 7 {
		// Regions accredited in other schemes too.
		r := *regions[j].Region
		a := []SchemeAccreditation{
			{Scheme: marking.GBR, MaxLevel: "SECRET", Authority: "UK MOD", Expires: testNow.AddDate(1, 0, 0)},
			{Scheme: marking.KEN, MaxLevel: "RESTRICTED", Authority: "ICT Authority", Expires: testNow.AddDate(1, 0, 0)},
			{Scheme: marking.NATO, MaxLevel: "NATO SECRET", Authority: "NATO", Expires: testNow.AddDate(-1, 0, 0)},
		}[rng.Intn(3)]
		r.Accreditations = []SchemeAccreditation{a}
		regions[j].Region = &r
	}
	restricted := baseTenant()
	restricted.Ceiling, restricted.CeilingLabel = "CUI", label.MustParse("CUI")
	denied := baseTenant()
	denied.DeniedProviders = benchProviders[:1]
	tenants := []*Tenant{nil, baseTenant(), {ID: "uk-mod", Nation: "GBR", Sector: "defense"}, {ID: "ke-moh", Nation: "KEN", Sector: "civil"}, restricted, denied}
	seen := make([]int, len(e.checkers)+1)
	for i := range 60 {
		w := benchWorkload()
		w.Label = randomLabel(rng)
		w.ExportControl = ExportControl(rng.Intn(3))
		w.AllowedCountries = [][]string{{"*"}, {"USA"}, {"USA", "GBR", "AUS"}, {"CAN"}}[rng.Intn(4)]
		w.AllowedJurisdictions = [][]string{nil, {"USA"}, {"GBR", "AUS"}}[rng.Intn(3)]
		w.Capabilities = [][]string{nil, {"gpu"}, {"ai-agents", "gpu"}}[rng.Intn(3)]
		w.StorageTier = []string{"", "online", "nearline", "archive"}[rng.Intn(4)]
		w.MinImpactLevel = []int{0, 2, 4, 5, 6}[rng.Intn(5)]
		w.MinFedRAMP = FedRAMP(rng.Intn(4))
		w.Resources = Resources{MilliCPU: int64(rng.Intn(64000)), MemoryMiB: int64(rng.Intn(262144)), GPU: int64(rng.Intn(3))}
		if i%3 == 2 {
			w.Marking = foreign[rng.Intn(len(foreign))]
			w.Scheme, w.Label = w.Marking.Scheme, label.Label{}
		}
		if i%2 == 1 {
			// A dependency on a service no catalogue holds.
			w.Dependencies = []flow.Dependency{{Target: flow.ServiceNamed("nowhere"), Direction: flow.Read}}
		}
		in := Input{Workload: w, Tenant: tenants[i%len(tenants)], Regions: regions, Now: testNow, Equivalence: tab}
		want := newWant(&in)
		for j := range regions {
			got, exp := firstFailureDirect(&want, &regions[j]), e.firstFailure(&want, &regions[j])
			if got != exp {
				t.Fatalf("region %d: firstFailureDirect = %d; want %d", j, got, exp)
			}
			seen[exp+1]++
		}
	}
	for j, n := range seen[1:] {
		if n == 0 {
			t.Errorf("no region failed first at %s: the test does not cover it", e.checkers[j].Code())
		}
	}
}
