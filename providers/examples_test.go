package providers

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// exampleNow is when the example plans are decided: every default
// accreditation is in force.
var exampleNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// loadExample strictly decodes and validates one workload spec, reading
// a bare level word in its tenant's scheme, as the daemon does.
func loadExample(tb testing.TB, path string, tenants map[string]*router.Tenant) *router.Workload {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var w router.Workload
	if err := dec.Decode(&w); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if err := router.ValidateWorkload(&w, tenants[w.Tenant].DefaultScheme()); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return &w
}

// planned is a plan of one example against the default catalogue.
type planned struct {
	in       router.Input
	d        router.Decision
	verdicts map[string]router.Explained
	chosen   []*router.Region
}

func (p *planned) refused(tb testing.TB, key string, code router.ReasonCode) {
	tb.Helper()
	v, ok := p.verdicts[key]
	if !ok {
		tb.Fatalf("no verdict for %s", key)
	}
	if v.Eligible || !slices.ContainsFunc(v.Reasons, func(r router.Reason) bool { return r.Code == code }) {
		tb.Errorf("%s = %+v; want refused for %s", key, v, code)
	}
}

// eligibleVia checks that region key is eligible, reached as via says.
func (p *planned) eligibleVia(tb testing.TB, key, via string) {
	tb.Helper()
	v, ok := p.verdicts[key]
	if !ok || !v.Eligible || !strings.Contains(v.Via, via) {
		tb.Errorf("%s = %+v; want eligible via %q", key, v, via)
	}
}

// eligibleFlow checks that region key is eligible, with a dependency
// flowing as flow says.
func (p *planned) eligibleFlow(tb testing.TB, key, flow string) {
	tb.Helper()
	v, ok := p.verdicts[key]
	if !ok || !v.Eligible || !slices.Contains(v.Flows, flow) {
		tb.Errorf("%s = %+v; want eligible with flow %q", key, v, flow)
	}
}

// withCustomers plans p's workload again with region key serving customers.
func (p *planned) withCustomers(tb testing.TB, key string, customers ...string) *planned {
	tb.Helper()
	in := p.in
	in.Regions = slices.Clone(in.Regions)
	for i, rs := range in.Regions {
		if rs.Region.Key() == key {
			r := *rs.Region
			r.Customers = customers
			in.Regions[i].Region = &r
		}
	}
	q := &planned{in: in, d: router.NewEngine().Plan(in), verdicts: map[string]router.Explained{}}
	for _, e := range q.d.Explain(&q.in) {
		q.verdicts[e.Key] = e
	}
	return q
}

func (p *planned) chosenKeys() []string {
	var keys []string
	for _, r := range p.chosen {
		keys = append(keys, r.Key())
	}
	slices.Sort(keys)
	return keys
}

