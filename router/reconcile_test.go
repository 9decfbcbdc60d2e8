package router

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/label"
)

// reconcileWorld is the baseline of the reconcile tests: one replica in
// aws/a, with two other regions that qualify for it (azure/b the better,
// google/c), none of them with an agent.
type reconcileWorld struct {
	p        *Placement
	regions  []RegionState
	tenant   *Tenant
	now      time.Time
	maxMoves int
}

func newReconcileWorld() *reconcileWorld {
	region := func(prov, id string, cost float64, lon float64) RegionState {
		r := baseRegion()
		r.Provider, r.ID, r.Cost, r.Location = prov, id, cost, Location{Lat: 38.9, Lon: lon}
		return RegionState{Region: r}
	}
	tn := baseTenant()
	tn.Ceiling, tn.CeilingLabel = "SECRET//SAR-BP//REL TO USA, GBR", label.MustParse("SECRET//SAR-BP//REL TO USA, GBR")
	return &reconcileWorld{
		p: &Placement{
			ID: "p1", Tenant: "us-army", Workload: *baseWorkload(),
			Regions: []string{"aws/a"}, Scores: []float64{1}, State: PlacementPlaced,
			CreatedAt: testNow.Add(-time.Hour),
		},
		regions: []RegionState{
			region("aws", "a", 0.5, -77.4),
			region("azure", "b", 1, -100),
			region("google", "c", 2, -120),
		},
		tenant:   tn,
		now:      testNow,
		maxMoves: AnyMoves,
	}
}

func (w *reconcileWorld) region(key string) *RegionState {
	for i := range w.regions {
		if w.regions[i].Region.Key() == key {
			return &w.regions[i]
		}
	}
	panic("no region " + key)
}

func (w *reconcileWorld) input() ReconcileInput {
	return ReconcileInput{Tenant: w.tenant, Regions: w.regions, Now: w.now, MaxMoves: w.maxMoves}
}

// actionString is an action in short: "kind replica region>to".
func actionString(a Action) string {
	s := a.Kind.String() + " " + a.Region
	if a.To != "" {
		s += ">" + a.To
	}
	if a.NoAgent != "" {
		s += " noagent=" + a.NoAgent
	}
	return s
}

