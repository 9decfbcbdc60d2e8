package router

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/label"
)

// goodRegion is a valid SECRET region; each case below breaks one field.
func goodRegion() *Region {
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
			Controls:    []string{"SAR-BP", "SI-G", "SP-EXPT", "RD", "CNWDI", "HCS-P"},
			ImpactLevel: 6,
			FedRAMP:     FedRAMPHigh,
			Frameworks:  []string{"JSIG PL3"},
			Expires:     time.Date(2028, 9, 30, 0, 0, 0, 0, time.UTC),
		},
		Customers:    []string{"USA/defense", "USA/intelligence", "GBR"},
		Capabilities: []string{"gpu", "ai-agents"},
		StorageTiers: []string{"online", "nearline"},
		Capacity:     Resources{MilliCPU: 1000, MemoryMiB: 4096, GPU: 2},
		Location:     Location{Lat: 38.9, Lon: -77.4},
		Cost:         2.5,
		Status:       StatusActive,
	}
}

func goodProvider() *Provider {
	return &Provider{ID: "ke-gov", Name: "Government of Kenya", Jurisdiction: "KEN"}
}

func goodTenant() *Tenant {
	return &Tenant{ID: "ke-moh", Name: "Kenya Ministry of Health", Nation: "KEN", Sector: "civil", Ceiling: "CUI",
		AllowedProviders: []string{"ke-gov", "aws"}, DeniedRegions: []string{"aws/af-south-1"},
		Members: []TenantMember{{Name: "amina", Roles: []authz.Role{authz.RoleSubmitter, authz.RoleTenantAuditor}}}}
}

func goodWorkload() *Workload {
	return &Workload{
		Name:                 "records.v2_east",
		Tenant:               "us-dod",
		Banner:               "SECRET//NOFORN",
		AllowedCountries:     []string{"USA"},
		AllowedJurisdictions: []string{"USA"},
		Capabilities:         []string{"gpu"},
		StorageTier:          "nearline",
		Resources:            Resources{MilliCPU: 500},
		Replicas:             2,
		Spread:               Spread{MinDistanceKm: 1000, DistinctProviders: true},
		Preferences:          Preferences{Providers: []string{"aws", "azure"}, CostWeight: 0.5, Near: &Location{Lat: 38.9, Lon: -77.4}},
	}
}

// violationCase breaks one field of a good value and names the violation expected.
type violationCase[T any] struct {
	name   string
	mutate func(*T)
	field  string // the violation's field path
	desc   string // a substring of its description
}

// wantViolation fails unless err is an *InvalidError holding a violation
// of field whose description contains desc.
func wantViolation(tb testing.TB, err error, field, desc string) {
	tb.Helper()
	var inv *InvalidError
	if !errors.As(err, &inv) {
		tb.Fatalf("got %v; want an *InvalidError naming %s", err, field)
	}
	for _, v := range inv.Violations {
		if v.Field == field && strings.Contains(v.Description, desc) {
			return
		}
	}
	tb.Errorf("got %v; want a violation of %s containing %q", err, field, desc)
}

func runViolationCases[T any](t *testing.T, good func() *T, validate func(*T) error, cases []violationCase[T]) {
	t.Helper()
	if err := validate(good()); err != nil {
		t.Fatalf("baseline: got %v; want nil", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := good()
			tc.mutate(v)
			wantViolation(t, validate(v), tc.field, tc.desc)
		})
	}
}

