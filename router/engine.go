// Package router is the pure decision engine of classroute: it decides
// which regions may hold a workload, explains every refusal, and scores
// and picks among the eligible. It imports no gRPC, etcd or cloud package.
package router

import (
	"slices"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// ReasonCode names the rule a region failed. Codes are stable API: add, never rename.
type ReasonCode string

// Reason codes, one per eligibility rule (DOMAIN.md §0), plus spread.
const (
	ReasonLevel         ReasonCode = "level"          // accredited level below the label's level
	ReasonAccreditation ReasonCode = "accreditation"  // accreditation expired or revoked
	ReasonAuthorization ReasonCode = "authorization"  // DoD impact level or FedRAMP baseline too low
	ReasonControls      ReasonCode = "controls"       // a control (SCI, SAP, AEA, CUI category) not accredited
	ReasonReleasability ReasonCode = "releasability"  // an operator nationality outside the label's releasability
	ReasonPersonnel     ReasonCode = "personnel"      // personnel screening too low for the label or export control
	ReasonResidency     ReasonCode = "residency"      // data would rest in a country not allowed
	ReasonJurisdiction  ReasonCode = "jurisdiction"   // operator jurisdiction not allowed
	ReasonCustomer      ReasonCode = "customer"       // region may not serve this tenant
	ReasonNetworkDomain ReasonCode = "network-domain" // network domain cannot carry the level
	ReasonCapability    ReasonCode = "capability"     // a required capability or storage tier missing
	ReasonCapacity      ReasonCode = "capacity"       // not enough free capacity
	ReasonPolicy        ReasonCode = "policy"         // the tenant's policy: above its ceiling, or a region or provider it may not use
	ReasonHealth        ReasonCode = "health"         // region not active (draining, unhealthy, offline)
	ReasonSpread        ReasonCode = "spread"         // eligible, but not chosen: the spread rules exclude it
	ReasonStranded      ReasonCode = "stranded"       // a replica must move and no region can take it
	// ReasonNoEquivalence: the label is of a scheme none of the region's
	// accreditations is of, and no equivalence entry in force reads it
	// into theirs (router/equiv): never a mapping by similar words.
	ReasonNoEquivalence ReasonCode = "no_equivalence"
	// ReasonDependency: a declared dependency is no legal flow from the
	// region (router/flow); the reason's own code is the flow's
	// (write_down, read_up, no_edge, cds_expired, out_of_range,
	// personnel, incomparable) or no_target.
	ReasonDependency ReasonCode = "dependency"
	// ReasonNoTarget: a dependency names no live placement of the tenant
	// or no catalogue service.
	ReasonNoTarget ReasonCode = "no_target"
)

// Reason is one failed rule with a human explanation.
type Reason struct {
	Code    ReasonCode
	Message string
	// Scheme is the scheme of the label the rule read, when the label is
	// not a US label (its reason reads the label into the region's
	// accreditations).
	Scheme marking.Scheme `json:",omitempty"`
	// Equivalence names the equivalence entries the rule consulted, in
	// force or not ("GBR→US v1"), or the pairs that have none ("AUS→GBR").
	Equivalence []string `json:",omitempty"`
}

// Equal reports whether r and o say the same.
func (r Reason) Equal(o Reason) bool {
	return r.Code == o.Code && r.Message == o.Message && r.Scheme == o.Scheme && slices.Equal(r.Equivalence, o.Equivalence)
}

// RegionState is a region as a decision sees it: the record, what is
// already used of it, and the revisions a commit must compare. The
// revisions are opaque to the router.
type RegionState struct {
	Region *Region
	// Used is the capacity already committed to placements.
	Used Resources
	// Rev and UsageRev are the store's revisions of the region record and
	// of its usage record, read with the snapshot.
	Rev, UsageRev int64
	// Health is the region's agent health, nil when no agent has ever
	// served it; HealthRev is the store's revision of that record.
	Health    *Health
	HealthRev int64
	// Reported is the free capacity the region's live agent last
	// reported, nil without a live agent.
	Reported *Resources
	// AgentLive: an agent session is live for the region (connected,
	// whether or not it has reported yet): it may acknowledge replicas.
	AgentLive bool
}

// Free is the capacity still available: the catalogue capacity less
// what is used, and no more than the live agent reports free.
func (s *RegionState) Free() Resources {
	free := s.Region.Capacity.Sub(s.Used)
	if r := s.Reported; r != nil {
		free = Resources{min(free.MilliCPU, r.MilliCPU), min(free.MemoryMiB, r.MemoryMiB), min(free.GPU, r.GPU)}
	}
	return free
}

// Input is everything one decision reads.
type Input struct {
	// Workload must have passed ValidateWorkload; its Label is parsed.
	Workload *Workload
	// Tenant is the workload's tenant record.
	Tenant *Tenant
	// Regions is the snapshot of every region.
	Regions []RegionState
	// Now decides whether accreditations are in force.
	Now time.Time
	// Equivalence is the equivalence table in force in the store: how a
	// label of one scheme is read into a region's accreditation of
	// another. The zero table has no entries: a label is then eligible
	// only on accreditations of its own scheme.
	Equivalence equiv.Table
	// Edges are the cross-domain and connected-service edges, in force
	// or not; Services the catalogue services by name; Targets the
	// workload's placement dependencies as the store holds them (absent:
	// no such placement, or not live). A dependency on anything absent
	// is refused on every region.
	Edges    []flow.Edge
	Services map[string]*flow.Service
	Targets  map[flow.Target]DependencyTarget
}

// DependencyTarget is a placement a workload depends on: its label, the
// regions its replicas run in, and the rules its own data keeps wherever
// it goes (its workload's): a read or a call brings that data to the
// dependant's region.
type DependencyTarget struct {
	Label   marking.Label
	Regions []*Region
	// Gone are the keys of regions the target runs in that are not in
	// the catalogue: the dependency is refused (nothing is known of
	// where its data rests).
	Gone []string
	// Countries (AllowedCountries: "*" alone is any), Jurisdictions
	// (empty: any) and Export ("ITAR", "EAR", "CUI//SP-EXPT", or "") of
	// the target's workload.
	Countries     []string
	Jurisdictions []string
	Export        string
}

// DependencyTargetOf is the DependencyTarget of a placed workload in
// regions (Gone left to the caller).
func DependencyTargetOf(w *Workload, regions []*Region) DependencyTarget {
	t := DependencyTarget{Regions: regions, Countries: w.AllowedCountries, Jurisdictions: w.AllowedJurisdictions}
	if w.Foreign() {
		t.Label = w.Marking
	} else {
		t.Label = marking.FromUS(w.Label)
	}
	switch {
	case w.ExportControl == ExportITAR:
		t.Export = "ITAR"
	case w.ExportControl == ExportEAR:
		t.Export = "EAR"
	case !w.Foreign() && w.Label.ExportControlled():
		t.Export = "CUI//" + label.ExportCategory
	}
	return t
}

// Verdict is the decision for one region.
type Verdict struct {
	// Index of the region in Input.Regions.
	Index    int
	Eligible bool
	// Reasons lists every failing rule (Plan) or only the first (Place).
	Reasons []Reason
	// Score of an eligible region; higher is better.
	Score float64
	// Chosen is true for regions picked for a replica.
	Chosen bool
}

// Decision is the outcome of one decision.
type Decision struct {
	// Verdicts holds one verdict per region: chosen first (in replica
	// order), then the other eligible by score, then the ineligible by key.
	Verdicts []Verdict
	// Chosen indexes Input.Regions, one per replica, best first. Empty when Err is set.
	Chosen []int
	// Scores holds the score of each chosen region, parallel to Chosen.
	Scores []float64
	// Err is nil, or wraps ErrNoEligibleRegion or ErrSpreadUnsatisfiable
	// with a summary of why.
	Err error
}