func TestReconcile(t *testing.T) {
	earlier := testNow.Add(-time.Minute)
	drain := func(key string) func(*reconcileWorld) {
		return func(w *reconcileWorld) { w.region(key).Region.Status = StatusDraining }
	}
	stranded := Issue{Region: "aws/a", Stranded: true, Since: earlier,
		Reasons: []Reason{{Code: ReasonHealth, Message: "region is draining"}, {Code: ReasonStranded, Message: "no"}}}
	tests := []struct {
		name   string
		mutate func(w *reconcileWorld)
		// want: the actions in short (actionString); keep: Next is nil.
		want []string
		keep bool
		// Of Next, when not keep: state, regions, retiring ("from>to").
		state    PlacementState
		regions  []string
		retiring []string
		check    func(t *testing.T, w *reconcileWorld, r Reconciliation)
	}{
		{name: "keep: every replica still qualifies", mutate: func(*reconcileWorld) {}, keep: true},
		{name: "keep: a full region is fine (the replica is counted)", keep: true,
			mutate: func(w *reconcileWorld) { w.region("aws/a").Used = w.region("aws/a").Region.Capacity }},
		{name: "keep: released placements are not reconciled", keep: true,
			mutate: func(w *reconcileWorld) { w.p.State = PlacementReleased; drain("aws/a")(w) }},
		{name: "keep: no tenant record, nothing can be rechecked", keep: true,
			mutate: func(w *reconcileWorld) { w.tenant = nil; drain("aws/a")(w) }},
		{
			name: "move: a drained region is left for the best region, without a violation", mutate: drain("aws/a"),
			want: []string{"move aws/a>azure/b"}, state: PlacementPlaced, regions: []string{"azure/b"}, retiring: []string{"aws/a>azure/b"},
			check: func(t *testing.T, w *reconcileWorld, r Reconciliation) {
				if r.Next.Moves != 1 || r.Actions[0].Reasons[0].Code != ReasonHealth || r.Actions[0].ToIndex != 1 {
					t.Errorf("moves %d, action %+v", r.Next.Moves, r.Actions[0])
				}
				// The decision rests on the old region and the new one.
				if !slices.Equal(r.Compared, []int{0, 1}) {
					t.Errorf("compared %v, want [0 1]", r.Compared)
				}
				if !r.Next.UpdatedAt.Equal(testNow) {
					t.Errorf("updated at %v", r.Next.UpdatedAt)
				}
			},
		},
		{
			name: "move: a replica its agent reports failed", mutate: func(w *reconcileWorld) {
				w.p.Replicas = []ReplicaStatus{{State: ReplicaFailed, Detail: "image pull", At: earlier}}
			},
			want: []string{"move aws/a>azure/b"}, state: PlacementPlaced, regions: []string{"azure/b"}, retiring: []string{"aws/a>azure/b"},
			check: func(t *testing.T, w *reconcileWorld, r Reconciliation) {
				if got := r.Actions[0].Reasons[0].Message; !strings.Contains(got, "image pull") {
					t.Errorf("reason %q", got)
				}
				if r.Next.Replicas[0].State != ReplicaPending {
					t.Errorf("the new replica is %v, want pending", r.Next.Replicas[0].State)
				}
			},
		},
		{
			name:   "flag and move: a downgraded region is a violation while the old copy runs",
			mutate: func(w *reconcileWorld) { w.region("aws/a").Region.Accreditation.MaxLevel = label.CUI },
			want:   []string{"flag aws/a", "move aws/a>azure/b"}, state: PlacementViolation, regions: []string{"azure/b"}, retiring: []string{"aws/a>azure/b"},
		},
		{
			name:   "flag and move: the accreditation expired, with no write",
			mutate: func(w *reconcileWorld) { w.region("aws/a").Region.Accreditation.Expires = testNow },
			want:   []string{"flag aws/a", "move aws/a>azure/b"}, state: PlacementViolation, regions: []string{"azure/b"}, retiring: []string{"aws/a>azure/b"},
			check: func(t *testing.T, w *reconcileWorld, r Reconciliation) {
				if r.Actions[0].Reasons[0].Code != ReasonAccreditation {
					t.Errorf("flagged for %v", r.Actions[0].Reasons)
				}
			},
		},
		{
			name: "flag and move: the region record is gone", mutate: func(w *reconcileWorld) { w.p.Regions = []string{"aws/gone"} },
			want: []string{"flag aws/gone", "move aws/gone>aws/a"}, state: PlacementPlaced, regions: []string{"aws/a"}, retiring: []string{"aws/gone>aws/a"},
		},
		{
			name: "strand: no other region may take it", mutate: func(w *reconcileWorld) {
				drain("aws/a")(w)
				drain("azure/b")(w)
				w.region("google/c").Region.Accreditation.MaxLevel = label.CUI
			},
			want: []string{"strand aws/a"}, state: PlacementStranded, regions: []string{"aws/a"},
			check: func(t *testing.T, w *reconcileWorld, r Reconciliation) {
				is := r.Next.Issues
				if len(is) != 1 || !is[0].Stranded || is[0].Violation || is[0].Reasons[len(is[0].Reasons)-1].Code != ReasonStranded {
					t.Errorf("issues %+v", is)
				}
			},
		},
		{
			name: "flag and strand: revoked, and nowhere to go", mutate: func(w *reconcileWorld) {
				w.region("aws/a").Region.Accreditation.Revoked = true
				drain("azure/b")(w)
				drain("google/c")(w)
			},
			want: []string{"flag aws/a", "strand aws/a"}, state: PlacementViolation, regions: []string{"aws/a"},
		},
		{
			name: "keep: still stranded in the same world, nothing recorded twice", keep: true,
			mutate: func(w *reconcileWorld) {
				drain("aws/a")(w)
				drain("azure/b")(w)
				drain("google/c")(w)
				// What the first call stored.
				r := Reconcile(NewEngine(), w.p, w.input())
				w.p = r.Next
			},
		},
		{
			name: "recover: the region qualifies again, where the placement is", mutate: func(w *reconcileWorld) {
				w.p.State, w.p.Issues = PlacementStranded, []Issue{stranded}
			},
			want: []string{"recover "}, state: PlacementPlaced, regions: []string{"aws/a"},
			check: func(t *testing.T, w *reconcileWorld, r Reconciliation) {
				if len(r.Next.Issues) != 0 {
					t.Errorf("issues %+v", r.Next.Issues)
				}
			},
		},
		{
			name: "hold: moves are paced", mutate: func(w *reconcileWorld) { drain("aws/a")(w); w.maxMoves = 0 },
			want: []string{"hold aws/a"}, state: PlacementPlaced, regions: []string{"aws/a"},
			check: func(t *testing.T, w *reconcileWorld, r Reconciliation) {
				if !r.Held() || len(r.Next.Issues) != 1 || r.Next.Issues[0].Stranded {
					t.Errorf("held %v, issues %+v", r.Held(), r.Next.Issues)
				}
			},
		},
		{
			name: "hold: still paced, nothing new to write", keep: true, want: []string{"hold aws/a"},
			mutate: func(w *reconcileWorld) {
				drain("aws/a")(w)
				w.maxMoves = 0
				w.p = Reconcile(NewEngine(), w.p, w.input()).Next
			},
			check: func(t *testing.T, w *reconcileWorld, r Reconciliation) {
				if !r.Held() {
					t.Error("not held")
				}
			},
		},
		{
			name: "hold: a stranded replica keeps its mark while it waits", keep: true, want: []string{"hold aws/a"},
			mutate: func(w *reconcileWorld) {
				drain("aws/a")(w)
				w.maxMoves = 0
				w.p.State, w.p.Issues = PlacementStranded, []Issue{stranded}
			},
		},
		{
			name: "move one, hold the other: one move allowed", mutate: func(w *reconcileWorld) {
				w.p.Workload.Replicas = 2
				w.p.Regions, w.p.Scores = []string{"aws/a", "azure/b"}, []float64{1, 1}
				drain("aws/a")(w)
				drain("azure/b")(w)
				w.regions = append(w.regions, RegionState{Region: func() *Region {
					r := baseRegion()
					r.Provider, r.ID, r.Cost = "oracle", "d", 3
					return r
				}()})
				w.maxMoves = 1
			},
			want: []string{"move aws/a>google/c", "hold azure/b"}, state: PlacementPlaced, regions: []string{"google/c", "azure/b"},
			retiring: []string{"aws/a>google/c"},
		},
		{
			name: "retire: the replacement's region has no agent to acknowledge it", mutate: func(w *reconcileWorld) {
				w.p.Regions, w.p.Moves = []string{"azure/b"}, 1
				w.p.Retiring = []Retiring{{Region: "aws/a", MovedTo: "azure/b", Since: earlier}}
			},
			want: []string{"retire aws/a>azure/b noagent=azure/b"}, state: PlacementPlaced, regions: []string{"azure/b"},
		},
		{
			name: "retire: the replacement is acknowledged running", mutate: func(w *reconcileWorld) {
				w.p.Regions, w.p.Moves = []string{"azure/b"}, 1
				w.p.Retiring = []Retiring{{Region: "aws/a", MovedTo: "azure/b", Since: earlier}}
				w.p.Replicas = []ReplicaStatus{{State: ReplicaRunning, At: earlier}}
				w.region("azure/b").Health = &Health{Healthy: true, Agent: "agent-b"}
				w.region("azure/b").AgentLive = true
			},
			want: []string{"retire aws/a>azure/b"}, state: PlacementPlaced, regions: []string{"azure/b"},
		},
		{
			name: "retire: following a replacement that moved on", mutate: func(w *reconcileWorld) {
				w.p.Regions, w.p.Moves = []string{"google/c"}, 2
				w.p.Retiring = []Retiring{{Region: "aws/a", MovedTo: "azure/b", Since: earlier}, {Region: "azure/b", MovedTo: "google/c", Since: earlier}}
			},
			want:  []string{"retire aws/a>azure/b noagent=google/c", "retire azure/b>google/c noagent=google/c"},
			state: PlacementPlaced, regions: []string{"google/c"},
		},
		{
			name: "keep: the replacement's agent has not acknowledged it", keep: true, mutate: func(w *reconcileWorld) {
				w.p.Regions, w.p.Moves = []string{"azure/b"}, 1
				w.p.Retiring = []Retiring{{Region: "aws/a", MovedTo: "azure/b", Since: earlier}}
				w.region("azure/b").Health = &Health{Healthy: true, Agent: "agent-b"}
			},
		},
		{
			name: "keep: an agent connected but not yet reported is an agent", keep: true, mutate: func(w *reconcileWorld) {
				w.p.Regions, w.p.Moves = []string{"azure/b"}, 1
				w.p.Retiring = []Retiring{{Region: "aws/a", MovedTo: "azure/b", Since: earlier}}
				w.region("azure/b").AgentLive = true
			},
		},
		{
			name: "no retire in the call that moved: make before break", mutate: func(w *reconcileWorld) {
				drain("aws/a")(w)
			},
			want: []string{"move aws/a>azure/b"}, state: PlacementPlaced, regions: []string{"azure/b"}, retiring: []string{"aws/a>azure/b"},
		},
		{
			name: "flag: a copy leaving a region that is then revoked", mutate: func(w *reconcileWorld) {
				w.p.Regions, w.p.Moves = []string{"azure/b"}, 1
				w.p.Retiring = []Retiring{{Region: "aws/a", MovedTo: "azure/b", Since: earlier}}
				w.region("azure/b").Health = &Health{Healthy: true, Agent: "agent-b"}
				w.region("aws/a").Region.Accreditation.Revoked = true
			},
			want: []string{"flag aws/a"}, state: PlacementViolation, regions: []string{"azure/b"}, retiring: []string{"aws/a>azure/b"},
			check: func(t *testing.T, w *reconcileWorld, r Reconciliation) {
				if r.Actions[0].Replica != -1 || r.Next.Moves != 1 {
					t.Errorf("action %+v, moves %d: the leaving copy is flagged, not moved again", r.Actions[0], r.Next.Moves)
				}
			},
		},
		{
			name: "flag: the tenant's ceiling was lowered below the label; stranded, never moved", mutate: func(w *reconcileWorld) {
				w.tenant.Ceiling, w.tenant.CeilingLabel = "CUI", label.MustParse("CUI")
			},
			want: []string{"flag aws/a"}, state: PlacementViolation, regions: []string{"aws/a"},
			check: func(t *testing.T, w *reconcileWorld, r Reconciliation) {
				is := r.Next.Issues[0]
				if !is.Stranded || is.Reasons[0].Code != ReasonPolicy || r.Next.Moves != 0 {
					t.Errorf("issue %+v", is)
				}
			},
		},
		{
			name: "flag: a stored label that no longer parses", mutate: func(w *reconcileWorld) {
				w.p.Workload.Label = label.Label{}
			},
			want: []string{"flag aws/a"}, state: PlacementViolation, regions: []string{"aws/a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newReconcileWorld()
			tt.mutate(w)
			before := clonePlacement(w.p)
			r := Reconcile(NewEngine(), w.p, w.input())
			if !reflect.DeepEqual(before, w.p) {
				t.Fatalf("Reconcile modified its placement:\n%+v\n%+v", before, w.p)
			}
			var got []string
			for _, a := range r.Actions {
				got = append(got, actionString(a))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("actions %q, want %q (next %+v)", got, tt.want, r.Next)
			}
			if r.Keep() != tt.keep {
				t.Fatalf("keep = %v, want %v (next %+v)", r.Keep(), tt.keep, r.Next)
			}
			if !tt.keep {
				n := r.Next
				var retiring []string
				for _, rt := range n.Retiring {
					retiring = append(retiring, rt.Region+">"+rt.MovedTo)
				}
				if n.State != tt.state || !slices.Equal(n.Regions, tt.regions) || !slices.Equal(retiring, tt.retiring) {
					t.Fatalf("next: state %v regions %v retiring %v; want %v %v %v", n.State, n.Regions, retiring, tt.state, tt.regions, tt.retiring)
				}
			}
			if tt.check != nil {
				tt.check(t, w, r)
			}
		})
	}
}