func TestValidateRegion(t *testing.T) {
	runViolationCases(t, goodRegion, ValidateRegion, []violationCase[Region]{
		{"no provider", func(r *Region) { r.Provider = "" }, "region.provider", "required"},
		{"upper-case provider", func(r *Region) { r.Provider = "AWS" }, "region.provider", "lowercase"},
		{"no id", func(r *Region) { r.ID = "" }, "region.id", "required"},
		{"id with underscore", func(r *Region) { r.ID = "us_east" }, "region.id", "lowercase"},
		{"id too long", func(r *Region) { r.ID = strings.Repeat("a", 64) }, "region.id", "longer than 63"},
		{"name too long", func(r *Region) { r.Name = strings.Repeat("n", 257) }, "region.name", "longer than"},
		{"no country", func(r *Region) { r.Country = "" }, "region.country", "required"},
		{"two-letter country", func(r *Region) { r.Country = "US" }, "region.country", "ISO 3166"},
		{"no such country", func(r *Region) { r.Country = "XYZ" }, "region.country", `"XYZ" is not an ISO 3166`},
		{"tetragraph is no country", func(r *Region) { r.OperatorNationalities = []string{"FVEY"} }, "region.operator_nationalities[0]", "ISO 3166"},
		{"lower-case jurisdiction", func(r *Region) { r.OperatorJurisdiction = "usa" }, "region.operator_jurisdiction", "ISO 3166"},
		{"no operators", func(r *Region) { r.OperatorNationalities = nil }, "region.operator_nationalities", "required"},
		{"bad operator", func(r *Region) { r.OperatorNationalities = []string{"USA", "Kenya"} }, "region.operator_nationalities[1]", "ISO 3166"},
		{"repeated operator", func(r *Region) { r.OperatorNationalities = []string{"USA", "USA"} }, "region.operator_nationalities[1]", "repeats region.operator_nationalities[0]"},
		{"bad personnel", func(r *Region) { r.Personnel = 99 }, "region.personnel", "unknown"},
		{"bad network domain", func(r *Region) { r.NetworkDomain = 99 }, "region.network_domain", "unknown"},
		{"bad level", func(r *Region) { r.Accreditation.MaxLevel = 99 }, "region.accreditation.max_level", "unknown level"},
		{"secret on the internet", func(r *Region) { r.NetworkDomain = DomainInternet },
			"region.accreditation.max_level", "SECRET exceeds what network domain internet may carry"},
		{"top secret on siprnet", func(r *Region) { r.Accreditation.MaxLevel = label.TopSecret },
			"region.accreditation.max_level", "TOP SECRET exceeds what network domain siprnet may carry"},
		{"lower-case control", func(r *Region) { r.Accreditation.Controls[2] = "si" }, "region.accreditation.controls[2]", "not a control token"},
		{"empty control", func(r *Region) { r.Accreditation.Controls[0] = "" }, "region.accreditation.controls[0]", "must not be empty"},
		{"control with slash", func(r *Region) { r.Accreditation.Controls[1] = "SI/TK" }, "region.accreditation.controls[1]", "not a control token"},
		{"IL3", func(r *Region) { r.Accreditation.ImpactLevel = 3 }, "region.accreditation.impact_level", "not a DoD impact level"},
		{"bad fedramp", func(r *Region) { r.Accreditation.FedRAMP = 9 }, "region.accreditation.fedramp", "unknown"},
		{"empty framework", func(r *Region) { r.Accreditation.Frameworks = []string{""} }, "region.accreditation.frameworks[0]", "must not be empty"},
		{"no expiry", func(r *Region) { r.Accreditation.Expires = time.Time{} }, "region.accreditation.expires", "required"},
		{"no customers", func(r *Region) { r.Customers = nil }, "region.customers", "required"},
		{"bad customer nation", func(r *Region) { r.Customers[0] = "usa" }, "region.customers[0]", "trigraph"},
		{"bad customer sector", func(r *Region) { r.Customers[1] = "USA/navy" }, "region.customers[1]", "unknown sector"},
		{"empty customer sector", func(r *Region) { r.Customers[1] = "USA/" }, "region.customers[1]", "required"},
		{"bad capability", func(r *Region) { r.Capabilities[1] = "AI Agents" }, "region.capabilities[1]", "lowercase"},
		{"bad storage tier", func(r *Region) { r.StorageTiers[0] = "" }, "region.storage_tiers[0]", "must not be empty"},
		{"negative cpu", func(r *Region) { r.Capacity.MilliCPU = -1 }, "region.capacity.milli_cpu", "negative"},
		{"negative memory", func(r *Region) { r.Capacity.MemoryMiB = -1 }, "region.capacity.memory_mib", "negative"},
		{"negative gpu", func(r *Region) { r.Capacity.GPU = -1 }, "region.capacity.gpu", "negative"},
		{"lat", func(r *Region) { r.Location.Lat = 90.5 }, "region.location.lat", "between -90 and 90"},
		{"lat NaN", func(r *Region) { r.Location.Lat = math.NaN() }, "region.location.lat", "between -90 and 90"},
		{"lon", func(r *Region) { r.Location.Lon = -181 }, "region.location.lon", "between -180 and 180"},
		{"negative cost", func(r *Region) { r.Cost = -0.1 }, "region.cost", ">= 0"},
		{"infinite cost", func(r *Region) { r.Cost = math.Inf(1) }, "region.cost", "finite"},
		{"bad status", func(r *Region) { r.Status = 9 }, "region.status", "unknown"},
	})
}

