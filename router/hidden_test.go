package router

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/classroute/classroute/router/label"
)

// TestHiddenRegionsAreNoFigure checks that a region a tenant may not
// know of moves nothing in a decision for that tenant: adding such
// regions, in any state (full, empty, unhealthy), leaves Place's choice
// and refusal text, and Plan's refusal text and the verdicts of the
// regions the tenant may know of, exactly as they were. Without the
// rule, a refusal's "among N regions" and its per-rule counts move.
func TestHiddenRegionsAreNoFigure(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	tenant := func(id, nation, sector, ceiling string) *Tenant {
		tn := &Tenant{ID: id, Name: id, Nation: nation, Sector: sector, Ceiling: ceiling}
		if err := ValidateTenant(tn); err != nil {
			t.Fatal(err)
		}
		return tn
	}
	tenants := []*Tenant{
		tenant("nld-mod", "NLD", "defense", "UNCLASSIFIED"),
		tenant("ke-moh", "KEN", "civil", "CUI"),
		tenant("us-army", "USA", "defense", "SECRET"),
		tenant("us-ic", "USA", "intelligence", "TOP SECRET//HCS-P/SI/SI-G/TK//NOFORN"),
	}
	base := catalogue()
	e := NewEngine()
	checked := 0
	for iter := 0; iter < 400; iter++ {
		tn := tenants[rng.Intn(len(tenants))]
		l := randomLabel(rng)
		if l.Validate() != nil || !tn.CeilingLabel.Dominates(l) {
			continue
		}
		countries := [][]string{{"*"}, {"USA"}, {"KEN"}, {"GBR", "AUS"}}[rng.Intn(4)]
		w := Workload{Name: "w", Tenant: tn.ID, Label: l, AllowedCountries: countries,
			Replicas: 1 + rng.Intn(3), Resources: Resources{MilliCPU: int64(rng.Intn(3)) * 600_000}}
		in := Input{Workload: &w, Tenant: tn, Regions: base, Now: testNow}

		// The same catalogue with hidden regions added: copies of
		// catalogue regions that serve other nations only, or are
		// accredited above the tenant's ceiling, in any state.
		more := slices.Clone(base)
		for i := 0; i < 1+rng.Intn(6); i++ {
			r := *base[rng.Intn(len(base))].Region
			r.ID = r.ID + "-hidden-" + string(rune('a'+i))
			if rng.Intn(2) == 0 || tn.CeilingLabel.Level == label.TopSecret {
				r.Customers = []string{"ZZZ"}
			} else {
				r.Accreditation.MaxLevel = tn.CeilingLabel.Level + 1
			}
			if tn.MayKnow(&r) {
				t.Fatalf("test bug: %s is known to %s", r.Key(), tn.ID)
			}
			st := RegionState{Region: &r}
			switch rng.Intn(3) {
			case 0:
				st.Used = r.Capacity
			case 1:
				st.Health = &Health{Healthy: false, Reason: "down"}
			}
			more = append(more, st)
		}
		hid := in
		hid.Regions = more

		p1, p2 := e.Place(in), e.Place(hid)
		if errString(p1.Err) != errString(p2.Err) || !slices.Equal(keysOf(&in, p1.Chosen), keysOf(&hid, p2.Chosen)) {
			t.Fatalf("%s, %s: Place moved with hidden regions:\n %v %v\n %v %v", tn.ID, l, keysOf(&in, p1.Chosen), p1.Err, keysOf(&hid, p2.Chosen), p2.Err)
		}
		d1, d2 := e.Plan(in), e.Plan(hid)
		if errString(d1.Err) != errString(d2.Err) {
			t.Fatalf("%s, %s: Plan refusal moved with hidden regions:\n %v\n %v", tn.ID, l, d1.Err, d2.Err)
		}
		known := func(in *Input, d Decision) []Explained {
			var out []Explained
			for _, x := range d.Explain(in) {
				if i := slices.IndexFunc(in.Regions, func(rs RegionState) bool { return rs.Region.Key() == x.Key }); tn.MayKnow(in.Regions[i].Region) {
					out = append(out, x)
				}
			}
			return out
		}
		if a, b := known(&in, d1), known(&hid, d2); !slicesEqualExplained(a, b) {
			t.Fatalf("%s, %s: Plan verdicts of known regions moved with hidden regions:\n %+v\n %+v", tn.ID, l, a, b)
		}
		checked++
	}
	if checked < 100 {
		t.Fatalf("only %d decisions checked", checked)
	}
}

func keysOf(in *Input, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = in.Regions[j].Region.Key()
	}
	return out
}

func slicesEqualExplained(a, b []Explained) bool {
	return slices.EqualFunc(a, b, func(x, y Explained) bool {
		return x.Key == y.Key && x.Eligible == y.Eligible && x.Chosen == y.Chosen && x.Score == y.Score &&
			slices.EqualFunc(x.Reasons, y.Reasons, Reason.Equal) && x.Via == y.Via
	})
}
