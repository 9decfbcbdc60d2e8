package main_test

import (
	"slices"
	"strings"
	"testing"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Dependencies between placements, end to end through the built daemon
// and CLI (issue 13, DOMAIN.md §7.3): a SECRET analytic may read a SECRET
// store only from a region on the store's own network (no edge is in the
// default catalogue), an UNCLASSIFIED one may not read it at all (read
// up), a dependency on nothing is refused, and another tenant's
// placement may not be named.
func TestPlacementDependencies(t *testing.T) {
	e := start(t)
	store := writeSpec(t, "name: store\ntenant: us-dod\nlabel: SECRET//NOFORN\nallowed_storage_countries: [USA]\nresources: {milli_cpu: 100, memory_mib: 128}\nreplicas: 1\n")
	p := e.Place(store, "--request-id", "flow-store")
	home := p.GetAssignments()[0].GetRegion()
	domain := e.Regions()[home].GetNetworkDomain()

	analytic := func(label, target string) string {
		return writeSpec(t, "name: analytic\ntenant: us-dod\nlabel: "+label+"\nallowed_storage_countries: [USA]\n"+
			"resources: {milli_cpu: 100, memory_mib: 128}\nreplicas: 1\n"+
			"dependencies:\n  - {direction: read, target: \""+target+"\"}\n")
	}
	var plan pb.PlanResponse
	e.OK(&plan, "plan", "-f", analytic("SECRET//NOFORN", "placement:us-dod/flow-store"))
	regions := e.Regions()
	var eligible, noEdge int
	for _, v := range plan.GetRegions() {
		if v.GetEligible() {
			eligible++
			if d := regions[v.GetRegion()].GetNetworkDomain(); d != domain && v.GetRegion() != home {
				t.Errorf("%s (%s) eligible to read a store on %s (%s) with no edge", v.GetRegion(), d, home, domain)
			}
			if !slices.ContainsFunc(v.GetFlows(), func(f string) bool { return strings.Contains(f, "read placement:us-dod/flow-store by the rule") }) {
				t.Errorf("%s: flows %v; want the read by the rule", v.GetRegion(), v.GetFlows())
			}
		}
		if slices.ContainsFunc(v.GetReasons(), func(r *pb.Reason) bool { return r.GetCode() == "no_edge" }) {
			noEdge++
		}
	}
	if eligible == 0 || noEdge == 0 {
		t.Fatalf("%d eligible, %d refused for no_edge; want some of each (store in %s, %s)", eligible, noEdge, home, domain)
	}
	if r := e.Run("plan", "-f", analytic("SECRET//NOFORN", "placement:us-dod/flow-store")); r.Code != 0 || !strings.Contains(r.Stdout, "read placement:us-dod/flow-store by the rule") {
		t.Errorf("text plan: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// An unclassified analytic would read up, wherever it ran.
	e.OK(&plan, "plan", "-f", analytic("UNCLASSIFIED", "placement:us-dod/flow-store"))
	if len(plan.GetChosen()) != 0 || plan.GetRefusal() == "" {
		t.Fatalf("an UNCLASSIFIED reader of a SECRET store: chosen %v", plan.GetChosen())
	}
	readUp := false
	for _, v := range plan.GetRegions() {
		readUp = readUp || slices.ContainsFunc(v.GetReasons(), func(r *pb.Reason) bool { return r.GetCode() == "read_up" })
	}
	if !readUp {
		t.Error("no region refused for read_up")
	}

	// Nothing to depend on.
	e.OK(&plan, "plan", "-f", analytic("SECRET//NOFORN", "placement:us-dod/nope"))
	noTarget := false
	for _, v := range plan.GetRegions() {
		noTarget = noTarget || slices.ContainsFunc(v.GetReasons(), func(r *pb.Reason) bool { return r.GetCode() == "no_target" })
	}
	if len(plan.GetChosen()) != 0 || !strings.Contains(plan.GetRefusal(), "dependency") || !noTarget {
		t.Errorf("a dependency on no placement: chosen %v, refusal %q, no_target %v", plan.GetChosen(), plan.GetRefusal(), noTarget)
	}

	// Another tenant's placement is not the workload's to name.
	r := e.Run("plan", "-f", analytic("SECRET//NOFORN", "placement:us-ic/flow-store"))
	if r.Code == 0 || !strings.Contains(r.Stderr, "workload.dependencies[0]") || !strings.Contains(r.Stderr, "own tenant's placements only") {
		t.Errorf("a dependency on another tenant's placement: exit %d\n%s", r.Code, r.Stderr)
	}
}

// The seed (DOMAIN.md §7.2), end to end with the default edges and
// services: an export-controlled analytic may call the Azure OpenAI
// deployment inside Azure Government, never the commercial endpoint
// (its staff are not screened US persons, even through the edge).
func TestModelEndpointDependencies(t *testing.T) {
	e := start(t)
	var plan pb.PlanResponse
	e.OK(&plan, "plan", "-f", "examples/flow-expt-model-gov.yaml")
	if !slices.Contains(plan.GetChosen(), "azure/usgovvirginia") && len(plan.GetChosen()) != 1 {
		t.Fatalf("in-boundary endpoint: chosen %v", plan.GetChosen())
	}
	p := e.Place("examples/flow-expt-model-gov.yaml", "--request-id", "aoai-gov")
	if len(p.GetAssignments()) != 1 {
		t.Fatalf("placed %v", p)
	}
	e.OK(&plan, "plan", "-f", "examples/flow-expt-model-commercial.yaml")
	if len(plan.GetChosen()) != 0 {
		t.Fatalf("commercial endpoint: chosen %v; want refused", plan.GetChosen())
	}
	var personnel *pb.RegionVerdict
	for _, v := range plan.GetRegions() {
		if v.GetRegion() == "azure/usgovvirginia" {
			personnel = v
		}
	}
	if personnel == nil || !slices.ContainsFunc(personnel.GetReasons(), func(r *pb.Reason) bool {
		return r.GetCode() == "personnel" && strings.Contains(r.GetMessage(), "aoai-gov-to-commercial")
	}) {
		t.Fatalf("azure/usgovvirginia: %v; want refused for personnel through the edge", personnel)
	}
	if r := e.Run("place", "-f", "examples/flow-expt-model-commercial.yaml"); r.Code == 0 {
		t.Fatalf("place on the commercial endpoint: exit 0\n%s", r.Stdout)
	}
}
