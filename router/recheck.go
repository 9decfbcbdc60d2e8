package router

import (
	"fmt"
	"github.com/classroute/classroute/router/flow"
	"slices"
	"strings"
)

// Re-deciding a placement that was right when it was made. Regions
// change after the fact: they lose health, are drained, lose or change
// accreditation. The reconciler asks of each replica whether its region
// still qualifies (Recheck) and, when it does not, where the replica
// should go instead while the other replicas stay (Replace).

// violationCodes are the rules whose failure means the region no longer
// covers the workload: its label (and its equivalence into the region's
// scheme), residency, export, customer or tenant policy rules.
// A replica there is a violation until it moves. The other rules
// (health, capability) only mean the replica must move.
var violationCodes = map[ReasonCode]bool{
	ReasonLevel:         true,
	ReasonNetworkDomain: true,
	ReasonPersonnel:     true,
	ReasonAccreditation: true,
	ReasonAuthorization: true,
	ReasonResidency:     true,
	ReasonJurisdiction:  true,
	ReasonReleasability: true,
	ReasonCustomer:      true,
	ReasonPolicy:        true,
	ReasonControls:      true,
	// A label no entry in force maps into the region's scheme any more
	// (an equivalence entry lowered or withdrawn): as an accreditation
	// lowered.
	ReasonNoEquivalence: true,
	// A dependency that is no legal flow any more (an edge withdrawn or
	// expired, a target moved, re-labelled or released): the workload
	// may not run where it cannot lawfully reach what it needs.
	ReasonNoTarget:                    true,
	ReasonDependency:                  true, // one no reason explains: fail closed
	ReasonCode(flow.CodeWriteDown):    true,
	ReasonCode(flow.CodeReadUp):       true,
	ReasonCode(flow.CodeIncomparable): true,
	ReasonCode(flow.CodeNoEdge):       true,
	ReasonCode(flow.CodeCDSExpired):   true,
	ReasonCode(flow.CodeOutOfRange):   true,
	ReasonCode(flow.CodeInvalid):      true,
}

// IsViolation reports whether a failure of the rule with this code means
// the region no longer covers the workload (see Recheck).
func IsViolation(c ReasonCode) bool { return violationCodes[c] }

// Recheck says whether a replica of in.Workload that is placed in region
// in.Regions[idx] may stay there: every rule of the chain but capacity
// (the replica is already counted in the region's usage). It returns
// every failing rule's reason, and whether any of them is a violation
// (IsViolation). No reasons means the replica may stay.
func (e *Engine) Recheck(in Input, idx int) (reasons []Reason, violation bool) {
	if err := checkInput(&in); err != nil {
		return []Reason{{Code: ReasonAccreditation, Message: "cannot recheck: " + err.Error()}}, true
	}
	r := &in.Regions[idx]
	if r.Region == nil {
		return []Reason{{Code: ReasonHealth, Message: "region record is gone"}}, true
	}
	w := newWant(&in)
	for _, c := range e.checkers {
		if c.Code() == ReasonCapacity || c.Check(&w, r) {
			continue
		}
		for _, x := range reasonsOf(c, &w, r) {
			reasons = append(reasons, x)
			// The reason's own code: a rule checking several things
			// (dependency) says which failed.
			violation = violation || IsViolation(x.Code)
		}
	}
	return reasons, violation
}

// Replacement is where Replace would move a replica.
type Replacement struct {
	// Index in Input.Regions, and the region's score.
	Index int
	Score float64
}

// Replace picks a region for one replica of in.Workload while its other
// replicas stay where they are: the best region that passes the whole
// chain (capacity included) for one replica, is not in keep (the other
// replicas' regions) or avoid (the region being left, and others the
// placement must not use again), and keeps the spread rules with every
// region in keep. Both lists index in.Regions. When there is none, the
// error wraps ErrNoEligibleRegion or ErrSpreadUnsatisfiable and says
// why; there is never a fallback to a region that fails a rule.
func (e *Engine) Replace(in Input, keep, avoid []int) (Replacement, error) {
	if in.Workload == nil {
		return Replacement{}, Violations{{Field: "workload", Description: "missing"}}.Err()
	}
	one := *in.Workload
	one.Replicas = 1
	in.Workload = &one
	d := e.Plan(in)
	var eligible int
	var excluded, spread []string
	for _, v := range d.Verdicts {
		if !v.Eligible {
			continue
		}
		eligible++
		r := in.Regions[v.Index].Region
		if slices.Contains(keep, v.Index) || slices.Contains(avoid, v.Index) {
			excluded = append(excluded, r.Key())
			continue
		}
		if why := spreadConflict(&one, r, in.Regions, keep); why != "" {
			spread = append(spread, r.Key()+" ("+why+")")
			continue
		}
		return Replacement{Index: v.Index, Score: v.Score}, nil
	}
	switch {
	case eligible == 0:
		return Replacement{}, d.Err
	case len(spread) == 0:
		return Replacement{}, fmt.Errorf("%w: the only eligible regions (%s) already hold or held this placement",
			ErrNoEligibleRegion, strings.Join(excluded, ", "))
	default:
		return Replacement{}, fmt.Errorf("%w: no eligible region keeps the spread with the other replicas: %s",
			ErrSpreadUnsatisfiable, strings.Join(spread, "; "))
	}
}

// spreadConflict says why region r cannot join the replicas in keep
// under w's spread rules, or "".
func spreadConflict(w *Workload, r *Region, regions []RegionState, keep []int) string {
	for _, k := range keep {
		o := regions[k].Region
		if o == nil {
			continue
		}
		if w.Spread.DistinctProviders && o.Provider == r.Provider {
			return "same provider as " + o.Key()
		}
		if d := Distance(r.Location, o.Location); d < w.Spread.MinDistanceKm {
			return fmt.Sprintf("%.0f km from %s, needs %.0f", d, o.Key(), w.Spread.MinDistanceKm)
		}
	}
	return ""
}