// The index the caller passes and the one Reconcile derives agree.
func TestReconcileWithIndex(t *testing.T) {
	w := newReconcileWorld()
	w.region("aws/a").Region.Status = StatusDraining
	in := w.input()
	in.Index = map[string]int{"aws/a": 0, "azure/b": 1, "google/c": 2}
	a, b := Reconcile(NewEngine(), w.p, in), Reconcile(NewEngine(), w.p, w.input())
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("with index %+v\nwithout %+v", a, b)
	}
}

// The common case copies nothing: a placement that stays as it is costs
// what its checks cost (its recheck, the label's canonical form, the
// tenant's ceiling), and two small slices more: never a copy.
func TestReconcileKeepAllocs(t *testing.T) {
	w := newReconcileWorld()
	e := NewEngine()
	in := w.input()
	in.Index = map[string]int{"aws/a": 0, "azure/b": 1, "google/c": 2}
	var rc Rechecker = e
	rin := Input{Workload: &w.p.Workload, Tenant: w.tenant, Regions: w.regions, Now: w.now}
	base := testing.AllocsPerRun(100, func() {
		_ = w.p.Workload.Label.String()
		_ = w.tenant.WithinCeiling(w.p.Workload.Label)
		rc.Recheck(rin, 0)
	})
	n := testing.AllocsPerRun(100, func() {
		if r := Reconcile(e, w.p, in); !r.Keep() {
			t.Fatal("not kept")
		}
	})
	if n > base+2 {
		t.Errorf("%.0f allocations per kept placement, want at most %.0f (its checks', and two slices)", n, base+2)
	}
}

