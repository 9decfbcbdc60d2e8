package router

import (
	"fmt"
	"slices"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
)

// Reconciling a placement with the live world. A placement that was
// right when it was made can be wrong today: its region lost health,
// was drained, or lost its accreditation; its tenant's ceiling was
// lowered; its agent reports a replica failed. Reconcile looks at one
// placement against the state of the regions and says what must happen,
// with the reasons, as Nomad's AllocReconciler does for a job's
// allocations. It decides only: the caller (the store's elected
// reconciler) commits the result, comparing what it read.
//
//   - Each replica is rechecked against its region (Recheck: every rule
//     but capacity). A failed coverage rule flags the placement a
//     violation at once (ActionFlag), with the reasons.
//   - A replica that must move gets the best region that qualifies and
//     keeps the spread with the other replicas (Replace; ActionMove).
//     The copy left behind is kept as a retiring copy, holding its
//     capacity, until the replacement is confirmed.
//   - When no region can take it, the replica is stranded
//     (ActionStrand); while moves are paced it waits (ActionHold).
//   - A retiring copy whose replacement is confirmed (its agent
//     acknowledged it running, or its region has no agent to
//     acknowledge) is released (ActionRetire): never one made in the
//     same call, so the last compliant copy is never lost.
//   - A placement whose issues are all gone without a move has
//     recovered (ActionRecover).

// Rechecker is what Reconcile needs of the engine; Engine satisfies it.
type Rechecker interface {
	Recheck(in Input, idx int) ([]Reason, bool)
	Replace(in Input, keep, avoid []int) (Replacement, error)
}

// ActionKind names what Reconcile decided for a replica or a copy.
type ActionKind uint8

// Action kinds. Keep is no action at all (Reconciliation.Keep).
const (
	// ActionFlag: a replica's region (or a retiring copy's) no longer
	// covers the workload: the placement is a violation.
	ActionFlag ActionKind = iota + 1
	// ActionMove: replica Replica moves from Region to To; the copy in
	// Region stays, retiring, until the one in To is confirmed.
	ActionMove
	// ActionStrand: replica Replica must move and no region can take it.
	ActionStrand
	// ActionHold: replica Replica must move and waits: moves are paced
	// (ReconcileInput.MaxMoves).
	ActionHold
	// ActionRetire: the retiring copy in Region is released, its
	// replacement in To confirmed.
	ActionRetire
	// ActionRecover: every issue of the placement is gone without a move.
	ActionRecover
)

var actionNames = [...]string{"keep", "flag", "move", "strand", "hold", "retire", "recover"}

func (k ActionKind) String() string { return enumString(actionNames[:], int(k), "ActionKind") }

// Action is one thing that must happen to a placement, and why.
type Action struct {
	Kind ActionKind
	// Replica is the replica's position in Placement.Regions; -1 for a
	// retiring copy (Flag, Retire) and for the whole placement (Recover).
	Replica int
	// Region is the replica's or the copy's region. To is where the
	// replica moves (Move), or where the retiring copy moved (Retire).
	Region, To string
	// ToIndex is To's position in ReconcileInput.Regions (Move).
	ToIndex int
	// Score is To's score (Move).
	Score float64
	// NoAgent (Retire) is the region whose having no agent confirms the
	// replacement, "" when an agent acknowledged it: a commit must find
	// it still without one.
	NoAgent string
	// Reasons says why (Flag, Move, Strand, Hold).
	Reasons []Reason
}

// AnyMoves as ReconcileInput.MaxMoves puts no bound on the moves.
const AnyMoves = -1

// ReconcileInput is the world a placement is reconciled against.
type ReconcileInput struct {
	// Tenant is the placement's tenant record. Required: without one
	// nothing can be rechecked, and Reconcile keeps the placement.
	Tenant *Tenant
	// Regions is the snapshot of every region: those the placement uses
	// and the candidates for a move.
	Regions []RegionState
	// Index maps a region key to its position in Regions; when nil it
	// is derived from Regions.
	Index map[string]int
	// Now judges accreditations, and stamps what changes.
	Now time.Time
	// Equivalence is the equivalence table in force (Input.Equivalence):
	// every re-check maps the placement's original label again through it.
	Equivalence equiv.Table
	// Edges, Services and Targets are Input's: the placement's
	// dependencies are re-checked with them.
	Edges    []flow.Edge
	Services map[string]*flow.Service
	Targets  map[flow.Target]DependencyTarget
	// MaxMoves is the most replicas this call may move: AnyMoves for no
	// bound, 0 while moves are paced (a replica that must move is held).
	MaxMoves int
}

