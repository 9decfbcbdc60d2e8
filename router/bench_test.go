package router

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// benchCountry is a country regions are generated in: who operates them
// and a box of latitudes and longitudes.
type benchCountry struct {
	code             string
	lat0, lat1       float64
	lon0, lon1       float64
	customersSecret  []string
	nationalProvider string
}

var benchCountries = []benchCountry{
	{"USA", 30, 47, -122, -72, []string{"USA"}, "us-gov"},
	{"AUS", -38, -20, 115, 153, []string{"AUS", "USA/defense", "GBR/defense"}, "au-gov"},
	{"GBR", 50, 57, -5, 1, []string{"GBR", "USA/defense", "AUS/defense"}, "uk-gov"},
	{"CAN", 43, 53, -123, -63, []string{"CAN", "USA"}, "ca-gov"},
	{"FRA", 43, 50, -1, 7, []string{"FRA"}, "fr-gov"},
}

var benchProviders = []string{"aws", "azure", "google", "oracle"}

// genRegions makes n synthetic regions from seed: about 20% commercial,
// 15% US government (CUI), 45% SECRET and 20% TOP SECRET, spread over
// five countries and eight providers, with a few draining, revoked,
// expired or full. For benchWorkload about 30–60% are eligible.
func genRegions(n int, seed int64) []RegionState {
	rng := rand.New(rand.NewSource(seed))
	out := make([]RegionState, n)
	pick := func(p []float64) int { // index by weights p (summing to 1)
		x := rng.Float64()
		for i, w := range p {
			if x < w {
				return i
			}
			x -= w
		}
		return len(p) - 1
	}
	for i := range out {
		r := &Region{
			ID:       fmt.Sprintf("r-%04d", i),
			Status:   StatusActive,
			Capacity: Resources{MilliCPU: int64(64000 * (1 + rng.Intn(16))), MemoryMiB: int64(262144 * (1 + rng.Intn(16))), GPU: int64(rng.Intn(3) * 8)},
			Cost:     0.5 + rng.Float64()*3,
			Accreditation: Accreditation{
				Expires: testNow.AddDate(0, 1+rng.Intn(36), 0),
			},
			Capabilities: []string{"gpu", "ai-agents"}[:rng.Intn(3)],
			StorageTiers: []string{"online", "nearline", "archive"}[:1+rng.Intn(3)],
		}
		c := benchCountries[pick([]float64{0.55, 0.15, 0.15, 0.1, 0.05})]
		r.Country, r.OperatorJurisdiction = c.code, c.code
		r.OperatorNationalities = []string{c.code}
		r.Location = Location{Lat: c.lat0 + rng.Float64()*(c.lat1-c.lat0), Lon: c.lon0 + rng.Float64()*(c.lon1-c.lon0)}
		r.Provider = benchProviders[rng.Intn(len(benchProviders))]
		switch pick([]float64{0.2, 0.15, 0.45, 0.2}) {
		case 0: // commercial
			r.Accreditation.MaxLevel = label.Unclassified
			r.NetworkDomain = DomainInternet
			r.OperatorNationalities = []string{c.code, "IND", "USA"}[:1+rng.Intn(3)]
			r.Customers = []string{"*"}
			r.Accreditation.FedRAMP = FedRAMPModerate
		case 1: // government, unclassified
			r.Accreditation.MaxLevel = label.CUI
			r.Accreditation.Controls = []string{"SP-EXPT"}
			r.Accreditation.ImpactLevel = 5
			r.Accreditation.FedRAMP = FedRAMPHigh
			r.NetworkDomain = []NetworkDomain{DomainInternet, DomainNIPRNet}[rng.Intn(2)]
			r.Personnel = PersonnelScreenedUSPersons
			r.Customers = []string{c.code}
		case 2: // SECRET
			r.Accreditation.MaxLevel = label.Secret
			r.Accreditation.ImpactLevel = 6
			r.Accreditation.Controls = []string{"SAR-BP", "RD"}[:rng.Intn(3)]
			r.NetworkDomain = []NetworkDomain{DomainSIPRNet, DomainAirGapped}[rng.Intn(2)]
			r.Personnel = PersonnelClearedSecret
			r.Customers = c.customersSecret
			if rng.Intn(4) == 0 {
				r.Provider = c.nationalProvider
			}
		case 3: // TOP SECRET
			r.Accreditation.MaxLevel = label.TopSecret
			r.Accreditation.Controls = []string{"TK", "SI", "HCS-P", "SI-G"}[:2+rng.Intn(3)]
			r.NetworkDomain = []NetworkDomain{DomainJWICS, DomainAirGapped}[rng.Intn(2)]
			r.Personnel = PersonnelClearedTopSecret
			r.Customers = c.customersSecret
		}
		switch rng.Intn(40) {
		case 0:
			r.Status = StatusDraining
		case 1:
			r.Status = StatusUnhealthy
		case 2:
			r.Accreditation.Revoked = true
		case 3:
			r.Accreditation.Expires = testNow.AddDate(0, -1, 0)
		}
		used := Resources{MilliCPU: r.Capacity.MilliCPU * int64(rng.Intn(100)) / 100, MemoryMiB: r.Capacity.MemoryMiB * int64(rng.Intn(100)) / 100}
		if rng.Intn(20) == 0 {
			used = r.Capacity
		}
		out[i] = RegionState{Region: r, Used: used, Rev: int64(i + 1), UsageRev: int64(i + 1)}
	}
	return out
}