func TestValidateRegionAccepts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Region)
	}{
		{"any customer", func(r *Region) { r.Customers = []string{"*"} }},
		{"air-gapped top secret", func(r *Region) {
			r.NetworkDomain, r.Accreditation.MaxLevel, r.Accreditation.ImpactLevel = DomainAirGapped, label.TopSecret, 0
		}},
		{"CUI on the internet", func(r *Region) { r.NetworkDomain, r.Accreditation.MaxLevel = DomainInternet, label.CUI }},
		{"sub-compartment control", func(r *Region) { r.Accreditation.Controls = []string{"SI-G ABCD", "SIGMA 20", "DOD UCNI"} }},
		{"no capabilities", func(r *Region) { r.Capabilities, r.StorageTiers = nil, nil }},
		{"zero capacity", func(r *Region) { r.Capacity = Resources{} }},
		{"edge of the map", func(r *Region) { r.Location = Location{Lat: -90, Lon: 180} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := goodRegion()
			tc.mutate(r)
			if err := ValidateRegion(r); err != nil {
				t.Errorf("got %v; want nil", err)
			}
		})
	}
}

func TestValidateProvider(t *testing.T) {
	runViolationCases(t, goodProvider, ValidateProvider, []violationCase[Provider]{
		{"no id", func(p *Provider) { p.ID = "" }, "provider.id", "required"},
		{"id with dot", func(p *Provider) { p.ID = "ke.gov" }, "provider.id", "lowercase"},
		{"name too long", func(p *Provider) { p.Name = strings.Repeat("n", 300) }, "provider.name", "longer than"},
		{"no jurisdiction", func(p *Provider) { p.Jurisdiction = "" }, "provider.jurisdiction", "required"},
		{"bad jurisdiction", func(p *Provider) { p.Jurisdiction = "Kenya" }, "provider.jurisdiction", "ISO 3166"},
	})
}

func TestValidateTenant(t *testing.T) {
	runViolationCases(t, goodTenant, ValidateTenant, []violationCase[Tenant]{
		{"no id", func(x *Tenant) { x.ID = "" }, "tenant.id", "required"},
		{"upper-case id", func(x *Tenant) { x.ID = "KE-MOH" }, "tenant.id", "lowercase"},
		{"no nation", func(x *Tenant) { x.Nation = "" }, "tenant.nation", "required"},
		{"bad nation", func(x *Tenant) { x.Nation = "KE" }, "tenant.nation", "ISO 3166"},
		{"unknown nation", func(x *Tenant) { x.Nation = "KKK" }, "tenant.nation", "ISO 3166"},
		{"no sector", func(x *Tenant) { x.Sector = "" }, "tenant.sector", "required"},
		{"bad sector", func(x *Tenant) { x.Sector = "health" }, "tenant.sector", "unknown sector"},
		{"no ceiling", func(x *Tenant) { x.Ceiling = "" }, "tenant.ceiling", "required"},
		{"bad ceiling", func(x *Tenant) { x.Ceiling = "SEKRET" }, "tenant.ceiling", "SEKRET"},
		{"ceiling not releasable to the nation", func(x *Tenant) { x.Ceiling = "SECRET//NOFORN" }, "tenant.ceiling", "not releasable to the tenant's nation KEN"},
		{"bad allowed region", func(x *Tenant) { x.AllowedRegions = []string{"aws"} }, "tenant.allowed_regions[0]", "provider/id"},
		{"bad denied region", func(x *Tenant) { x.DeniedRegions = []string{"aws/EU"} }, "tenant.denied_regions[0]", "lowercase"},
		{"repeated region", func(x *Tenant) { x.DeniedRegions = []string{"aws/x", "aws/x"} }, "tenant.denied_regions[1]", "twice"},
		{"bad provider", func(x *Tenant) { x.DeniedProviders = []string{"AWS"} }, "tenant.denied_providers[0]", "lowercase"},
		{"bad member", func(x *Tenant) { x.Members[0].Name = "a/b" }, "tenant.members[0].name", "letters"},
		{"repeated member", func(x *Tenant) { x.Members = append(x.Members, x.Members[0]) }, "tenant.members[1].name", "twice"},
		{"no roles", func(x *Tenant) { x.Members[0].Roles = nil }, "tenant.members[0].roles", "required"},
		{"admin role", func(x *Tenant) { x.Members[0].Roles = []authz.Role{authz.RoleCatalogAdmin} }, "tenant.members[0].roles", "grants only"},
		{"negative placement cap", func(x *Tenant) { x.MaxPlacements = -1 }, "tenant.max_placements", "between 0 (no cap) and 100000, got -1"},
		{"placement cap too high", func(x *Tenant) { x.MaxPlacements = 100001 }, "tenant.max_placements", "got 100001"},
	})
}