func (in *ReconcileInput) index(key string) (int, bool) {
	if in.Index != nil {
		i, ok := in.Index[key]
		return i, ok
	}
	for i := range in.Regions {
		if r := in.Regions[i].Region; r != nil && r.Key() == key {
			return i, true
		}
	}
	return 0, false
}

// Reconciliation is what Reconcile decided for one placement.
type Reconciliation struct {
	// Next is the placement as it must be stored; nil when it stays as
	// it is (Keep).
	Next *Placement
	// Actions are what happens, in order: the caller records each.
	// With Next nil they hold at most ActionHold.
	Actions []Action
	// Compared indexes ReconcileInput.Regions: the regions the decision
	// rests on (the current replicas' and those moved to). A commit
	// must find them as they were read.
	Compared []int
}

// Keep reports whether the placement stays as it is.
func (r *Reconciliation) Keep() bool { return r.Next == nil }

// Held reports whether a replica waits for a paced move.
func (r *Reconciliation) Held() bool {
	return slices.ContainsFunc(r.Actions, func(a Action) bool { return a.Kind == ActionHold })
}

// Reconcile decides what must happen to live placement p in the world
// of in (see the comment above). It never modifies p: what changes is in
// the returned Next, a copy. A released placement is kept as it is.
func Reconcile(e Rechecker, p *Placement, in ReconcileInput) Reconciliation {
	if !p.State.Live() || in.Tenant == nil {
		return Reconciliation{}
	}
	now := in.Now
	w := &p.Workload
	rin := Input{Workload: w, Tenant: in.Tenant, Regions: in.Regions, Now: now, Equivalence: in.Equivalence,
		Edges: in.Edges, Services: in.Services, Targets: in.Targets}
	labelOK := w.Banner != "" && w.LabelString() == w.Banner
	// A tenant whose ceiling was lowered below the workload's label may
	// no longer hold it anywhere: every replica is a violation, and no
	// move can mend it.
	var ceiling error
	if labelOK {
		ceiling = in.Tenant.WithinCeilingOf(w)
	}

	var out Reconciliation

	// 1. Recheck every replica.
	var keep, avoid []int
	type bad struct {
		i     int
		issue Issue
	}
	var bads []bad
	for i, key := range p.Regions {
		idx, ok := in.index(key)
		var reasons []Reason
		violation := false
		switch {
		case !labelOK:
			reasons, violation = []Reason{{Code: ReasonLevel, Message: fmt.Sprintf("stored label %q no longer parses", w.Banner)}}, true
		case ceiling != nil:
			reasons, violation = []Reason{{Code: ReasonPolicy, Message: ceiling.Error()}}, true
		case !ok:
			reasons, violation = []Reason{{Code: ReasonHealth, Message: "region record is gone"}}, true
		default:
			out.Compared = append(out.Compared, idx)
			reasons, violation = e.Recheck(rin, idx)
		}
		if rs := p.Replica(i); rs.State == ReplicaFailed {
			msg := "replica failed in the region"
			if rs.Detail != "" {
				msg += ": " + rs.Detail
			}
			reasons = append(reasons, Reason{Code: ReasonHealth, Message: msg})
		}
		if len(reasons) == 0 {
			if ok {
				keep = append(keep, idx)
			}
			continue
		}
		if ok {
			avoid = append(avoid, idx)
		}
		bads = append(bads, bad{i, Issue{Region: key, Violation: violation, Reasons: reasons, Since: issueSince(p, key, now)}})
	}
	if len(bads) == 0 && len(p.Issues) == 0 && len(p.Retiring) == 0 && p.State == PlacementPlaced {
		return Reconciliation{} // the common case: nothing to do, nothing copied
	}
	for _, rt := range p.Retiring {
		if idx, ok := in.index(rt.Region); ok {
			avoid = append(avoid, idx)
		}
	}

	next := clonePlacement(p)
	next.Issues = nil
	act := func(a Action) {
		a.Reasons = slices.Clip(a.Reasons)
		out.Actions = append(out.Actions, a)
	}

	// 2. Move what must move, or say why it cannot.
	moves := in.MaxMoves
	moved := false
	for _, b := range bads {
		issue := b.issue
		if issue.Violation && !hadIssue(p, issue.Region, func(is Issue) bool { return is.Violation }) {
			act(Action{Kind: ActionFlag, Replica: b.i, Region: issue.Region, Reasons: issue.Reasons})
		}
		if !labelOK || ceiling != nil {
			why := "cannot re-decide on a label that does not parse"
			if ceiling != nil {
				why = "no region may hold it: the label is above the tenant's ceiling"
			}
			issue.Stranded = true
			issue.Reasons = append(issue.Reasons, Reason{Code: ReasonStranded, Message: why})
			next.Issues = append(next.Issues, issue)
			continue
		}
		if moves == 0 {
			act(Action{Kind: ActionHold, Replica: b.i, Region: issue.Region, Reasons: issue.Reasons})
			next.Issues = append(next.Issues, carryStranded(p, issue))
			continue // moved on a later call
		}
		rep, err := e.Replace(rin, keep, avoid)
		if err != nil {
			issue.Stranded = true
			issue.Reasons = append(issue.Reasons, Reason{Code: ReasonStranded, Message: err.Error()})
			if !hadIssue(p, issue.Region, func(is Issue) bool { return is.Stranded }) {
				act(Action{Kind: ActionStrand, Replica: b.i, Region: issue.Region, Reasons: issue.Reasons})
			}
			next.Issues = append(next.Issues, issue)
			continue
		}
		to := in.Regions[rep.Index].Region.Key()
		next.Regions[b.i] = to
		if b.i < len(next.Scores) {
			next.Scores[b.i] = rep.Score
		}
		if b.i < len(next.Replicas) {
			next.Replicas[b.i] = ReplicaStatus{State: ReplicaPending, At: now.UTC()}
		}
		next.Retiring = append(next.Retiring, Retiring{Region: issue.Region, MovedTo: to, Reasons: issue.Reasons, Since: now.UTC()})
		next.Moves++
		keep = append(keep, rep.Index)
		avoid = append(avoid, rep.Index)
		out.Compared = append(out.Compared, rep.Index)
		act(Action{Kind: ActionMove, Replica: b.i, Region: issue.Region, To: to, ToIndex: rep.Index, Score: rep.Score, Reasons: issue.Reasons})
		moved = true
		if moves > 0 {
			moves--
		}
	}

	// 3. Release the retiring copies whose replacement is confirmed
	// (never one made in this call).
	kept := next.Retiring[:0:0]
	for _, rt := range next.Retiring {
		if ok, none := confirmed(next, rt, &in); ok && !rt.Since.Equal(now.UTC()) {
			act(Action{Kind: ActionRetire, Replica: -1, Region: rt.Region, To: rt.MovedTo, NoAgent: none})
			continue
		}
		kept = append(kept, rt)
	}
	next.Retiring = kept

	// 4. The state: a violation while any replica, or any copy still
	// running, sits where the workload may not be.
	next.State = PlacementPlaced
	for _, is := range next.Issues {
		if is.Stranded && next.State != PlacementViolation {
			next.State = PlacementStranded
		}
		if is.Violation {
			next.State = PlacementViolation
		}
	}
	for _, rt := range next.Retiring {
		idx, ok := in.index(rt.Region)
		if !ok || !labelOK {
			continue
		}
		if reasons, v := e.Recheck(rin, idx); v {
			next.State = PlacementViolation
			flagged := hadIssue(p, rt.Region, func(is Issue) bool { return is.Violation }) ||
				slices.ContainsFunc(bads, func(b bad) bool { return b.issue.Region == rt.Region && b.issue.Violation })
			if p.State != PlacementViolation && !flagged {
				// A copy still running where the workload may not be is
				// a violation on the record, even though it is already
				// leaving.
				act(Action{Kind: ActionFlag, Replica: -1, Region: rt.Region, Reasons: reasons})
			}
		}
	}
	if len(p.Issues) > 0 && len(next.Issues) == 0 && !moved {
		act(Action{Kind: ActionRecover, Replica: -1})
	}
	if samePlacement(p, next) {
		// Nothing to write; a held move is all there is to say.
		held := out.Actions[:0]
		for _, a := range out.Actions {
			if a.Kind == ActionHold {
				held = append(held, a)
			}
		}
		return Reconciliation{Actions: held}
	}
	next.UpdatedAt = now.UTC()
	out.Next = next
	return out
}