// benchWorkload is the AUKUS workload of the benchmarks.
func benchWorkload() *Workload {
	return &Workload{
		Name:             "aukus",
		Tenant:           "us-navy",
		Label:            lab(label.Secret, nil, "USA", "AUS", "GBR"),
		Banner:           "SECRET//REL TO USA, AUS, GBR",
		AllowedCountries: []string{"USA", "AUS", "GBR"},
		StorageTier:      "online",
		Resources:        Resources{MilliCPU: 8000, MemoryMiB: 32768},
		Replicas:         2,
		Spread:           Spread{DistinctProviders: true},
		Preferences:      Preferences{Providers: []string{"aws", "azure"}},
	}
}

func benchInput(n int) Input {
	return Input{
		Workload: benchWorkload(),
		Tenant:   &Tenant{ID: "us-navy", Nation: "USA", Sector: "defense"},
		Regions:  genRegions(n, 42),
		Now:      testNow,
	}
}

var benchSizes = []int{20, 200, 2000}

// TestBenchCatalogue checks that the benchmarks measure what they claim:
// a realistic share of eligible regions, and a placement.
func TestBenchCatalogue(t *testing.T) {
	for _, n := range benchSizes {
		in := benchInput(n)
		d := NewEngine().Plan(in)
		var eligible int
		for _, v := range d.Verdicts {
			if v.Eligible {
				eligible++
			}
		}
		frac := float64(eligible) / float64(n)
		t.Logf("regions=%d: %d eligible (%.0f%%)", n, eligible, 100*frac)
		if frac < 0.3 || frac > 0.6 {
			t.Errorf("regions=%d: %.2f eligible; want 0.3–0.6", n, frac)
		}
		if d.Err != nil || len(d.Chosen) != 2 {
			t.Errorf("regions=%d: chose %v, %v", n, d.Chosen, d.Err)
		}
	}
}

func BenchmarkPlace(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("regions=%d", n), func(b *testing.B) {
			in := benchInput(n)
			e := NewEngine()
			b.ReportAllocs()
			// Each decision is timed too, for its median and tail:
			// the target is stated as a p50.
			lat := make([]time.Duration, 0, 1<<16)
			for b.Loop() {
				start := time.Now()
				d := e.Place(in)
				lat = append(lat, time.Since(start))
				if d.Err != nil {
					b.Fatal(d.Err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

func BenchmarkPlan(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("regions=%d", n), func(b *testing.B) {
			in := benchInput(n)
			e := NewEngine()
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Plan(in); d.Err != nil {
					b.Fatal(d.Err)
				}
			}
		})
	}
}

// benchForeignInput is benchInput with a UK SECRET label: every third
// region also holds a GBR SECRET accreditation, and the others are
// reached, or refused, through the default GBR→US entry.
func benchForeignInput(b *testing.B, n int) Input {
	in := benchInput(n)
	tab, err := equiv.NewTable(equiv.Default())
	if err != nil {
		b.Fatal(err)
	}
	w := benchWorkload()
	w.Marking = marking.MustParse(marking.GBR, "UK SECRET")
	w.Scheme, w.Label, w.Banner = marking.GBR, label.Label{}, w.Marking.String()
	in.Workload, in.Equivalence = w, tab
	in.Tenant = &Tenant{ID: "uk-mod", Nation: "GBR", Sector: "defense"}
	for i := 0; i < len(in.Regions); i += 3 {
		r := *in.Regions[i].Region
		r.Accreditations = []SchemeAccreditation{{Scheme: marking.GBR, MaxLevel: "SECRET",
			Level: marking.Level{Name: "SECRET", Rank: 1}, Authority: "UK MOD", Expires: testNow.AddDate(1, 0, 0)}}
		r.Customers = append(slices.Clone(r.Customers), "GBR")
		in.Regions[i].Region = &r
	}
	return in
}

// BenchmarkPlaceForeign is BenchmarkPlace for a label of another scheme:
// every region's accreditations are read through the equivalence table.
func BenchmarkPlaceForeign(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("regions=%d", n), func(b *testing.B) {
			in := benchForeignInput(b, n)
			e := NewEngine()
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Place(in); d.Err != nil {
					b.Fatal(d.Err)
				}
			}
		})
	}
}

