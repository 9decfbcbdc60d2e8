package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

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

// catalogued adds an example edge or service (examples/catalogue) as
// two catalogue administrators do: alice proposes, bob approves.
func (e *env) catalogued(kind, file string) {
	e.t.Helper()
	ch := e.Change(kind, "propose", "-f", "examples/catalogue/"+file, "--reason", "DOMAIN.md §7.5", "--as", "alice")
	if done := e.Change("change", "approve", ch.GetId(), "--as", "bob"); done.GetState() != "applied" {
		e.t.Fatalf("%s %s: %v", kind, file, done)
	}
}

// refusedFor reports whether the plan's verdict for region key refuses it
// with code, its message holding want.
func refusedFor(plan *pb.PlanResponse, key, code, want string) bool {
	for _, v := range plan.GetRegions() {
		if v.GetRegion() == key {
			return !v.GetEligible() && slices.ContainsFunc(v.GetReasons(), func(r *pb.Reason) bool {
				return r.GetCode() == code && strings.Contains(r.GetMessage(), want)
			})
		}
	}
	return false
}

// DOMAIN.md §7.5, every scenario end to end through the built daemon and
// CLI, with the example edges and services added by two administrators
// (scenario 3, the seed's, is TestModelEndpointDependencies).
func TestFlowScenarios(t *testing.T) {
	e := start(t)
	for _, f := range []string{"service-weather-store.yaml", "service-release-bucket.yaml", "service-secret-api.yaml", "service-uk-records.yaml"} {
		e.catalogued("service", f)
	}
	e.catalogued("edge", "edge-diode-internet-siprnet.yaml")
	e.catalogued("edge", "edge-diode-internet-jwics-lapsed.yaml")
	regions := e.Regions()
	var plan pb.PlanResponse

	// 1. SECRET reads an UNCLASSIFIED store over the diode: placed on SIPRNet.
	e.OK(&plan, "plan", "-f", "examples/flow-secret-reads-open-store.yaml")
	if len(plan.GetChosen()) != 1 || regions[plan.GetChosen()[0]].GetNetworkDomain() != pb.NetworkDomain_NETWORK_DOMAIN_SIPRNET {
		t.Fatalf("1: chosen %v (%s); want one SIPRNet region", plan.GetChosen(), plan.GetRefusal())
	}
	if r := e.Run("plan", "-f", "examples/flow-secret-reads-open-store.yaml"); !strings.Contains(r.Stdout, "read service:weather-store through edge diode-internet-siprnet") {
		t.Errorf("1: text plan does not show the diode:\n%s%s", r.Stdout, r.Stderr)
	}
	if p := e.Place("examples/flow-secret-reads-open-store.yaml", "--request-id", "s1"); regions[p.GetAssignments()[0].GetRegion()].GetNetworkDomain() != pb.NetworkDomain_NETWORK_DOMAIN_SIPRNET {
		t.Fatalf("1: placed %v", p.GetAssignments())
	}

	// 2. A write down, refused; then allowed by the guard two
	// administrators add.
	e.OK(&plan, "plan", "-f", "examples/flow-secret-writes-release-bucket.yaml")
	if len(plan.GetChosen()) != 0 || !refusedFor(&plan, "azure/usseceast", "write_down", "write service:release-bucket") {
		t.Fatalf("2: chosen %v; want refused write_down", plan.GetChosen())
	}
	if r := e.Run("place", "-f", "examples/flow-secret-writes-release-bucket.yaml"); r.Code == 0 || !strings.Contains(r.Stderr, "write_down") {
		t.Fatalf("2: place exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	e.catalogued("edge", "edge-guard-siprnet-internet.yaml")
	p := e.Place("examples/flow-secret-writes-release-bucket.yaml", "--request-id", "s2")
	if regions[p.GetAssignments()[0].GetRegion()].GetNetworkDomain() != pb.NetworkDomain_NETWORK_DOMAIN_SIPRNET {
		t.Fatalf("2: placed %v", p.GetAssignments())
	}
	e.OK(&plan, "plan", "-f", "examples/flow-secret-writes-release-bucket.yaml")
	for _, v := range plan.GetRegions() {
		if v.GetEligible() && !slices.Contains(v.GetFlows(), "write service:release-bucket through edge guard-siprnet-internet") {
			t.Errorf("2: %s eligible with flows %v", v.GetRegion(), v.GetFlows())
		}
	}

	// 4. TOP SECRET//SI calls a SECRET API: refused write_down.
	e.OK(&plan, "plan", "-f", "examples/flow-ts-calls-secret-api.yaml")
	if len(plan.GetChosen()) != 0 || !refusedFor(&plan, "azure/usnateast", "write_down", "call service:secret-targeting-api") {
		t.Fatalf("4: chosen %v; want refused write_down:\n%v", plan.GetChosen(), plan.GetRegions())
	}

	// 5. AUS PROTECTED calls a uksouth service: no_equivalence, residency.
	e.OK(&plan, "plan", "-f", "examples/flow-aus-calls-uk-service.yaml")
	if len(plan.GetChosen()) != 0 || !refusedFor(&plan, "azure/australiacentral", "no_equivalence", "no equivalence entry AUS→GBR") ||
		!refusedFor(&plan, "azure/australiacentral", "residency", "azure/uksouth in GBR; allowed: AUS") {
		t.Fatalf("5: chosen %v; want refused no_equivalence and residency:\n%v", plan.GetChosen(), plan.GetRegions())
	}

	// 6. A lapsed diode: cds_expired, no fallback.
	e.OK(&plan, "plan", "-f", "examples/flow-ts-reads-over-lapsed-diode.yaml")
	if len(plan.GetChosen()) != 0 || !refusedFor(&plan, "aws/us-iso-east-1", "cds_expired", "diode-internet-jwics") {
		t.Fatalf("6: chosen %v; want refused cds_expired:\n%v", plan.GetChosen(), plan.GetRegions())
	}
}

// An edge withdrawn under live placements (issue 13 part 4): the moment
// the second administrator approves the revocation, every placement
// reading through it is flagged a violation with the reason (within a
// second), and stranded, since no other path exists; nothing falls back
// to a weaker region, and the audit trail records it.
func TestEdgeWithdrawnUnderLivePlacements(t *testing.T) {
	e := start(t)
	e.catalogued("service", "service-weather-store.yaml")
	e.catalogued("edge", "edge-diode-internet-siprnet.yaml")
	var ids []string
	for i := range 3 {
		id := fmt.Sprintf("reader-%d", i)
		p := e.Place("examples/flow-secret-reads-open-store.yaml", "--request-id", id)
		ids = append(ids, p.GetId())
	}
	var list pb.ListResponse
	e.OK(&list, "list")
	w := e.watch("-o", "json", fmt.Sprintf("--after=%d", list.GetRevision()), "--tenant", "us-dod")
	rv := e.Change("edge", "revoke", "diode-internet-siprnet", "--reason", "CDS authorisation suspended", "--as", "alice")
	done := e.Change("change", "approve", rv.GetId(), "--as", "bob")
	// From the approval, as the daemon timed it.
	e.flaggedWithin(ids, done.GetDecideTime().AsTime(), time.Second, "diode-internet-siprnet")
	// Watch shows each flagged, with the reason.
	flagged := map[string]bool{}
	for len(flagged) < len(ids) {
		var resp pb.WatchResponse
		if err := protojson.Unmarshal([]byte(w.next(30*time.Second)), &resp); err != nil {
			t.Fatal(err)
		}
		for _, ev := range resp.GetEvents() {
			p := ev.GetPlacement()
			if p.GetState() == pb.PlacementState_PLACEMENT_STATE_VIOLATION && slices.ContainsFunc(p.GetIssues(), func(x *pb.ReplicaIssue) bool {
				return x.GetViolation() && slices.ContainsFunc(x.GetReasons(), func(r *pb.Reason) bool { return r.GetCode() == "cds_expired" })
			}) {
				flagged[p.GetId()] = true
			}
		}
	}
	// No fallback: every replica stays where it was, flagged, and nothing
	// can be placed anew.
	for _, id := range ids {
		for _, a := range e.get(id).GetAssignments() {
			if d := e.Regions()[a.GetRegion()].GetNetworkDomain(); d != pb.NetworkDomain_NETWORK_DOMAIN_SIPRNET {
				t.Errorf("%s moved to %s (%s)", id, a.GetRegion(), d)
			}
		}
	}
	if r := e.Run("place", "-f", "examples/flow-secret-reads-open-store.yaml"); r.Code == 0 || !strings.Contains(r.Stderr, "cds_expired") {
		t.Errorf("place after the revocation: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := e.Run("audit", "list", "--workload", "weather-fusion", "-o", "json"); r.Code != 0 || !strings.Contains(r.Stdout, "cds_expired") {
		t.Errorf("audit of weather-fusion: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// flaggedWithin waits until each placement is flagged a violation with
// the reason cds_expired naming the edge, and fails the test if the
// daemon flagged it (the issue's since, the reconciler's clock) more than
// d after since. The wait itself is longer: the CLI polling is not
// what is measured.
func (e *env) flaggedWithin(ids []string, since time.Time, d time.Duration, edge string) {
	e.t.Helper()
	for _, id := range ids {
		var issue *pb.ReplicaIssue
		for issue == nil {
			if time.Since(since) > d+15*time.Second {
				e.t.Fatalf("%s not flagged: %v", id, e.get(id))
			}
			for _, x := range e.get(id).GetIssues() {
				if x.GetViolation() {
					issue = x
				}
			}
			if issue == nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if !slices.ContainsFunc(issue.GetReasons(), func(r *pb.Reason) bool {
			return r.GetCode() == "cds_expired" && strings.Contains(r.GetMessage(), edge)
		}) {
			e.t.Errorf("%s: violation %v; want the reason cds_expired naming %s", id, issue.GetReasons(), edge)
		}
		if at := issue.GetSince().AsTime(); at.Sub(since) > d || at.Before(since.Add(-time.Second)) {
			e.t.Errorf("%s flagged at %v, %v after %v; want within %v", id, at, at.Sub(since), since, d)
		} else {
			e.t.Logf("%s flagged %v after %v", id, at.Sub(since), since)
		}
	}
}

// An edge whose accreditation ends under live placements, with no write
// at all: the reconciler wakes for the expiry and flags its dependants
// within a second of it.
func TestEdgeExpiresUnderLivePlacements(t *testing.T) {
	e := start(t)
	e.catalogued("service", "service-weather-store.yaml")
	data, err := os.ReadFile(filepath.Join(e.Root, "examples", "catalogue", "edge-diode-internet-siprnet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(6 * time.Second).UTC().Truncate(time.Second)
	short := filepath.Join(t.TempDir(), "diode.yaml")
	doc := regexp.MustCompile(`(?m)^expires: .*$`).ReplaceAllString(string(data), "expires: "+expires.Format(time.RFC3339))
	if err := os.WriteFile(short, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := e.Change("edge", "propose", "-f", short, "--reason", "a short accreditation", "--as", "alice")
	e.Change("change", "approve", ch.GetId(), "--as", "bob")
	var ids []string
	for i := range 2 {
		ids = append(ids, e.Place("examples/flow-secret-reads-open-store.yaml", "--request-id", fmt.Sprintf("r%d", i)).GetId())
	}
	if time.Now().After(expires) {
		t.Fatalf("placed after the edge expired (%v): the machine is too slow for this test's 6s", expires)
	}
	for _, id := range ids {
		if is := e.get(id).GetIssues(); len(is) != 0 {
			t.Fatalf("%s has issues before the expiry: %v", id, is)
		}
	}
	time.Sleep(time.Until(expires))
	e.flaggedWithin(ids, expires, time.Second, "diode-internet-siprnet")
}

// A dependant moves where another region still satisfies all its flows
// (make-before-break): a reader on SIPRNet, with a diode to SIPRNet and a
// second diode into one region only; the first revoked, the reader moves
// into that region, and is left with no issue; the trail records why.
func TestDependantMovesWhereFlowsStillHold(t *testing.T) {
	e := start(t)
	e.catalogued("service", "service-weather-store.yaml")
	e.catalogued("edge", "edge-diode-internet-siprnet.yaml")
	data, err := os.ReadFile(filepath.Join(e.Root, "examples", "catalogue", "edge-diode-internet-siprnet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const into = "aws/us-isob-east-1"
	doc := strings.Replace(strings.Replace(string(data), "id: diode-internet-siprnet", "id: diode-internet-isob-east", 1), "to: siprnet", "to: "+into, 1)
	one := filepath.Join(t.TempDir(), "diode.yaml")
	if err := os.WriteFile(one, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := e.Change("edge", "propose", "-f", one, "--reason", "a diode into one region", "--as", "alice")
	e.Change("change", "approve", ch.GetId(), "--as", "bob")
	p := e.Place("examples/flow-secret-reads-open-store.yaml", "--request-id", "mover")
	from := p.GetAssignments()[0].GetRegion()
	if from == into {
		t.Fatalf("placed in %s already: the test needs it elsewhere", into)
	}
	rv := e.Change("edge", "revoke", "diode-internet-siprnet", "--reason", "suspended", "--as", "alice")
	e.Change("change", "approve", rv.GetId(), "--as", "bob")
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := e.get("mover")
		if len(got.GetAssignments()) == 1 && got.GetAssignments()[0].GetRegion() == into && got.GetMoves() > 0 {
			if len(got.GetIssues()) != 0 {
				t.Errorf("moved, yet issues %v", got.GetIssues())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not moved from %s to %s: %v", from, into, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The trail says why: its flow's edge was revoked.
	r := e.Run("audit", "list", "--workload", "weather-fusion", "-o", "json")
	if r.Code != 0 || !strings.Contains(r.Stdout, "cds_expired") || !strings.Contains(r.Stdout, into) {
		t.Errorf("audit: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