func BenchmarkReconcileKeep(b *testing.B) {
	w := newReconcileWorld()
	e := NewEngine()
	in := w.input()
	in.Index = map[string]int{"aws/a": 0, "azure/b": 1, "google/c": 2}
	b.ReportAllocs()
	for b.Loop() {
		Reconcile(e, w.p, in)
	}
}

func TestTenantSamePolicy(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *Tenant)
		same   bool
	}{
		{"unchanged", func(*Tenant) {}, true},
		{"renamed", func(t *Tenant) { t.Name = "Army" }, true},
		{"a member added", func(t *Tenant) { t.Members = append(t.Members, TenantMember{Name: "x"}) }, true},
		{"capped", func(t *Tenant) { t.MaxPlacements = 10 }, true},
		{"ceiling lowered", func(t *Tenant) { t.Ceiling = "CUI" }, false},
		{"nation", func(t *Tenant) { t.Nation = "GBR" }, false},
		{"sector", func(t *Tenant) { t.Sector = "civil" }, false},
		{"region allowed", func(t *Tenant) { t.AllowedRegions = []string{"aws/a"} }, false},
		{"region denied", func(t *Tenant) { t.DeniedRegions = []string{"aws/a"} }, false},
		{"provider allowed", func(t *Tenant) { t.AllowedProviders = []string{"aws"} }, false},
		{"provider denied", func(t *Tenant) { t.DeniedProviders = []string{"aws"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := baseTenant(), baseTenant()
			a.Ceiling, b.Ceiling = "SECRET//NOFORN", "SECRET//NOFORN"
			tt.mutate(b)
			if got := a.SamePolicy(b); got != tt.same {
				t.Errorf("SamePolicy = %v, want %v", got, tt.same)
			}
		})
	}
	if (*Tenant)(nil).SamePolicy(baseTenant()) || !(*Tenant)(nil).SamePolicy(nil) {
		t.Error("nil tenants")
	}
}