// ids is n distinct ids of size bytes, starting with prefix.
func ids(prefix string, n, size int) []string {
	out := make([]string, n)
	for i := range out {
		id := fmt.Sprintf("%s%d-", prefix, i)
		out[i] = id + strings.Repeat("x", size-len(id))
	}
	return out
}

// countries is every ISO 3166 trigraph the label package knows.
func countries() []string {
	var out []string
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				if code := string([]rune{a, b, c}); label.IsCountry(code) {
					out = append(out, code)
				}
			}
		}
	}
	return out
}

// longestBanner is a SECRET banner releasable to every country whose
// canonical form is as long as MaxBannerLen allows: SAP programs of 60
// characters until the next would not fit.
func longestBanner(tb testing.TB) string {
	tb.Helper()
	rel := []string{"USA"}
	for _, c := range countries() {
		if c != "USA" {
			rel = append(rel, c)
		}
	}
	dissem := "//REL TO " + strings.Join(rel, ", ")
	var progs []string
	for i := 0; ; i++ {
		p := fmt.Sprintf("P%03d", i)
		p += strings.Repeat("X", 60-len(p))
		if len("SECRET//SAR-")+len(strings.Join(append(progs, p), "/"))+len(dissem) > MaxBannerLen {
			break
		}
		progs = append(progs, p)
	}
	l, err := label.Parse("SECRET//SAR-" + strings.Join(progs, "/") + dissem)
	if err != nil {
		tb.Fatal(err)
	}
	if c := l.String(); len(c) > MaxBannerLen || len(c) < MaxBannerLen-64 {
		tb.Fatalf("canonical banner of %d bytes; want within 64 of %d", len(c), MaxBannerLen)
	}
	return l.String()
}

