package router

import (
	"errors"
	"testing"

	"github.com/classroute/classroute/router/label"
)

func TestRecheck(t *testing.T) {
	e := NewEngine()
	tests := []struct {
		name      string
		mutate    func(r *RegionState)
		codes     []ReasonCode
		violation bool
	}{
		{"still qualifies", func(*RegionState) {}, nil, false},
		{"full is fine: the replica is already counted", func(r *RegionState) { r.Used = r.Region.Capacity }, nil, false},
		{"downgraded", func(r *RegionState) { r.Region.Accreditation.MaxLevel = label.CUI }, []ReasonCode{ReasonLevel}, true},
		{"revoked", func(r *RegionState) { r.Region.Accreditation.Revoked = true }, []ReasonCode{ReasonAccreditation}, true},
		{"expired", func(r *RegionState) { r.Region.Accreditation.Expires = testNow.Add(-1) }, []ReasonCode{ReasonAccreditation}, true},
		{"control withdrawn", func(r *RegionState) { r.Region.Accreditation.Controls = []string{"SI"} }, []ReasonCode{ReasonControls}, true},
		{"drained", func(r *RegionState) { r.Region.Status = StatusDraining }, []ReasonCode{ReasonHealth}, false},
		{"agent unhealthy", func(r *RegionState) { r.Health = &Health{Reason: "no live agent"} }, []ReasonCode{ReasonHealth}, false},
		{"agent healthy", func(r *RegionState) { r.Health = &Health{Healthy: true} }, nil, false},
		{"drained and revoked", func(r *RegionState) { r.Region.Status = StatusOffline; r.Region.Accreditation.Revoked = true },
			[]ReasonCode{ReasonHealth, ReasonAccreditation}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := RegionState{Region: baseRegion()}
			tt.mutate(&st)
			in := Input{Workload: baseWorkload(), Tenant: baseTenant(), Regions: []RegionState{st}, Now: testNow}
			reasons, violation := e.Recheck(in, 0)
			var codes []ReasonCode
			for _, r := range reasons {
				codes = append(codes, r.Code)
			}
			if len(codes) != len(tt.codes) {
				t.Fatalf("reasons %v, want codes %v", reasons, tt.codes)
			}
			for i := range codes {
				if codes[i] != tt.codes[i] {
					t.Fatalf("reasons %v, want codes %v", reasons, tt.codes)
				}
			}
			if violation != tt.violation {
				t.Fatalf("violation = %v, want %v (%v)", violation, tt.violation, reasons)
			}
		})
	}
}

func TestReplace(t *testing.T) {
	e := NewEngine()
	// a and b hold the two replicas; b must move. c is too close to a,
	// d is another provider far away, e is the same provider as a.
	regions := []RegionState{
		spreadRegion("a", "aws", 38.9, -77.4, 1),
		spreadRegion("b", "azure", 45.6, -122.7, 1),
		spreadRegion("c", "google", 39.0, -77.5, 0.5), // cheapest, but 14 km from a
		spreadRegion("d", "oracle", 33.4, -112.0, 2),
		spreadRegion("e", "aws", 40.0, -100.0, 0.6),
	}
	w := baseWorkload()
	w.Replicas = 2
	w.Spread = Spread{MinDistanceKm: 500, DistinctProviders: true}
	in := Input{Workload: w, Tenant: baseTenant(), Regions: regions, Now: testNow}
	got, err := e.Replace(in, []int{0}, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	if key := regions[got.Index].Region.Key(); key != "oracle/d" {
		t.Fatalf("replacement %s, want oracle/d (c is too close to a, e shares a's provider, b is left)", key)
	}
	if w.Replicas != 2 {
		t.Fatal("Replace changed the caller's workload")
	}

	// With d full there is no region left that keeps the spread.
	regions[3].Used = regions[3].Region.Capacity
	_, err = e.Replace(in, []int{0}, []int{1})
	if !errors.Is(err, ErrSpreadUnsatisfiable) {
		t.Fatalf("err = %v, want ErrSpreadUnsatisfiable", err)
	}
	// Nothing eligible at all: the chain's refusal.
	for i := range regions {
		r := *regions[i].Region
		r.Accreditation.Revoked = true
		regions[i].Region = &r
	}
	_, err = e.Replace(in, []int{0}, []int{1})
	if !errors.Is(err, ErrNoEligibleRegion) {
		t.Fatalf("err = %v, want ErrNoEligibleRegion", err)
	}
}
