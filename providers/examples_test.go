package providers

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/label"
)

// exampleNow is when the example plans are decided: every default
// accreditation is in force.
var exampleNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// loadExample strictly decodes and validates one workload spec.
func loadExample(tb testing.TB, path string) *router.Workload {
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
	if err := router.ValidateWorkload(&w, "US"); err != nil {
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

// TestExamples loads every examples/*.yaml, validates it, and plans it
// against the default catalogue: each seed scenario must come out as its
// comment says.
func TestExamples(t *testing.T) {
	cat := mustDefault(t)
	tenants := map[string]*router.Tenant{}
	for i := range cat.Tenants {
		tenants[cat.Tenants[i].ID] = &cat.Tenants[i]
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
			w := loadExample(t, path)
			tenant, ok := tenants[w.Tenant]
			if !ok {
				t.Fatalf("tenant %s is not in the default catalogue", w.Tenant)
			}
			p := &planned{in: router.Input{Workload: w, Tenant: tenant, Regions: regions, Now: exampleNow}}
			p.d = router.NewEngine().Plan(p.in)
			if p.d.Err != nil {
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