func TestValidateWorkload(t *testing.T) {
	longest := longestBanner(t)
	runViolationCases(t, goodWorkload, func(w *Workload) error { return ValidateWorkload(w, "US") }, []violationCase[Workload]{
		{"no label", func(w *Workload) { w.Banner = "" }, "workload.label", "required"},
		{"no name", func(w *Workload) { w.Name = "" }, "workload.name", "required"},
		{"long name", func(w *Workload) { w.Name = strings.Repeat("x", 129) }, "workload.name", "longer than 128"},
		{"name with space", func(w *Workload) { w.Name = "my job" }, "workload.name", "only letters"},
		{"no tenant", func(w *Workload) { w.Tenant = "" }, "workload.tenant", "required"},
		{"bad tenant", func(w *Workload) { w.Tenant = "US DoD" }, "workload.tenant", "lowercase"},
		{"no residency", func(w *Workload) { w.AllowedCountries = nil }, "workload.allowed_storage_countries",
			`required; use ["*"] for no residency restriction`},
		{"empty residency", func(w *Workload) { w.AllowedCountries = []string{} }, "workload.allowed_storage_countries", "required"},
		{"star and more", func(w *Workload) { w.AllowedCountries = []string{"*", "USA"} }, "workload.allowed_storage_countries", `"*" must be the only entry`},
		{"bad country", func(w *Workload) { w.AllowedCountries = []string{"USA", "uk"} }, "workload.allowed_storage_countries[1]", "ISO 3166"},
		{"repeated country", func(w *Workload) { w.AllowedCountries = []string{"USA", "USA"} }, "workload.allowed_storage_countries[1]", "repeats"},
		{"bad jurisdiction", func(w *Workload) { w.AllowedJurisdictions = []string{"*"} }, "workload.allowed_jurisdictions[0]", "ISO 3166"},
		{"bad export control", func(w *Workload) { w.ExportControl = 7 }, "workload.export_control", "unknown"},
		{"ITAR abroad", func(w *Workload) { w.ExportControl, w.AllowedCountries = ExportITAR, []string{"GBR", "AUS"} },
			"workload.allowed_storage_countries", "export-controlled data must be allowed to rest in USA"},
		{"EAR abroad", func(w *Workload) { w.ExportControl, w.AllowedCountries = ExportEAR, []string{"CAN"} },
			"workload.allowed_storage_countries", "export-controlled data must be allowed to rest in USA"},
		{"bad capability", func(w *Workload) { w.Capabilities = []string{"GPU"} }, "workload.capabilities[0]", "lowercase"},
		{"bad storage tier", func(w *Workload) { w.StorageTier = "near line" }, "workload.storage_tier", "lowercase"},
		{"negative cpu", func(w *Workload) { w.Resources.MilliCPU = -5 }, "workload.resources.milli_cpu", "negative"},
		{"negative gpu", func(w *Workload) { w.Resources.GPU = -1 }, "workload.resources.gpu", "negative"},
		{"no resources", func(w *Workload) { w.Resources = Resources{} }, "workload.resources", "at least one of milli_cpu, memory_mib, gpu must be positive"},
		{"no replicas", func(w *Workload) { w.Replicas = 0 }, "workload.replicas", "between 1 and 16"},
		{"too many replicas", func(w *Workload) { w.Replicas = 17 }, "workload.replicas", "between 1 and 16"},
		{"negative distance", func(w *Workload) { w.Spread.MinDistanceKm = -1 }, "workload.spread.min_distance_km", ">= 0"},
		{"distance past the antipode", func(w *Workload) { w.Spread.MinDistanceKm = 20040 }, "workload.spread.min_distance_km", "< 20040"},
		{"NaN distance", func(w *Workload) { w.Spread.MinDistanceKm = math.NaN() }, "workload.spread.min_distance_km", ">= 0"},
		{"bad preferred provider", func(w *Workload) { w.Preferences.Providers = []string{"aws", "Azure"} }, "workload.preferences.providers[1]", "lowercase"},
		{"17 preferred providers", func(w *Workload) { w.Preferences.Providers = ids("p", 17, 63) }, "workload.preferences.providers", "at most 16 entries, got 17"},
		{"256 preferred providers", func(w *Workload) { w.Preferences.Providers = ids("p", 256, 63) }, "workload.preferences.providers", "at most 16 entries, got 256"},
		{"17 capabilities", func(w *Workload) { w.Capabilities = ids("c", 17, 8) }, "workload.capabilities", "at most 16 entries, got 17"},
		{"257 countries", func(w *Workload) { w.AllowedCountries = slices.Repeat([]string{"USA"}, 257) }, "workload.allowed_storage_countries", "at most 256 entries"},
		{"every list full of long ids", func(w *Workload) {
			w.Banner, w.AllowedCountries, w.AllowedJurisdictions = longest, countries(), countries()
			w.Name, w.Capabilities, w.Preferences.Providers = strings.Repeat("n", 128), ids("c", 16, 63), ids("p", 16, 63)
		}, "workload", "more than 8192: shorten"},
		{"cost weight above 1", func(w *Workload) { w.Preferences.CostWeight = 1.5 }, "workload.preferences.cost_weight", "between 0 and 1"},
		{"negative cost weight", func(w *Workload) { w.Preferences.CostWeight = -0.1 }, "workload.preferences.cost_weight", "between 0 and 1"},
		{"near lat", func(w *Workload) { w.Preferences.Near.Lat = -91 }, "workload.preferences.near.lat", "between -90 and 90"},
		{"near lon", func(w *Workload) { w.Preferences.Near.Lon = 200 }, "workload.preferences.near.lon", "between -180 and 180"},
	})
}

