package router

import (
	"fmt"
	"slices"
	"strings"

	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/marking"
)

// wantDep is one declared dependency as a decision reads it: the target's
// label and the sides it runs on, or why there is no target.
type wantDep struct {
	dep     flow.Dependency
	label   marking.Label // the target's
	sides   []flow.Side   // where the target runs
	missing string        // non-empty: no such target, and why
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
				wd.missing = fmt.Sprintf("%s: no such service in the catalogue", d.Target)
				break
			}
			wd.label = svc.Label
			wd.sides = []flow.Side{{Region: svc.Region, Domain: svc.NetworkDomain, Operators: svc.OperatorNationalities, Personnel: svc.Personnel}}
		case flow.PlacementTarget:
			t, ok := in.Targets[d.Target]
			if !ok || len(t.Regions) == 0 {
				wd.missing = fmt.Sprintf("%s: no live placement of the tenant", d.Target)
				break
			}
			wd.label = t.Label
			for _, r := range t.Regions {
				wd.sides = append(wd.sides, regionSide(r))
			}
		default:
			wd.missing = fmt.Sprintf("%s: not a placement or a service", d.Target)
		}
		out[i] = wd
	}
	return out
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
	return flow.CheckAll(f, []flow.Side{f.From}, d.sides, w.edges, w.now)
}

// dependencyChecker: every declared dependency is a legal flow from the
// region to every replica of its target, by the rule or through an edge
// in force (router/flow; rule 15). A workload without dependencies
// passes without work.
type dependencyChecker struct{}

func (dependencyChecker) Code() ReasonCode { return ReasonDependency }

func (dependencyChecker) Check(w *want, r *RegionState) bool {
	for i := range w.deps {
		if w.deps[i].missing != "" || !w.flows(i, r.Region).OK() {
			return false
		}
	}
	return true
}

// Explain gives the first refused dependency's code (no_target, or the
// flow's: write_down, read_up, no_edge, cds_expired, out_of_range,
// personnel, incomparable), and every refused dependency's words.
func (dependencyChecker) Explain(w *want, r *RegionState) Reason {
	var code ReasonCode
	var msgs []string
	for i := range w.deps {
		d := &w.deps[i]
		if d.missing != "" {
			if code == "" {
				code = ReasonNoTarget
			}
			msgs = append(msgs, d.missing)
			continue
		}
		for _, res := range w.flows(i, r.Region).Refused() {
			if code == "" {
				code = ReasonCode(res.Code)
			}
			msgs = append(msgs, fmt.Sprintf("%s: %s", d.dep, res.Message))
		}
	}
	return Reason{Code: code, Message: strings.Join(msgs, "; ")}
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