// confirmed reports whether the replacement of a retiring copy is
// confirmed: following the moves from rt (a replacement may itself have
// moved on before it was confirmed) to a current replica, that replica
// has no issue and is acknowledged running, or its region has no agent
// to acknowledge it (no health record, and no live agent session: one
// that has connected but not yet reported is an agent). When it rests on
// the region having no agent, it returns that region too.
func confirmed(p *Placement, rt Retiring, in *ReconcileInput) (bool, string) {
	to := rt.MovedTo
	for range len(p.Retiring) + 1 {
		if j := slices.Index(p.Regions, to); j >= 0 {
			for _, is := range p.Issues {
				if is.Region == to {
					return false, ""
				}
			}
			if p.Replica(j).State == ReplicaRunning {
				return true, ""
			}
			if idx, ok := in.index(to); ok {
				if st := &in.Regions[idx]; st.Health == nil && !st.AgentLive {
					return true, to
				}
			}
			return false, ""
		}
		k := slices.IndexFunc(p.Retiring, func(o Retiring) bool { return o.Region == to })
		if k < 0 {
			return false, ""
		}
		to = p.Retiring[k].MovedTo
	}
	return false, ""
}

// issueSince keeps the time an issue was first seen.
func issueSince(p *Placement, region string, now time.Time) time.Time {
	for _, is := range p.Issues {
		if is.Region == region {
			return is.Since
		}
	}
	return now.UTC()
}