func TestValidateWorkloadAccepts(t *testing.T) {
	longest := longestBanner(t)
	for _, tc := range []struct {
		name   string
		mutate func(*Workload)
	}{
		{"anywhere", func(w *Workload) { w.AllowedCountries = []string{"*"} }},
		{"ITAR anywhere", func(w *Workload) { w.ExportControl, w.AllowedCountries = ExportITAR, []string{"*"} }},
		{"ITAR in the USA and GBR", func(w *Workload) { w.ExportControl, w.AllowedCountries = ExportITAR, []string{"GBR", "USA"} }},
		{"one replica, no spread", func(w *Workload) { w.Replicas, w.Spread = 1, Spread{} }},
		{"sixteen replicas", func(w *Workload) { w.Replicas = 16 }},
		{"memory only", func(w *Workload) { w.Resources = Resources{MemoryMiB: 1} }},
		{"gpu only", func(w *Workload) { w.Resources = Resources{GPU: 1} }},
		{"no preferences", func(w *Workload) { w.Preferences = Preferences{} }},
		{"cost only", func(w *Workload) { w.Preferences.CostWeight = 1 }},
		{"no storage tier", func(w *Workload) { w.StorageTier = "" }},
		{"16 preferred providers, 16 capabilities", func(w *Workload) {
			w.Preferences.Providers, w.Capabilities = ids("p", 16, 63), ids("c", 16, 63)
		}},
		// The bound on the encoded size leaves room for the largest
		// label with every country allowed, a name of the longest and
		// a few capabilities and providers.
		{"longest label, every country, longest name", func(w *Workload) {
			w.Banner, w.AllowedCountries, w.AllowedJurisdictions = longest, countries(), countries()
			w.Name, w.Tenant, w.StorageTier = strings.Repeat("n", 128), strings.Repeat("t", 63), strings.Repeat("s", 63)
			w.Capabilities, w.Preferences.Providers = ids("c", 4, 16), ids("p", 4, 16)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := goodWorkload()
			tc.mutate(w)
			if err := ValidateWorkload(w, "US"); err != nil {
				t.Errorf("got %v; want nil", err)
			}
		})
	}
}

func TestValidateWorkloadLabel(t *testing.T) {
	for _, banner := range []string{"UNCLASSIFIED", "CUI//SP-EXPT//NOFORN", "SECRET//REL TO USA, AUS, GBR", "TOP SECRET//SI/TK//NOFORN"} {
		t.Run(banner, func(t *testing.T) {
			want, err := label.Parse(banner)
			if err != nil {
				t.Fatalf("label.Parse(%q): %v", banner, err)
			}
			w := goodWorkload()
			w.Banner = banner
			if err := ValidateWorkload(w, "US"); err != nil {
				t.Fatalf("got %v; want nil", err)
			}
			if !reflect.DeepEqual(w.Label, want) {
				t.Errorf("Label = %+v; want %+v", w.Label, want)
			}
			if w.Banner != want.String() {
				t.Errorf("Banner = %q; want the canonical %q", w.Banner, want.String())
			}
		})
	}
}

func TestValidateWorkloadBadLabel(t *testing.T) {
	for _, banner := range []string{"SECRET//NOFORN/REL TO USA, CAN", "SECRET//REL TO GBR, USA", "TOP SECRET//HCS", "SEKRIT"} {
		t.Run(banner, func(t *testing.T) {
			_, perr := label.Parse(banner)
			if perr == nil {
				t.Fatalf("label.Parse(%q) accepted an invalid banner", banner)
			}
			w := goodWorkload()
			w.Banner = banner
			wantViolation(t, ValidateWorkload(w, "US"), "workload.label", perr.Error())
			if w.Banner != banner {
				t.Errorf("Banner = %q; want it left as %q when it does not parse", w.Banner, banner)
			}
		})
	}
}