func (p *planned) eligibleKeys() []string {
	var keys []string
	for k, v := range p.verdicts {
		if v.Eligible {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// refusedExamples are the examples whose plan must be a refusal.
var refusedExamples = map[string]bool{
	"flow-expt-model-commercial.yaml": true, "flow-ts-calls-secret-api.yaml": true,
	"flow-aus-calls-uk-service.yaml": true, "flow-ts-reads-over-lapsed-diode.yaml": true,
}

// loadCatalogueExamples strictly decodes and validates the edges
// (edge-*.yaml) and services (service-*.yaml) of examples/catalogue,
// which the flow examples depend on (DOMAIN.md §7.5).
func loadCatalogueExamples(tb testing.TB) ([]flow.Edge, []flow.Service) {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "examples", "catalogue", "*.yaml"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no catalogue examples: %v", err)
	}
	var edges []flow.Edge
	var svcs []flow.Service
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		switch name := filepath.Base(path); {
		case strings.HasPrefix(name, "edge-"):
			var e flow.Edge
			if err := dec.Decode(&e); err != nil {
				tb.Fatalf("%s: %v", path, err)
			}
			if err := e.Validate(marking.Parser{}); err != nil {
				tb.Fatalf("%s: %v", path, err)
			}
			edges = append(edges, e)
		case strings.HasPrefix(name, "service-"):
			var s flow.Service
			if err := dec.Decode(&s); err != nil {
				tb.Fatalf("%s: %v", path, err)
			}
			if err := s.Validate(marking.Parser{}); err != nil {
				tb.Fatalf("%s: %v", path, err)
			}
			svcs = append(svcs, s)
		default:
			tb.Fatalf("%s: neither edge-*.yaml nor service-*.yaml", path)
		}
	}
	return edges, svcs
}

// without is p planned again without the edge id.
func (p *planned) without(tb testing.TB, id string) *planned {
	tb.Helper()
	q := &planned{in: p.in}
	q.in.Edges = slices.DeleteFunc(slices.Clone(p.in.Edges), func(e flow.Edge) bool { return e.ID == id })
	if len(q.in.Edges) == len(p.in.Edges) {
		tb.Fatalf("no edge %s", id)
	}
	q.d = router.NewEngine().Plan(q.in)
	q.verdicts = map[string]router.Explained{}
	for _, e := range q.d.Explain(&q.in) {
		q.verdicts[e.Key] = e
	}
	return q
}

// TestExamples loads every examples/*.yaml, validates it, and plans it
// against the default catalogue: each seed scenario must come out as its
// comment says.
func TestExamples(t *testing.T) {
	cat := mustDefault(t)
	tenants := map[string]*router.Tenant{}
	for i := range cat.Tenants {
		tenants[cat.Tenants[i].ID] = &cat.Tenants[i]
	}
	table, err := equiv.NewTable(equiv.Default())
	if err != nil {
		t.Fatal(err)
	}
	edges, svcs := flow.Defaults()
	moreEdges, moreSvcs := loadCatalogueExamples(t)
	edges, svcs = append(edges, moreEdges...), append(svcs, moreSvcs...)
	services := map[string]*flow.Service{}
	for i := range svcs {
		services[svcs[i].Name] = &svcs[i]
	}
	regions := make([]router.RegionState, len(cat.Regions))
	for i := range cat.Regions {
		regions[i] = router.RegionState{Region: &cat.Regions[i]}
	}

	checks := map[string]func(t *testing.T, p *planned){
		"kenya-health-records.yaml": func(t *testing.T, p *planned) {
			if got := p.eligibleKeys(); !slices.Equal(got, []string{"ke-gov/konza-1"}) {
				t.Errorf("eligible %v; want only ke-gov/konza-1", got)
			}
			p.refused(t, "azure/southafricanorth", router.ReasonResidency)
		},
		"kenya-wants-south-africa.yaml": func(t *testing.T, p *planned) {
			if got := p.chosenKeys(); !slices.Equal(got, []string{"ke-gov/konza-1"}) {
				t.Errorf("chose %v; want ke-gov/konza-1 whatever the preference", got)
			}
			p.refused(t, "azure/southafricanorth", router.ReasonResidency)
			p.refused(t, "azure/southafricawest", router.ReasonResidency)
		},
		"ts-si-tk-noforn.yaml": func(t *testing.T, p *planned) {
			if len(p.chosen) != 2 {
				t.Fatalf("chose %v; want two regions", p.chosenKeys())
			}
			for _, r := range p.chosen {
				if r.Accreditation.MaxLevel != label.TopSecret || !slices.Equal(r.OperatorNationalities, []string{"USA"}) ||
					!contains(r.Accreditation.Controls, "SI") || !contains(r.Accreditation.Controls, "TK") {
					t.Errorf("chose %s: %s, controls %v, operated by %v", r.Key(), r.Accreditation.MaxLevel, r.Accreditation.Controls, r.OperatorNationalities)
				}
			}
			if km := router.Distance(p.chosen[0].Location, p.chosen[1].Location); km < 1000 {
				t.Errorf("replicas %.0f km apart; want at least 1000", km)
			}
			p.refused(t, "aws/ap-tsc-au-1", router.ReasonReleasability)
			p.refused(t, "aws/us-isob-east-1", router.ReasonLevel)
		},
		"aukus-secret.yaml": func(t *testing.T, p *planned) {
			if got, want := p.chosenKeys(), []string{"aws/ap-tsc-au-1", "aws/uk-classified-1"}; !slices.Equal(got, want) {
				t.Errorf("chose %v; want %v", got, want)
			}
			p.refused(t, "azure/usseceast", router.ReasonCustomer)
			p.refused(t, "azure/australiacentral", router.ReasonLevel)
		},
		"jedi-multivendor.yaml": func(t *testing.T, p *planned) {
			if len(p.chosen) != 3 {
				t.Fatalf("chose %v; want three regions", p.chosenKeys())
			}
			seen := map[string]bool{}
			for _, r := range p.chosen {
				if seen[r.Provider] {
					t.Errorf("chose %v; want three distinct providers", p.chosenKeys())
				}
				seen[r.Provider] = true
			}
			p.refused(t, "aws/us-isob-west-1", router.ReasonCapability)
		},
		"itar-export.yaml": func(t *testing.T, p *planned) {
			gov := []string{"aws/us-gov-east-1", "aws/us-gov-west-1", "azure/usdodcentral", "azure/usdodeast",
				"azure/usgovarizona", "azure/usgovtexas", "azure/usgovvirginia"}
			if got := p.eligibleKeys(); !slices.Equal(got, gov) {
				t.Errorf("eligible %v; want GovCloud and Azure Government %v", got, gov)
			}
			p.refused(t, "aws/us-east-1", router.ReasonLevel)
			p.refused(t, "google/us-east4", router.ReasonControls)
		},
		"nearline-storage.yaml": func(t *testing.T, p *planned) {
			p.refused(t, "oracle/us-gov-chicago-1", router.ReasonCapability)
			for _, r := range p.chosen {
				if !contains(r.StorageTiers, "nearline") {
					t.Errorf("chose %s, which has no nearline tier", r.Key())
				}
			}
		},
		// DOMAIN.md §6.5, one example per scenario.
		"scheme-uk-secret.yaml": func(t *testing.T, p *planned) {
			if l := p.in.Workload.Marking; l.Scheme != marking.GBR || l.Level.Name != "SECRET" {
				t.Errorf("label %v; want UK SECRET", l)
			}
			if got := p.eligibleKeys(); !slices.Equal(got, []string{"aws/uk-classified-1"}) {
				t.Errorf("eligible %v; want aws/uk-classified-1 only", got)
			}
			p.eligibleVia(t, "aws/uk-classified-1", "GBR SECRET accreditation (UK Ministry of Defence)")
			// Through GBR→US, but releasable to UK nationals only.
			p.refused(t, "aws/ap-tsc-au-1", router.ReasonReleasability)
			p.refused(t, "azure/usseceast", router.ReasonCustomer)
			p.refused(t, "azure/uksouth", router.ReasonLevel)
			// A US-operated SECRET region serving UK defence: refused for
			// UK SECRET, eligible through GBR→US for UK/US EYES ONLY.
			q := p.withCustomers(t, "azure/usseceast", "GBR/defense")
			q.refused(t, "azure/usseceast", router.ReasonReleasability)
			w := *p.in.Workload
			w.Banner, w.Scheme = "SECRET UK/US EYES ONLY", ""
			if err := router.ValidateWorkload(&w, marking.GBR); err != nil {
				t.Fatal(err)
			}
			q.in.Workload = &w
			r := q.withCustomers(t, "azure/usseceast", "GBR/defense")
			r.eligibleVia(t, "azure/usseceast", "US SECRET accreditation (US), through GBR→US v1")
		},
		"scheme-uk-eyes-only.yaml": func(t *testing.T, p *planned) {
			if got := p.eligibleKeys(); !slices.Equal(got, []string{"aws/uk-classified-1"}) {
				t.Errorf("eligible %v; want aws/uk-classified-1 only", got)
			}
			p.refused(t, "aws/ap-tsc-au-1", router.ReasonReleasability)
			// Azure Government Secret serves US tenants only, so the UK
			// tenant may not even know of it; were it to serve UK defence,
			// it would still be refused for releasability.
			p.refused(t, "azure/usseceast", router.ReasonCustomer)
			p.withCustomers(t, "azure/usseceast", "GBR/defense").refused(t, "azure/usseceast", router.ReasonReleasability)
		},
		"scheme-aus-protected.yaml": func(t *testing.T, p *planned) {
			if got := p.eligibleKeys(); !slices.Equal(got, []string{"aws/ap-tsc-au-1", "azure/australiacentral", "azure/australiacentral2"}) {
				t.Errorf("eligible %v", got)
			}
			p.eligibleVia(t, "azure/australiacentral", "AUS PROTECTED accreditation (Australian Department of Defence")
			p.refused(t, "azure/uksouth", router.ReasonNoEquivalence)
			p.refused(t, "aws/ap-southeast-2", router.ReasonNoEquivalence)
		},
		"scheme-aus-rel.yaml": func(t *testing.T, p *planned) {
			if l := p.in.Workload.Marking; l.Scheme != marking.AUS || !slices.Equal(l.Nations, []string{"AUS", "GBR", "USA"}) {
				t.Errorf("label %+v; want AUS with R = {AUS, GBR, USA}", l)
			}
			if got := p.eligibleKeys(); !slices.Equal(got, []string{"aws/ap-tsc-au-1", "aws/uk-classified-1"}) {
				t.Errorf("eligible %v", got)
			}
			p.eligibleVia(t, "aws/uk-classified-1", "through AUS→US v1")
			p.refused(t, "azure/usseceast", router.ReasonCustomer)
		},
		"scheme-kenya-confidential.yaml": func(t *testing.T, p *planned) {
			if l := p.in.Workload.Marking; l.Scheme != marking.KEN || l.Level.Name != "CONFIDENTIAL" {
				t.Errorf("label %v; want KEN CONFIDENTIAL", l)
			}
			if got := p.eligibleKeys(); !slices.Equal(got, []string{"ke-gov/konza-1"}) {
				t.Errorf("eligible %v; want only ke-gov/konza-1", got)
			}
			p.refused(t, "azure/southafricanorth", router.ReasonNoEquivalence)
			p.refused(t, "azure/southafricanorth", router.ReasonResidency)
		},
		"scheme-nato-restricted.yaml": func(t *testing.T, p *planned) {
			if got := p.eligibleKeys(); !slices.Equal(got, []string{"aws/eusc-de-east-1", "aws/uk-classified-1"}) {
				t.Errorf("eligible %v", got)
			}
			p.eligibleVia(t, "aws/eusc-de-east-1", "NATO RESTRICTED accreditation")
			p.refused(t, "aws/ap-tsc-au-1", router.ReasonReleasability)
			// Held as US CONFIDENTIAL: never on a CUI region, even one
			// serving UK defence.
			p.withCustomers(t, "aws/us-gov-west-1", "GBR/defense").refused(t, "aws/us-gov-west-1", router.ReasonLevel)
			p.refused(t, "azure/uksouth", router.ReasonLevel)
		},
		"scheme-uk-official-sensitive.yaml": func(t *testing.T, p *planned) {
			uk := []string{"aws/eu-west-2", "azure/uksouth", "azure/ukwest", "google/europe-west2", "oracle/uk-gov-london-1"}
			if got := p.eligibleKeys(); !slices.Equal(got, uk) {
				t.Errorf("eligible %v; want the UK commercial regions %v", got, uk)
			}
			p.refused(t, "aws/us-east-1", router.ReasonNoEquivalence)
			p.refused(t, "aws/eusc-de-east-1", router.ReasonNoEquivalence)
		},
		// DOMAIN.md §7.2 and §7.5: the seed's model endpoints.
		"flow-expt-model-commercial.yaml": func(t *testing.T, p *planned) {
			if got := p.eligibleKeys(); len(got) != 0 {
				t.Errorf("eligible %v; want none: export-controlled prompts never reach the commercial endpoint", got)
			}
			p.refused(t, "azure/usgovvirginia", "personnel")
			p.refused(t, "aws/us-gov-west-1", "write_down")
		},
		"flow-expt-model-gov.yaml": func(t *testing.T, p *planned) {
			got := p.eligibleKeys()
			if !slices.Contains(got, "azure/usgovvirginia") {
				t.Errorf("eligible %v; want azure/usgovvirginia among them", got)
			}
			for _, k := range got {
				if !slices.ContainsFunc(p.verdicts[k].Flows, func(f string) bool { return f == "call service:azure-openai-gov by the rule" }) {
					t.Errorf("%s: flows %v", k, p.verdicts[k].Flows)
				}
			}
		},
		// DOMAIN.md §7.5 with the records of examples/catalogue.
		"flow-secret-reads-open-store.yaml": func(t *testing.T, p *planned) {
			sipr := []string{"aws/us-isob-east-1", "aws/us-isob-west-1", "azure/usseceast", "azure/ussecwest"}
			if got := p.eligibleKeys(); !slices.Equal(got, sipr) {
				t.Errorf("eligible %v; want the SIPRNet regions %v", got, sipr)
			}
			for _, k := range sipr {
				p.eligibleFlow(t, k, "read service:weather-store through edge diode-internet-siprnet")
			}
			p.refused(t, "oracle/us-nsr-east-1", "no_edge")
			p.without(t, "diode-internet-siprnet").refused(t, "aws/us-isob-east-1", "no_edge")
		},
		"flow-secret-writes-release-bucket.yaml": func(t *testing.T, p *planned) {
			p.eligibleFlow(t, "azure/usseceast", "write service:release-bucket through edge guard-siprnet-internet")
			q := p.without(t, "guard-siprnet-internet")
			if q.d.Err == nil {
				t.Fatalf("without the guard: chose %v; want refused", q.d.Chosen)
			}
			q.refused(t, "azure/usseceast", "write_down")
			q.refused(t, "oracle/us-nsr-east-1", "write_down")
		},
		"flow-ts-calls-secret-api.yaml": func(t *testing.T, p *planned) {
			for _, k := range []string{"aws/us-iso-east-1", "azure/usnateast", "google/gdc-airgapped-us"} {
				p.refused(t, k, "write_down")
			}
		},
		"flow-aus-calls-uk-service.yaml": func(t *testing.T, p *planned) {
			for _, k := range []string{"azure/australiacentral", "azure/australiacentral2"} {
				p.refused(t, k, router.ReasonNoEquivalence)
				p.refused(t, k, router.ReasonResidency)
				if slices.ContainsFunc(p.verdicts[k].Reasons, func(r router.Reason) bool { return r.Code == "incomparable" }) {
					t.Errorf("%s: %v; the missing entry is the reason, not incomparable", k, p.verdicts[k].Reasons)
				}
			}
		},
		"flow-ts-reads-over-lapsed-diode.yaml": func(t *testing.T, p *planned) {
			for _, k := range []string{"aws/us-iso-east-1", "aws/us-iso-west-1", "azure/usnateast", "azure/usnatwest"} {
				p.refused(t, k, "cds_expired")
			}
			p.refused(t, "google/gdc-airgapped-us", "no_edge")
		},
		"foreign-military-nld.yaml": func(t *testing.T, p *planned) {
			if got := p.chosenKeys(); !slices.Equal(got, []string{"aws/eusc-de-east-1"}) {
				t.Errorf("chose %v; want aws/eusc-de-east-1", got)
			}
		},
		"foreign-military-pol.yaml": func(t *testing.T, p *planned) {
			if got := p.chosenKeys(); !slices.Equal(got, []string{"aws/eusc-de-east-1"}) {
				t.Errorf("chose %v; want aws/eusc-de-east-1", got)
			}
		},
	}

	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			w := loadExample(t, path, tenants)
			tenant, ok := tenants[w.Tenant]
			if !ok {
				t.Fatalf("tenant %s is not in the default catalogue", w.Tenant)
			}
			p := &planned{in: router.Input{Workload: w, Tenant: tenant, Regions: regions, Now: exampleNow, Equivalence: table,
				Edges: edges, Services: services}}
			p.d = router.NewEngine().Plan(p.in)
			switch {
			case refusedExamples[name] && p.d.Err == nil:
				t.Fatalf("plan chose %v; want it refused", p.d.Chosen)
			case !refusedExamples[name] && p.d.Err != nil:
				t.Fatalf("plan: %v", p.d.Err)
			}
			p.verdicts = map[string]router.Explained{}
			for _, e := range p.d.Explain(&p.in) {
				p.verdicts[e.Key] = e
			}
			for _, i := range p.d.Chosen {
				p.chosen = append(p.chosen, regions[i].Region)
			}
			check, ok := checks[name]
			if !ok {
				t.Fatalf("no expectations for %s: add them to TestExamples", name)
			}
			check(t, p)
		})
	}
}