// hadIssue reports whether p already had an issue in region that is.
func hadIssue(p *Placement, region string, is func(Issue) bool) bool {
	for _, x := range p.Issues {
		if x.Region == region && is(x) {
			return true
		}
	}
	return false
}

// carryStranded keeps a replica's stranded mark while its move waits.
func carryStranded(p *Placement, issue Issue) Issue {
	for _, is := range p.Issues {
		if is.Region == issue.Region && is.Stranded {
			return is
		}
	}
	return issue
}

// clonePlacement copies the parts of p that Reconcile changes.
func clonePlacement(p *Placement) *Placement {
	c := *p
	c.Regions = slices.Clone(p.Regions)
	c.Scores = slices.Clone(p.Scores)
	c.Replicas = slices.Clone(p.Replicas)
	c.Issues = slices.Clone(p.Issues)
	c.Retiring = slices.Clone(p.Retiring)
	return &c
}

// samePlacement reports whether b records nothing new of a.
func samePlacement(a, b *Placement) bool {
	if a.State != b.State || a.Moves != b.Moves || !slices.Equal(a.Regions, b.Regions) || len(a.Issues) != len(b.Issues) || len(a.Retiring) != len(b.Retiring) {
		return false
	}
	for i := range a.Issues {
		x, y := a.Issues[i], b.Issues[i]
		if x.Region != y.Region || x.Violation != y.Violation || x.Stranded != y.Stranded || !slices.EqualFunc(x.Reasons, y.Reasons, Reason.Equal) {
			return false
		}
	}
	for i := range a.Retiring {
		if a.Retiring[i].Region != b.Retiring[i].Region || a.Retiring[i].MovedTo != b.Retiring[i].MovedTo {
			return false
		}
	}
	return true
}

// SamePolicy reports whether tenants t and o place and recheck alike:
// the same nation, sector, ceilings (in every scheme) and region and
// provider rules. Their names, members, placement caps and default
// scheme may differ: none of those moves a placement (a stored label
// keeps the scheme it was read in).
func (t *Tenant) SamePolicy(o *Tenant) bool {
	if t == nil || o == nil {
		return t == o
	}
	return t.Nation == o.Nation && t.Sector == o.Sector && t.Ceiling == o.Ceiling && sameCeilings(t.Ceilings, o.Ceilings) &&
		slices.Equal(t.AllowedRegions, o.AllowedRegions) && slices.Equal(t.DeniedRegions, o.DeniedRegions) &&
		slices.Equal(t.AllowedProviders, o.AllowedProviders) && slices.Equal(t.DeniedProviders, o.DeniedProviders)
}

// sameCeilings reports whether two lists of scheme ceilings are the same
// set.
func sameCeilings(a, b []SchemeCeiling) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y SchemeCeiling) bool { return x.Scheme == y.Scheme && x.Level == y.Level }) {
			return false
		}
	}
	return true
}