// benchDependenciesInput is benchInput with three dependencies, as an
// analytic of the seed has: it reads an UNCLASSIFIED feed on the
// internet over a diode, writes to a SECRET placement of the tenant's
// with two replicas on SIPRNet, and calls a SECRET API there. Among the
// edges are 60 more that carry none of its flows, as an estate's
// catalogue would hold.
func benchDependenciesInput(b *testing.B, n int) Input {
	in := benchInput(n)
	var open, sipr []*Region
	for _, rs := range in.Regions {
		r := rs.Region
		switch {
		case r.NetworkDomain == DomainInternet && r.Accreditation.MaxLevel == label.Unclassified && r.Country == "USA":
			open = append(open, r)
		case r.NetworkDomain == DomainSIPRNet && r.Country == "USA":
			sipr = append(sipr, r)
		}
	}
	if len(open) == 0 || len(sipr) < 3 {
		b.Skipf("regions=%d: %d open and %d SIPRNet US regions: too few for the shape", n, len(open), len(sipr))
	}
	us := func(s string) marking.Label { return marking.FromUS(label.MustParse(s)) }
	w := benchWorkload()
	w.Tenant = "us-navy"
	w.Dependencies = []flow.Dependency{
		{Target: flow.ServiceNamed("feed"), Direction: flow.Read},
		{Target: flow.Placement("us-navy", "store"), Direction: flow.Write},
		{Target: flow.ServiceNamed("api"), Direction: flow.Call},
	}
	in.Workload = w
	// A tenant knows of services within its ceiling only.
	t := *in.Tenant
	t.Ceiling, t.CeilingLabel = "SECRET//REL TO USA, AUS, GBR", label.MustParse("SECRET//REL TO USA, AUS, GBR")
	in.Tenant = &t
	in.Services = map[string]*flow.Service{
		"feed": {Name: "feed", Label: us("UNCLASSIFIED"), Region: open[0].Key(), NetworkDomain: "internet", OperatorNationalities: []string{"USA"}},
		"api": {Name: "api", Label: marking.FromUS(w.Label), Region: sipr[0].Key(), NetworkDomain: "siprnet",
			OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelClearedSecret},
	}
	in.Targets = map[flow.Target]DependencyTarget{
		flow.Placement("us-navy", "store"): {Label: us("SECRET//REL TO USA, AUS, GBR"), Regions: sipr[1:3]},
	}
	in.Edges = []flow.Edge{{ID: "diode", Kind: flow.Diode, From: "internet", To: "siprnet", Direction: flow.Write,
		Range: flow.NewRange(us("UNCLASSIFIED"), us("UNCLASSIFIED")), Authority: "bench", Expires: testNow.AddDate(1, 0, 0)}}
	for i := range 60 {
		a, z := in.Regions[i%n].Region, in.Regions[(i*7+1)%n].Region
		in.Edges = append(in.Edges, flow.Edge{ID: fmt.Sprintf("e%d", i), Kind: flow.Access, From: a.Key(), To: z.Key(), Direction: flow.Call,
			Range: flow.NewRange(us("UNCLASSIFIED"), us("CUI")), Authority: "bench", Expires: testNow.AddDate(1, 0, 0)})
	}
	return in
}

// BenchmarkPlaceDependencies is BenchmarkPlace for a workload with three
// dependencies (benchDependenciesInput): each region's flows are decided
// against every replica of each target and every edge. Compare with
// BenchmarkPlace at the same size.
func BenchmarkPlaceDependencies(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("regions=%d", n), func(b *testing.B) {
			in := benchDependenciesInput(b, n)
			e := NewEngine()
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Place(in); d.Err != nil {
					b.Fatal(d.Err)
				}
			}
		})
	}
}
