package router

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// spreadRegion is an eligible baseline region with its own id, provider,
// place and cost (lower cost ranks higher).
func spreadRegion(id, provider string, lat, lon, cost float64) RegionState {
	r := baseRegion()
	r.ID, r.Provider, r.Location, r.Cost = id, provider, Location{Lat: lat, Lon: lon}, cost
	return RegionState{Region: r}
}

func chosenKeys(tb testing.TB, d Decision, in *Input) []string {
	tb.Helper()
	keys := make([]string, len(d.Chosen))
	for i, c := range d.Chosen {
		keys[i] = in.Regions[c].Region.Key()
	}
	return keys
}

func TestSpread(t *testing.T) {
	// On the equator one degree of longitude is about 111 km.
	tests := []struct {
		name     string
		regions  []RegionState
		replicas int
		spread   Spread
		want     []string // chosen keys; nil when refused
		err      error
		msg      string // the error contains this
	}{
		{
			name: "one replica takes the best",
			regions: []RegionState{
				spreadRegion("a", "aws", 0, 0, 2), spreadRegion("b", "aws", 0, 1, 1),
			},
			replicas: 1, spread: Spread{MinDistanceKm: 1000, DistinctProviders: true},
			want: []string{"aws/b"},
		},
		{
			name: "no rules takes the best two",
			regions: []RegionState{
				spreadRegion("a", "aws", 0, 0, 3), spreadRegion("b", "aws", 0, 0, 1), spreadRegion("c", "aws", 0, 0, 2),
			},
			replicas: 2,
			want:     []string{"aws/b", "aws/c"},
		},
		{
			name: "greedy skips a close region",
			regions: []RegionState{
				spreadRegion("a", "aws", 0, 0, 1), spreadRegion("b", "aws", 0, 5, 2), spreadRegion("c", "aws", 0, 20, 3),
			},
			replicas: 2, spread: Spread{MinDistanceKm: 1000},
			want: []string{"aws/a", "aws/c"},
		},
		{
			name: "backtracks when the best cannot be completed",
			// a is within 1000 km of both b and c; b and c are 1112 km apart.
			regions: []RegionState{
				spreadRegion("a", "aws", 0, 0, 1), spreadRegion("b", "aws", 0, 5, 2), spreadRegion("c", "aws", 0, -5, 3),
			},
			replicas: 2, spread: Spread{MinDistanceKm: 1000},
			want: []string{"aws/b", "aws/c"},
		},
		{
			name: "distinct providers",
			regions: []RegionState{
				spreadRegion("a", "aws", 0, 0, 1), spreadRegion("b", "aws", 0, 0, 2),
				spreadRegion("c", "azure", 0, 0, 3), spreadRegion("d", "google", 0, 0, 4), spreadRegion("e", "azure", 0, 0, 0.5),
			},
			replicas: 3, spread: Spread{DistinctProviders: true},
			want: []string{"azure/e", "aws/a", "google/d"},
		},
		{
			name: "distinct providers and distance together",
			regions: []RegionState{
				spreadRegion("a", "aws", 0, 0, 1), spreadRegion("b", "azure", 0, 1, 2),
				spreadRegion("c", "aws", 0, 30, 3), spreadRegion("d", "azure", 0, 30, 4),
			},
			replicas: 2, spread: Spread{MinDistanceKm: 1000, DistinctProviders: true},
			want: []string{"aws/a", "azure/d"},
		},
		{
			name: "too few providers",
			regions: []RegionState{
				spreadRegion("a", "aws", 0, 0, 1), spreadRegion("b", "azure", 0, 0, 2), spreadRegion("c", "aws", 0, 0, 3),
			},
			replicas: 3, spread: Spread{DistinctProviders: true},
			err: ErrSpreadUnsatisfiable,
			msg: "3 replicas need distinct providers; eligible regions span 2 providers (aws, azure)",
		},
		{
			name: "too close",
			regions: []RegionState{
				spreadRegion("a", "aws", 0, 0, 1), spreadRegion("b", "aws", 0, 5, 2), spreadRegion("c", "aws", 0, -5, 3),
			},
			replicas: 3, spread: Spread{MinDistanceKm: 1000},
			err: ErrSpreadUnsatisfiable,
			msg: "no 3 of the 3 eligible regions are pairwise at least 1000 km apart",
		},
		{
			name: "too close on distinct providers",
			regions: []RegionState{
				spreadRegion("a", "aws", 0, 0, 1), spreadRegion("b", "azure", 0, 5, 2),
			},
			replicas: 2, spread: Spread{MinDistanceKm: 1000, DistinctProviders: true},
			err: ErrSpreadUnsatisfiable,
			msg: "no 2 of the 2 eligible regions are pairwise at least 1000 km apart and on distinct providers",
		},
		{
			name:     "fewer eligible than replicas",
			regions:  []RegionState{spreadRegion("a", "aws", 0, 0, 1)},
			replicas: 2,
			err:      ErrNoEligibleRegion,
			msg:      "2 replicas need 2 distinct regions; only 1 of 1 regions eligible (aws/a)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := baseWorkload()
			w.Replicas, w.Spread = tt.replicas, tt.spread
			in := Input{Workload: w, Tenant: baseTenant(), Regions: tt.regions, Now: testNow}
			for _, mode := range []struct {
				name   string
				decide func(*Engine, Input) Decision
			}{{"Place", (*Engine).Place}, {"Plan", (*Engine).Plan}} {
				d := mode.decide(NewEngine(), in)
				if tt.err != nil {
					if !errors.Is(d.Err, tt.err) || !strings.Contains(d.Err.Error(), tt.msg) {
						t.Errorf("%s err = %v; want %v containing %q", mode.name, d.Err, tt.err, tt.msg)
					}
					if len(d.Chosen) != 0 || len(d.Scores) != 0 {
						t.Errorf("%s chose %v on refusal; want nothing", mode.name, d.Chosen)
					}
					continue
				}
				if d.Err != nil {
					t.Fatalf("%s err = %v", mode.name, d.Err)
				}
				if got := chosenKeys(t, d, &in); !slices.Equal(got, tt.want) {
					t.Errorf("%s chose %v; want %v", mode.name, got, tt.want)
				}
				if len(d.Scores) != len(d.Chosen) {
					t.Errorf("%s scores %v for chosen %v", mode.name, d.Scores, d.Chosen)
				}
			}
		})
	}
}

