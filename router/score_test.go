package router

import (
	"math"
	"slices"
	"testing"
)

func TestDistance(t *testing.T) {
	tests := []struct {
		name string
		a, b Location
		want float64 // km
		tol  float64
	}{
		{"same point", Location{38.9, -77.4}, Location{38.9, -77.4}, 0, 1e-9},
		{"one degree of equator", Location{0, 0}, Location{0, 1}, 111.195, 0.01},
		{"London to Paris", Location{51.5074, -0.1278}, Location{48.8566, 2.3522}, 343.6, 1},
		{"antipodes", Location{0, 0}, Location{0, 180}, halfCircumferenceKm, 1e-6},
		{"pole to pole", Location{90, 0}, Location{-90, 0}, halfCircumferenceKm, 1e-6},
		{"across the date line", Location{0, 179.5}, Location{0, -179.5}, 111.195, 0.01},
		{"JFK to Heathrow", Location{40.6413, -73.7781}, Location{51.4700, -0.4543}, 5540, 5}, // ~5,555 km on the WGS84 ellipsoid
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Distance(tt.a, tt.b); math.Abs(got-tt.want) > tt.tol {
				t.Errorf("Distance = %.3f; want %.3f ± %g", got, tt.want, tt.tol)
			}
			if got, back := Distance(tt.a, tt.b), Distance(tt.b, tt.a); got != back {
				t.Errorf("Distance not symmetric: %v vs %v", got, back)
			}
		})
	}
}

// scoreRegions returns the region keys of a Plan's eligible verdicts, best first.
func rankedKeys(tb testing.TB, d Decision, in *Input) []string {
	tb.Helper()
	var keys []string
	for _, e := range d.Explain(in) {
		if e.Eligible {
			keys = append(keys, e.Key)
		}
	}
	return keys
}

// scoreInput is two or more baseline regions that differ only by id and the mutations.
func scoreInput(tb testing.TB, w *Workload, muts ...func(r *Region)) Input {
	tb.Helper()
	in := Input{Workload: w, Tenant: baseTenant(), Now: testNow}
	for i, m := range muts {
		r := baseRegion()
		r.ID = string(rune('a' + i))
		m(r)
		in.Regions = append(in.Regions, RegionState{Region: r})
	}
	return in
}

func TestScoreRanking(t *testing.T) {
	tests := []struct {
		name string
		work func(w *Workload)
		muts []func(r *Region)
		want []string
	}{
		{"cheaper first",
			nil,
			[]func(*Region){func(r *Region) { r.Cost = 2 }, func(r *Region) { r.Cost = 1 }},
			[]string{"aws/b", "aws/a"}},
		{"more headroom first when cost is equal",
			nil,
			[]func(*Region){
				func(r *Region) { r.Capacity = Resources{MilliCPU: 8000, MemoryMiB: 16384, GPU: 2} },
				func(r *Region) {},
			},
			[]string{"aws/b", "aws/a"}},
		{"preferred provider first",
			func(w *Workload) { w.Preferences.Providers = []string{"azure", "aws"} },
			[]func(*Region){func(r *Region) {}, func(r *Region) { r.Provider = "azure" }},
			[]string{"azure/b", "aws/a"}},
		{"near first",
			func(w *Workload) { w.Preferences.Near = &Location{Lat: 45, Lon: -120} },
			[]func(*Region){func(r *Region) {}, func(r *Region) { r.Location = Location{Lat: 45.6, Lon: -121.2} }},
			[]string{"aws/b", "aws/a"}},
		{"cost weight 1 ignores headroom",
			func(w *Workload) { w.Preferences.CostWeight = 1 },
			[]func(*Region){
				func(r *Region) { r.Cost = 1 },
				func(r *Region) { r.Cost = 1.01; r.Capacity.MilliCPU *= 10; r.Capacity.MemoryMiB *= 10 },
			},
			[]string{"aws/a", "aws/b"}},
		{"tie broken by key",
			nil,
			[]func(*Region){func(r *Region) { r.ID = "z" }, func(r *Region) { r.ID = "m" }, func(r *Region) {}},
			[]string{"aws/c", "aws/m", "aws/z"}},
		{"key order counts the separator",
			nil,
			// "aws-x/a" < "aws/a" because '-' < '/', though "aws" < "aws-x".
			[]func(*Region){func(r *Region) { r.ID = "a" }, func(r *Region) { r.Provider, r.ID = "aws-x", "a" }},
			[]string{"aws-x/a", "aws/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := baseWorkload()
			if tt.work != nil {
				tt.work(w)
			}
			in := scoreInput(t, w, tt.muts...)
			d := NewEngine().Plan(in)
			if got := rankedKeys(t, d, &in); !slices.Equal(got, tt.want) {
				t.Errorf("ranking = %v; want %v", got, tt.want)
			}
			// Reversing the catalogue changes nothing.
			slices.Reverse(in.Regions)
			d = NewEngine().Plan(in)
			if got := rankedKeys(t, d, &in); !slices.Equal(got, tt.want) {
				t.Errorf("reversed ranking = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestScoreFormula(t *testing.T) {
	w := baseWorkload()
	w.Resources = Resources{MilliCPU: 1000, MemoryMiB: 1000}
	w.Preferences = Preferences{CostWeight: 0.4, Providers: []string{"azure", "aws"}, Near: &Location{Lat: 38.9, Lon: -77.4}}
	s := newScorer(w)
	s.setCosts([]cand{{r: &Region{Cost: 1}}, {r: &Region{Cost: 3}}})
	r := baseRegion()
	r.Cost = 2
	r.Capacity = Resources{MilliCPU: 10000, MemoryMiB: 4000}
	st := &RegionState{Region: r, Used: Resources{MilliCPU: 4000}}
	// cost 0.5; headroom ((6000-1000)/10000 + (4000-1000)/4000)/2 = 0.625;
	// preference for aws, second of two: 0.5; proximity: same point, 1.
	want := 0.4*0.5 + 0.6*(0.625+0.5+1)/3
	if got := s.score(st); math.Abs(got-want) > 1e-12 {
		t.Errorf("score = %v; want %v", got, want)
	}
}

func TestCostWeight(t *testing.T) {
	tests := []struct {
		in, want float64
	}{{0, 0.5}, {math.NaN(), 0.5}, {-1, 0}, {0.2, 0.2}, {1, 1}, {7, 1}}
	for _, tt := range tests {
		w := baseWorkload()
		w.Preferences.CostWeight = tt.in
		if got := newScorer(w).costW; got != tt.want {
			t.Errorf("cost weight for %v = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestScoreNaNRanksLast(t *testing.T) {
	in := scoreInput(t, baseWorkload(),
		func(r *Region) { r.Cost = math.NaN() },
		func(r *Region) { r.Cost = 5 },
	)
	d := NewEngine().Plan(in)
	if got, want := rankedKeys(t, d, &in), []string{"aws/b", "aws/a"}; !slices.Equal(got, want) {
		t.Errorf("ranking = %v; want %v", got, want)
	}
}
