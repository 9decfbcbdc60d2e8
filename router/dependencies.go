package router

import (
	"fmt"
	"slices"
	"strings"

	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// wantDep is one declared dependency as a decision reads it: the target's
// label and the sides it runs on, or why there is no target.
type wantDep struct {
	dep           flow.Dependency
	label         marking.Label // the target's
	sides         []flow.Side   // where the target runs
	countries     []string      // each side's region's country, "" when unknown
	jurisdictions []string      // each side's region's operator jurisdiction
	missing       string        // non-empty: no such target, and why
	// target: a placement target's rules for its own data (nil for a
	// service), which a read or a call brings to the workload's region
	// (receives).
	target *DependencyTarget
	// reach: why the workload's label and residency rules forbid its
	// data going where the target runs, or the target's data coming to
	// the workload, wherever the workload runs (reachDeps).
	reach []Reason
	// svc and svcRegion: the service target and the region it runs in
	// (nil when not in the catalogue).
	svc       *flow.Service
	svcRegion *RegionState
}

// serviceRules are the rules a service's data keeps wherever a read or a
// call brings it: its label's export control, if any (a service names no
// countries or jurisdictions of its own).
func serviceRules(svc *flow.Service) *DependencyTarget {
	t := &DependencyTarget{Label: svc.Label, Countries: []string{"*"}}
	if l := svc.Label.US; l != nil && l.ExportControlled() {
		t.Export = "CUI//" + label.ExportCategory
	}
	return t
}

// noService is what a caller learns of a service it may not know of: no
// more than of one that does not exist.
func noService(t flow.Target) string {
	return fmt.Sprintf("%s: no such service in the catalogue", t)
}

// dependencies resolves the workload's dependencies in the input: a
// placement of the tenant's from Targets, a service from Services.
func dependencies(in *Input) []wantDep {
	deps := in.Workload.Dependencies
	if len(deps) == 0 {
		return nil
	}
	out := make([]wantDep, len(deps))
	for i, d := range deps {
		wd := wantDep{dep: d}
		switch d.Target.Kind {
		case flow.ServiceTarget:
			svc := in.Services[d.Target.Name]
			if svc == nil {
				wd.missing = noService(d.Target)
				break
			}
			wd.label = svc.Label
			wd.svc = svc
			wd.svcRegion = regionState(in, svc.Region)
			if wd.svcRegion == nil {
				wd.missing = noService(d.Target) // runs nowhere the caller may know of
				break
			}
			// The region's network, not the record's word for it, and
			// the region's operators beside the service's own staff
			// (whoever runs the region reaches what runs in it): a
			// service record is not trusted to say where it runs or who
			// can reach it.
			reg := wd.svcRegion.Region
			ops := slices.Clone(svc.OperatorNationalities)
			for _, n := range reg.OperatorNationalities {
				if !slices.Contains(ops, n) {
					ops = append(ops, n)
				}
			}
			wd.sides = []flow.Side{{Region: svc.Region, Domain: reg.NetworkDomain.String(), Operators: ops,
				Personnel: min(svc.Personnel, flow.Personnel(reg.Personnel))}}
			wd.countries, wd.jurisdictions = []string{reg.Country}, []string{reg.OperatorJurisdiction}
			wd.target = serviceRules(svc)
		case flow.PlacementTarget:
			t, ok := in.Targets[d.Target]
			switch {
			case !ok || len(t.Regions) == 0 && len(t.Gone) == 0:
				wd.missing = fmt.Sprintf("%s: no live placement of the tenant", d.Target)
			case len(t.Gone) > 0:
				wd.missing = fmt.Sprintf("%s: runs in %s, not in the catalogue: where its data rests is unknown", d.Target, strings.Join(t.Gone, ", "))
			}
			if wd.missing != "" {
				break
			}
			wd.label, wd.target = t.Label, &t
			for _, r := range t.Regions {
				wd.sides = append(wd.sides, regionSide(r))
				wd.countries = append(wd.countries, r.Country)
				wd.jurisdictions = append(wd.jurisdictions, r.OperatorJurisdiction)
			}
		default:
			wd.missing = fmt.Sprintf("%s: not a placement or a service", d.Target)
		}
		out[i] = wd
	}
	return out
}

// regionState is the region keyed key in the input's catalogue, nil when
// it is not there.
func regionState(in *Input, key string) *RegionState {
	for i := range in.Regions {
		if r := in.Regions[i].Region; r != nil && hasKey(r, key) {
			return &in.Regions[i]
		}
	}
	return nil
}

// targetHidden reports whether a placement target runs in a region the
// tenant may not know of (hidden).
func (w *want) targetHidden(d *wantDep) bool {
	if d.target == nil || w.tenant == nil {
		return false
	}
	for _, r := range d.target.Regions {
		if hidden(w, &RegionState{Region: r}) {
			return true
		}
	}
	return false
}

// knowsService reports whether the tenant may know of the service: it
// runs in a catalogue region the tenant may know of (hidden: not above
// its ceiling, serving it), and its label is within the tenant's ceiling
// in the label's scheme, on its axis (a tenant with no ceiling there
// knows of no such service). Otherwise naming it is as
// naming nothing (no_target), so that no caller learns, by probing names,
// which services above its ceiling or in regions it may not see exist.
func (w *want) knowsService(d *wantDep) bool {
	t := w.tenant
	if t == nil {
		return true
	}
	if d.svcRegion == nil || hidden(w, d.svcRegion) {
		return false
	}
	l := &d.svc.Label
	if l.Scheme == marking.US {
		return l.US != nil && t.Ceiling != "" && t.CeilingLabel.Dominates(*l.US)
	}
	for i := range t.Ceilings {
		c := &t.Ceilings[i]
		if c.Scheme == l.Scheme && c.Parsed.Name != "" && c.Parsed.Axis == l.Level.Axis && l.Level.Rank <= c.Parsed.Rank {
			return true
		}
	}
	return false
}

// reachDeps decides, once per decision, what the workload's own rules
// say about each dependency wherever the workload runs (DOMAIN.md §7.5
// scenario 5):
//
//   - residency: a write or a call sends the workload's data to where the
//     target runs, so each of those regions' countries must be one its
//     data may rest in (and the USA for export-controlled data), as for
//     a region of its own; an unknown region is refused.
//   - no_equivalence: a label of another scheme than the target's has a
//     level in it only through an equivalence entry in force: the
//     workload's label into the target's scheme when its data goes
//     there, the target's into the workload's when the target's data
//     comes back. Even with one, router/flow compares no labels of two
//     schemes (incomparable): the entry says how to hold a label, not
//     whether one scheme's caveats cover another's.
func (w *want) reachDeps() {
	for i := range w.deps {
		d := &w.deps[i]
		if d.missing == "" && d.svc != nil && !w.knowsService(d) {
			d.missing, d.sides, d.countries = noService(d.dep.Target), nil, nil
		}
		if d.missing == "" && d.svc == nil && w.targetHidden(d) {
			// The tenant's own placement, in a region it may no longer
			// know of (raised above its ceiling, serving others only):
			// refused, and nothing said of that region.
			d.missing, d.sides, d.countries = fmt.Sprintf("%s: runs in a region no longer available to the tenant", d.dep.Target), nil, nil
		}
		if d.missing != "" {
			continue
		}
		if d.svc != nil {
			// A service's label must be held where it runs, as a
			// workload's: a region whose accreditation lapsed, was
			// lowered or revoked holds no service above it.
			// Read through the accreditations the tenant may know of
			// only: the reason lists them.
			if c := CoverRegion(d.svc.Label, d.svcRegion.Region, w.tenant, w.depEquiv, w.now); !c.OK {
				msgs := make([]string, len(c.Reasons))
				for j, x := range c.Reasons {
					msgs[j] = x.Message
				}
				d.reach = append(d.reach, Reason{Code: ReasonAccreditation, Message: fmt.Sprintf("%s: its region %s does not hold its label %s: %s",
					d.dep, d.svc.Region, d.svc.Label, strings.Join(msgs, "; "))})
			}
		}
		sends := d.dep.Direction == flow.Write || d.dep.Direction == flow.Call
		receives := d.dep.Direction == flow.Read || d.dep.Direction == flow.Call
		if sends {
			var msgs []string
			for j, c := range d.countries {
				var why []string
				if c == "" {
					msgs = append(msgs, fmt.Sprintf("%s: the data would reach %s, a region not in the catalogue", d.dep, d.sides[j].Region))
					continue
				}
				if !w.anyCountry && !contains(w.countries, c) {
					why = append(why, "allowed: "+list(w.countries))
				}
				if w.exportControlled && c != label.USA {
					why = append(why, w.exportWhy+" data must rest in USA")
				}
				if len(why) > 0 {
					msgs = append(msgs, fmt.Sprintf("%s: the data would reach %s in %s; %s", d.dep, d.sides[j].Region, c, strings.Join(why, "; ")))
				}
			}
			if len(msgs) > 0 {
				d.reach = append(d.reach, Reason{Code: ReasonResidency, Message: strings.Join(msgs, "; ")})
			}
			msgs = nil
			for j, jur := range d.jurisdictions {
				if len(w.jurisdictions) > 0 && !contains(w.jurisdictions, jur) {
					msgs = append(msgs, fmt.Sprintf("%s: the data would reach %s, operated under %s jurisdiction; allowed: %s",
						d.dep, d.sides[j].Region, jur, list(w.jurisdictions)))
				}
			}
			if len(msgs) > 0 {
				d.reach = append(d.reach, Reason{Code: ReasonJurisdiction, Message: strings.Join(msgs, "; ")})
			}
		}
		if d.label.Scheme == w.depLabel.Scheme {
			continue
		}
		if sends {
			if res := w.depEquiv.Map(marking.Parser{}, w.depLabel, d.label.Scheme, w.now); !res.OK() {
				d.reach = append(d.reach, Reason{Code: ReasonNoEquivalence, Scheme: w.depLabel.Scheme,
					Message: fmt.Sprintf("%s: the data goes to a %s label: %s", d.dep, d.label.Scheme, res.Explain(w.depLabel, d.label.Scheme, w.now))})
			}
		}
		if receives {
			if res := w.depEquiv.Map(marking.Parser{}, d.label, w.depLabel.Scheme, w.now); !res.OK() {
				d.reach = append(d.reach, Reason{Code: ReasonNoEquivalence, Scheme: d.label.Scheme,
					Message: fmt.Sprintf("%s: the target's %s data comes back: %s", d.dep, d.label.Scheme, res.Explain(d.label, w.depLabel.Scheme, w.now))})
			}
		}
	}
}

// regionSide is a region as a flow sees it.
func regionSide(r *Region) flow.Side {
	return flow.Side{Region: r.Key(), Domain: r.NetworkDomain.String(), Operators: r.OperatorNationalities, Personnel: flow.Personnel(r.Personnel)}
}

// workloadMarking is the workload's label in its scheme.
func workloadMarking(wl *Workload) marking.Label {
	if wl.Foreign() {
		return wl.Marking
	}
	return marking.FromUS(wl.Label)
}

// exportName is the workload's declared export control as router/flow
// names it ("" for none).
func exportName(e ExportControl) string {
	switch e {
	case ExportITAR:
		return "ITAR"
	case ExportEAR:
		return "EAR"
	}
	return ""
}

// flows decides dependency i from region r: every side of the target.
func (w *want) flows(i int, r *Region) flow.Results {
	d := &w.deps[i]
	f := flow.Flow{Direction: d.dep.Direction, Label: w.depLabel, ExportControl: w.depExport,
		From: regionSide(r), Target: d.dep.Target, TargetLabel: d.label}
	return w.edges.CheckAll(f, []flow.Side{f.From}, d.sides)
}

// flowLegal is flows(i, r).OK(), without words (Check's fast path).
func (w *want) flowLegal(i int, r *Region) bool {
	d := &w.deps[i]
	f := flow.Flow{Direction: d.dep.Direction, Label: w.depLabel, ExportControl: w.depExport,
		From: regionSide(r), Target: d.dep.Target, TargetLabel: d.label}
	return w.edges.Legal(f, []flow.Side{f.From}, d.sides)
}

// dependencyChecker: every declared dependency is a legal flow from the
// region to every replica of its target, by the rule or through an edge
// in force (router/flow; rule 15). A workload without dependencies
// passes without work.
type dependencyChecker struct{}

func (dependencyChecker) Code() ReasonCode { return ReasonDependency }

func (dependencyChecker) Check(w *want, r *RegionState) bool {
	if len(w.deps) == 0 {
		return true
	}
	byDomain := w.byDomain(r.Region)
	for i := range w.deps {
		d := &w.deps[i]
		if d.missing != "" || len(d.reach) > 0 || !d.receivable(r.Region) || !w.legal(i, r.Region, byDomain) {
			return false
		}
	}
	return true
}

// receives reports whether the dependency brings the target's data to
// the workload (read, call).
func (d *wantDep) receives() bool {
	return d.dep.Direction == flow.Read || d.dep.Direction == flow.Call
}

// receivable reports whether a target's own rules let its data come to
// region r (a read or a call brings it there): r's country one the
// target's data may rest in, its operators under a jurisdiction the
// target allows, and for export-controlled data the USA, run by screened
// US persons only. A placement's rules are its workload's; a service's,
// its label's export control (serviceRules).
func (d *wantDep) receivable(r *Region) bool {
	t := d.target
	if t == nil || !d.receives() {
		return true
	}
	anyCountry := len(t.Countries) == 1 && t.Countries[0] == "*"
	return (anyCountry || contains(t.Countries, r.Country)) &&
		(len(t.Jurisdictions) == 0 || contains(t.Jurisdictions, r.OperatorJurisdiction)) &&
		(t.Export == "" || r.Country == label.USA && usOnly(r.OperatorNationalities) && r.Personnel >= PersonnelScreenedUSPersons)
}

// receiveReasons says why receivable is false.
func (d *wantDep) receiveReasons(r *Region) []Reason {
	t := d.target
	var out []Reason
	anyCountry := len(t.Countries) == 1 && t.Countries[0] == "*"
	if !anyCountry && !contains(t.Countries, r.Country) {
		out = append(out, Reason{Code: ReasonResidency, Message: fmt.Sprintf("%s: the target's data would come to %s; it may rest in %s only",
			d.dep, r.Country, list(t.Countries))})
	}
	if len(t.Jurisdictions) > 0 && !contains(t.Jurisdictions, r.OperatorJurisdiction) {
		out = append(out, Reason{Code: ReasonJurisdiction, Message: fmt.Sprintf("%s: the target's data would come to operators under %s jurisdiction; it allows %s only",
			d.dep, r.OperatorJurisdiction, list(t.Jurisdictions))})
	}
	if t.Export != "" {
		if r.Country != label.USA {
			out = append(out, Reason{Code: ReasonResidency, Message: fmt.Sprintf("%s: the target's %s data would come to %s; it must rest in USA", d.dep, t.Export, r.Country)})
		}
		if !usOnly(r.OperatorNationalities) || r.Personnel < PersonnelScreenedUSPersons {
			out = append(out, Reason{Code: ReasonPersonnel, Message: fmt.Sprintf("%s: the target's %s data would come to operators %s (%s); it requires screened US persons only",
				d.dep, t.Export, strings.Join(r.OperatorNationalities, ", "), r.Personnel)})
		}
	}
	return out
}

// byDomain reports whether a flow's outcome from r depends on its
// network domain alone: r is not air-gapped (a network of its own) and
// no edge names it (edge endpoints and sameNetwork are what read a
// region's key; the personnel rule reads the target's side).
func (w *want) byDomain(r *Region) bool {
	return r.NetworkDomain != DomainAirGapped && int(r.NetworkDomain) < numDomains && !w.edgeEnds[r.Provider][r.ID]
}

// legal reports whether dependency i is a legal flow from region r to
// every side of its target: once per network domain for the regions
// whose outcome depends on their domain alone (byDomain; want.depMemo),
// and for each of the others.
func (w *want) legal(i int, r *Region, byDomain bool) bool {
	if !byDomain {
		return w.flowLegal(i, r)
	}
	m := &w.depMemo[i][r.NetworkDomain]
	if *m == 0 {
		*m = 2
		if w.flowLegal(i, r) {
			*m = 1
		}
	}
	return *m == 1
}

// Explain joins ExplainAll into one reason of the first code.
func (c dependencyChecker) Explain(w *want, r *RegionState) Reason {
	all := c.ExplainAll(w, r)
	if len(all) == 0 {
		return Reason{Code: ReasonDependency}
	}
	msgs := make([]string, len(all))
	for i, x := range all {
		msgs[i] = x.Message
	}
	return Reason{Code: all[0].Code, Message: strings.Join(msgs, "; ")}
}

// ExplainAll gives one reason per code, in the order first met: no_target
// for a dependency on nothing; residency and no_equivalence for where the
// workload's rules forbid its data to go (reachDeps); and the flow's
// codes (write_down, read_up, no_edge, cds_expired, out_of_range,
// personnel, incomparable) for each refused dependency, in words naming
// it. A dependency refused for no_equivalence is not refused again as
// incomparable: the missing entry is the reason.
func (dependencyChecker) ExplainAll(w *want, r *RegionState) []Reason {
	var out []Reason
	add := func(x Reason) {
		for i := range out {
			if out[i].Code == x.Code {
				out[i].Message += "; " + x.Message
				for _, e := range x.Equivalence {
					if !slices.Contains(out[i].Equivalence, e) {
						out[i].Equivalence = append(out[i].Equivalence, e)
					}
				}
				return
			}
		}
		out = append(out, x)
	}
	for i := range w.deps {
		d := &w.deps[i]
		if d.missing != "" {
			add(Reason{Code: ReasonNoTarget, Message: d.missing})
			continue
		}
		noEquiv := false
		for _, x := range d.reach {
			add(x)
			noEquiv = noEquiv || x.Code == ReasonNoEquivalence
		}
		if !d.receivable(r.Region) {
			for _, x := range d.receiveReasons(r.Region) {
				add(x)
			}
		}
		for _, res := range w.flows(i, r.Region).Refused() {
			if noEquiv && res.Code == flow.CodeIncomparable {
				continue
			}
			add(Reason{Code: ReasonCode(res.Code), Message: fmt.Sprintf("%s: %s", d.dep, res.Message)})
		}
	}
	if len(out) == 0 {
		// Check refused what no reason explains: still refused, and a
		// violation on recheck (fail closed).
		out = append(out, Reason{Code: ReasonDependency, Message: "a dependency is no legal flow from this region"})
	}
	return out
}

// FlowEdges returns the IDs of the edges through which the workload's
// dependencies flow from the regions in.Regions[i], i in chosen (as
// Decision.Chosen), sorted, each once. A decision to place there holds
// while those edges are unchanged: adding an edge never makes a legal
// flow illegal, and a flow needs only the one edge that carries it (the
// least ID of those that do), so a commit compares these and no others.
func FlowEdges(in *Input, chosen []int) []string {
	if len(in.Workload.Dependencies) == 0 || len(in.Edges) == 0 {
		return nil
	}
	w := newWant(in)
	var ids []string
	for _, idx := range chosen {
		r := in.Regions[idx].Region
		for i := range w.deps {
			if w.deps[i].missing != "" {
				continue
			}
			for _, res := range w.flows(i, r) {
				if res.Edge != "" && !slices.Contains(ids, res.Edge) {
					ids = append(ids, res.Edge)
				}
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// flowsVia says, for an eligible region, how each dependency flows:
// "read service:x through edge d1", or "… within the rule".
func (w *want) flowsVia(r *Region) []string {
	var out []string
	for i := range w.deps {
		edges := map[string]bool{}
		for _, res := range w.flows(i, r) {
			edges[res.Edge] = true
		}
		var via []string
		for e := range edges {
			if e == "" {
				via = append(via, "by the rule")
			} else {
				via = append(via, "through edge "+e)
			}
		}
		slices.Sort(via)
		out = append(out, w.deps[i].dep.String()+" "+strings.Join(via, ", "))
	}
	return out
}