func TestSpreadSearchBound(t *testing.T) {
	// 40 regions within a few km of each other; 2 replicas 1000 km apart
	// cannot be placed, and finding that out takes ~800 checks.
	var regions []RegionState
	for i := range 40 {
		regions = append(regions, spreadRegion(string(rune('A'+i)), "aws", 0, float64(i)*0.01, float64(i)))
	}
	w := baseWorkload()
	w.Replicas, w.Spread = 2, Spread{MinDistanceKm: 1000}
	in := Input{Workload: w, Tenant: baseTenant(), Regions: regions, Now: testNow}

	d := NewEngine(WithSearchLimit(100)).Place(in)
	if !errors.Is(d.Err, ErrSpreadUnsatisfiable) || !strings.Contains(d.Err.Error(), "search bound of 100 candidate checks hit") {
		t.Errorf("bounded err = %v; want the search bound named", d.Err)
	}
	d = NewEngine().Place(in)
	if !errors.Is(d.Err, ErrSpreadUnsatisfiable) || strings.Contains(d.Err.Error(), "search bound") {
		t.Errorf("unbounded err = %v; want an exhausted search", d.Err)
	}

	// A far region at the bottom of the ranking is found within the default bound.
	in.Regions = append(in.Regions, spreadRegion("far", "aws", 0, 40, 100))
	d = NewEngine().Place(in)
	if got, want := chosenKeys(t, d, &in), []string{"aws/A", "aws/far"}; d.Err != nil || !slices.Equal(got, want) {
		t.Errorf("chose %v, %v; want %v", got, d.Err, want)
	}
}