// TestValidateListsEveryField checks that one call reports every bad
// field, not only the first.
func TestValidateListsEveryField(t *testing.T) {
	r := goodRegion()
	r.ID = "Bad ID"
	r.Country = "XX"
	r.OperatorNationalities = []string{"USA", "gb"}
	r.Accreditation.Expires = time.Time{}
	r.Capacity.MilliCPU = -1
	r.Location.Lat = 100
	r.Customers = []string{"*", "USA/navy"}
	r.Accreditation.Controls = []string{"SI", "tk"}
	err := ValidateRegion(r)
	for _, field := range []string{
		"region.id", "region.country", "region.operator_nationalities[1]", "region.accreditation.expires",
		"region.capacity.milli_cpu", "region.location.lat", "region.customers[1]", "region.accreditation.controls[1]",
	} {
		wantViolation(t, err, field, "")
	}
	if n := len(err.(*InvalidError).Violations); n != 8 {
		t.Errorf("got %d violations; want 8: %v", n, err)
	}

	w := goodWorkload()
	w.Banner = ""
	w.Name = ""
	w.AllowedCountries = nil
	w.Replicas = 0
	w.Resources = Resources{}
	w.Preferences.CostWeight = 2
	err = ValidateWorkload(w, "US")
	for _, field := range []string{
		"workload.label", "workload.name", "workload.allowed_storage_countries", "workload.replicas",
		"workload.resources", "workload.preferences.cost_weight",
	} {
		wantViolation(t, err, field, "")
	}
	if got := err.Error(); !strings.HasPrefix(got, "invalid argument: workload.label: required; workload.name: required") {
		t.Errorf("Error() = %q; want the violations in field order", got)
	}
}

func TestEnumTextFoldsASCIIOnly(t *testing.T) {
	var p Personnel
	if err := p.UnmarshalText([]byte("CLEARED-TOP-SECRET")); err != nil || p != PersonnelClearedTopSecret {
		t.Errorf("upper case: %v, %v", p, err)
	}
	if err := p.UnmarshalText([]byte("cleared-top-\u017fecret")); err == nil {
		t.Errorf("long s accepted as %v", p)
	}
}

// TestCanonicalBannerBound checks that a banner within MaxBannerLen whose
// canonical form (tetragraphs expanded) is longer is refused, for a
// workload and for a tenant's ceiling: the canonical form is what is
// stored, and a stored record longer than the bound fails validation
// when read back, so the cache would drop it (a tenant that vanishes, a
// placement the reconciler never sees again).
func TestCanonicalBannerBound(t *testing.T) {
	// Every country once, the tetragraphs' members through the
	// tetragraphs, which the canonical form writes out as trigraphs.
	inTetra := map[string]bool{"USA": true}
	for _, tg := range []string{"NATO", "FVEY", "ACGU", "TEYE"} {
		for _, n := range label.MustParse("SECRET//REL TO USA, " + tg).Nations {
			inTetra[n] = true
		}
	}
	var all []string
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				if code := string([]rune{a, b, c}); label.IsCountry(code) && !inTetra[code] {
					all = append(all, code)
				}
			}
		}
	}
	rel := "//REL TO USA, ACGU, FVEY, NATO, TEYE, " + strings.Join(all, ", ") + "/DISPLAY ONLY ACGU, FVEY, NATO, TEYE"
	var progs []string
	for i := 0; ; i++ {
		p := fmt.Sprintf("P%03d", i) + strings.Repeat("X", 56)
		if len("SECRET//SAR-"+strings.Join(append(progs, p), "/")+rel) > MaxBannerLen {
			break
		}
		progs = append(progs, p)
	}
	banner := "SECRET//SAR-" + strings.Join(progs, "/") + rel
	l, err := label.Parse(banner)
	if err != nil {
		t.Fatal(err)
	}
	if len(banner) > MaxBannerLen || len(l.String()) <= MaxBannerLen {
		t.Fatalf("test banner of %d bytes, canonical %d: want within the bound, canonical beyond", len(banner), len(l.String()))
	}
	w := Workload{Name: "w", Tenant: "t", Banner: banner, AllowedCountries: []string{"*"}, Replicas: 1}
	if err := ValidateWorkload(&w, "US"); err == nil || !strings.Contains(err.Error(), "workload.label: its canonical form") {
		t.Errorf("ValidateWorkload: got %v; want workload.label refused for its canonical length", err)
	}
	tn := Tenant{ID: "t", Name: "t", Nation: "USA", Sector: "defense", Ceiling: banner}
	if err := ValidateTenant(&tn); err == nil || !strings.Contains(err.Error(), "tenant.ceiling: its canonical form") {
		t.Errorf("ValidateTenant: got %v; want tenant.ceiling refused for its canonical length", err)
	}
}
