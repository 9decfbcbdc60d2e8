package router

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/label"
)

// The engine fails closed on input no decision can be trusted on, even
// from an in-process caller that skipped validation.
func TestEngineRefusesUntrustworthyInput(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(in *Input)
		field  string
	}{
		{"zero clock", func(in *Input) { in.Now = time.Time{} }, "now"},
		{"NaN spread", func(in *Input) { in.Workload.Spread.MinDistanceKm = math.NaN() }, "workload.spread.min_distance_km"},
		{"infinite spread", func(in *Input) { in.Workload.Spread.MinDistanceKm = math.Inf(1) }, "workload.spread.min_distance_km"},
		{"negative spread", func(in *Input) { in.Workload.Spread.MinDistanceKm = -1 }, "workload.spread.min_distance_km"},
	}
	e := NewEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := oneRegion(baseRegion(), baseWorkload(), baseTenant(), Resources{})
			if d := e.Place(in); d.Err != nil {
				t.Fatalf("baseline refused: %v", d.Err)
			}
			tt.mutate(&in)
			for name, d := range map[string]Decision{"Place": e.Place(in), "Plan": e.Plan(in)} {
				var inv *InvalidError
				if !errors.As(d.Err, &inv) || !strings.Contains(inv.Error(), tt.field) || len(d.Chosen) != 0 {
					t.Errorf("%s: err %v, chosen %v; want an invalid-input error naming %s and nothing chosen", name, d.Err, d.Chosen, tt.field)
				}
			}
		})
	}
}

// Foreign-disclosure and US-audience controls make even unclassified data
// US-only: a region with foreign operators is refused for releasability.
func TestUSAudienceControlsKeepDataWithUSOperators(t *testing.T) {
	foreign := baseRegion()
	foreign.OperatorNationalities = []string{"CHN", "ZAF"}
	foreign.Accreditation.MaxLevel = label.CUI
	foreign.NetworkDomain = DomainInternet
	foreign.Customers = []string{"*"}
	foreign.Personnel = PersonnelNone
	foreign.Accreditation.Controls = nil
	for _, banner := range []string{"UNCLASSIFIED//RELIDO", "UNCLASSIFIED//DISPLAY ONLY GBR", "CUI//FED ONLY", "CUI//FEDCON", "CUI//NOCON", "CUI//DL ONLY"} {
		t.Run(banner, func(t *testing.T) {
			w := baseWorkload()
			w.Label = label.MustParse(banner)
			w.Banner = w.Label.String()
			w.AllowedCountries, w.AllowedJurisdictions = []string{"*"}, nil
			w.Capabilities, w.StorageTier = nil, ""
			tenant := &Tenant{ID: "ke-moh", Nation: "KEN", Sector: "civil"} // no US authorisation minimums
			d := NewEngine().Plan(oneRegion(foreign, w, tenant, Resources{}))
			if d.Err == nil || d.Verdicts[0].Eligible {
				t.Fatalf("%s placed on a CHN/ZAF-operated region", banner)
			}
			if got := d.Verdicts[0].Reasons; len(got) != 1 || got[0].Code != ReasonReleasability {
				t.Errorf("reasons %v; want releasability alone", got)
			}
		})
	}
}
