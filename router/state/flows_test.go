package state_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/marking"
	"github.com/classroute/classroute/router/state"
)

// sipGuard is a valid guard edge not among the defaults.
func sipGuard() flow.Edge {
	return flow.Edge{
		ID: "sipr-guard-1", Kind: flow.Guard, From: "siprnet", To: "internet", Direction: flow.Write,
		Range:     flow.Range{Scheme: marking.US, LowMarking: "UNCLASSIFIED", HighMarking: "SECRET"},
		Authority: "NCDSMO", Expires: time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second),
	}
}

func edgeIDs(es []flow.Edge) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func serviceNames(ss []flow.Service) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

func TestFlowsSeeded(t *testing.T) {
	e := newEnv(t, nil)
	if got := e.store.Edges(); len(got) != 0 {
		t.Fatalf("an empty store has edges %v", edgeIDs(got))
	}
	e.seed([]router.Provider{provider("aws")}, nil, []router.Tenant{army()})
	edges, services := flow.Defaults()
	if got, want := edgeIDs(e.store.Edges()), edgeIDs(edges); !slices.Equal(got, want) {
		t.Fatalf("Edges: %v; want the defaults %v", got, want)
	}
	if got, want := serviceNames(e.store.Services()), serviceNames(services); !slices.Equal(got, want) {
		t.Fatalf("Services: %v; want the defaults %v", got, want)
	}
	ev, err := e.store.GetEdge("aoai-gov-to-commercial")
	if err != nil || !ev.Illustrative || ev.Change != "" || ev.Range.High.Scheme == "" {
		t.Fatalf("GetEdge: %+v, %v; want the seeded, illustrative edge with its range parsed", ev, err)
	}
	if sv := e.store.ServicesByName()["azure-openai-gov"]; sv == nil || sv.Region != "azure/usgovvirginia" {
		t.Fatalf("ServicesByName: %+v", sv)
	}
	if _, err := e.store.GetService("no-such"); !errors.Is(err, router.ErrNotFound) {
		t.Fatalf("GetService of none: %v; want ErrNotFound", err)
	}

	// Seeded once: a withdrawn default is not seeded again.
	alice, bob := as("alice"), as("bob")
	c, err := e.store.ProposeServiceChange(alice, &flow.Service{Name: "azure-openai-commercial"}, true, "retired")
	if err != nil || c.Kind != router.ChangeWithdraw {
		t.Fatalf("withdrawal: %+v, %v", c, err)
	}
	if _, err := e.store.ApproveChange(bob, c.ID); err != nil {
		t.Fatal(err)
	}
	s2 := e.open(e.other)
	if ok, err := s2.Seed(context.Background(), []router.Provider{provider("aws")}, nil, []router.Tenant{army()}); ok || err != nil {
		t.Fatalf("second Seed: %v, %v", ok, err)
	}
	for _, s := range []*state.Store{e.store, s2} {
		if got := serviceNames(s.Services()); slices.Contains(got, "azure-openai-commercial") {
			t.Fatalf("a later start seeded the withdrawn service again: %v", got)
		}
	}
}

func TestTwoPersonEdgeChanges(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "us-iso-east-1", big)}, []router.Tenant{army()})
	alice, bob := as("alice"), as("bob")
	ctx := context.Background()

	g := sipGuard()
	c, err := e.store.ProposeEdgeChange(alice, &g, false, "guard accredited")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != router.ChangeAdd || c.State != router.ChangePending || c.Edge == nil || c.BaseRevision != 0 {
		t.Fatalf("proposal %+v", c)
	}
	if slices.Contains(edgeIDs(e.store.Edges()), g.ID) {
		t.Fatal("the proposal changed the edges")
	}
	if _, err := e.store.ApproveChange(alice, c.ID); !errors.Is(err, router.ErrPermissionDenied) {
		t.Fatalf("self-approval: %v; want ErrPermissionDenied", err)
	}
	if _, err := e.store.ApproveChange(bob, c.ID); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.GetEdge(g.ID)
	if err != nil || got.Change != c.ID || got.ProposedBy != "spiffe://test/admin/alice" || got.ApprovedBy != "spiffe://test/admin/bob" {
		t.Fatalf("GetEdge: %+v, %v", got, err)
	}
	i := slices.IndexFunc(e.store.Edges(), func(x flow.Edge) bool { return x.ID == g.ID })
	if i < 0 || !e.store.Edges()[i].InForce(time.Now()) {
		t.Fatalf("Edges after approval: %v; want %s in force", edgeIDs(e.store.Edges()), g.ID)
	}

	// Revoked, by two people too.
	r := got.Edge
	r.Revoked = true
	c2, err := e.store.ProposeEdgeChange(bob, &r, false, "accreditation suspended")
	if err != nil || c2.Kind != router.ChangeRevoke || !slices.Equal(c2.Fields, []string{"edge.revoked"}) {
		t.Fatalf("revocation: %+v, %v", c2, err)
	}
	if _, err := e.store.ApproveChange(alice, c2.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.store.GetEdge(g.ID); !got.Revoked || got.InForce(time.Now()) {
		t.Fatalf("after revocation: %+v", got)
	}

	// Withdrawn: the record goes. A rejected proposal is never applied.
	c3, err := e.store.ProposeEdgeChange(alice, &flow.Edge{ID: g.ID}, true, "decommissioned")
	if err != nil || c3.Kind != router.ChangeWithdraw {
		t.Fatalf("withdrawal: %+v, %v", c3, err)
	}
	if _, err := e.store.RejectChange(bob, c3.ID, "not yet"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.GetEdge(g.ID); err != nil {
		t.Fatalf("a rejected withdrawal removed the edge: %v", err)
	}
	c4, err := e.store.ProposeEdgeChange(alice, &flow.Edge{ID: g.ID}, true, "decommissioned")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ApproveChange(bob, c4.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.GetEdge(g.ID); !errors.Is(err, router.ErrNotFound) {
		t.Fatalf("withdrawn edge: %v; want ErrNotFound", err)
	}

	// Services the same way.
	sv := flow.Service{Name: "sipr-api", Scheme: marking.US, Marking: "SECRET", Region: "aws/us-iso-east-1", NetworkDomain: "siprnet",
		OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelClearedSecret}
	c5, err := e.store.ProposeServiceChange(alice, &sv, false, "")
	if err != nil || c5.Kind != router.ChangeAdd {
		t.Fatalf("service: %+v, %v", c5, err)
	}
	if _, err := e.store.ApproveChange(alice, c5.ID); !errors.Is(err, router.ErrPermissionDenied) {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := e.store.ApproveChange(bob, c5.ID); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(serviceNames(e.store.Services()), "sipr-api") {
		t.Fatalf("Services: %v", serviceNames(e.store.Services()))
	}

	// Both people are in the audit trail, with what the edge says.
	entries, err := e.store.ListAudit(ctx, 200)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, a := range entries {
		if !slices.Contains([]string{c.ID, c2.ID, c3.ID, c4.ID, c5.ID}, a.RequestID) {
			continue
		}
		ops[a.Op]++
		if a.Op == audit.OpChangeApproved && a.RequestID == c2.ID &&
			!slices.ContainsFunc(a.Reasons, func(r string) bool {
				return strings.HasPrefix(r, "edge: sipr-guard-1 guard") && strings.Contains(r, "revoked")
			}) {
			t.Errorf("revocation's audit reasons %q name no edge", a.Reasons)
		}
	}
	if ops[audit.OpChangeProposed] != 5 || ops[audit.OpChangeApproved] != 4 || ops[audit.OpChangeRejected] != 1 {
		t.Fatalf("audit ops %v", ops)
	}
}

func TestEdgeProposalRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{army()})
	alice := as("alice")
	seeded, _ := e.store.GetEdge("aoai-gov-to-commercial")
	for _, tc := range []struct {
		name     string
		edge     func(*flow.Edge)
		withdraw bool
		want     string
	}{
		{name: "bad id", edge: func(e *flow.Edge) { e.ID = "Bad ID" }, want: "id: "},
		{name: "no kind", edge: func(e *flow.Edge) { e.Kind = 0 }, want: "kind: "},
		{name: "bad from", edge: func(e *flow.Edge) { e.From = "moon" }, want: "from: "},
		{name: "diode calls", edge: func(e *flow.Edge) { e.Kind, e.Direction = flow.Diode, flow.Call }, want: "direction: call"},
		{name: "range upside down", edge: func(e *flow.Edge) { e.Range.LowMarking, e.Range.HighMarking = "SECRET", "UNCLASSIFIED" }, want: "range: "},
		{name: "no authority", edge: func(e *flow.Edge) { e.Authority = "" }, want: "authority: "},
		{name: "no expiry", edge: func(e *flow.Edge) { e.Expires = time.Time{} }, want: "expires: "},
		{name: "changes nothing", edge: func(e *flow.Edge) { *e = seeded.Edge }, want: "changes nothing"},
		{name: "withdraws none", edge: func(e *flow.Edge) {}, withdraw: true, want: "no edge sipr-guard-1 to withdraw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := sipGuard()
			tc.edge(&g)
			_, err := e.store.ProposeEdgeChange(alice, &g, tc.withdraw, "")
			if msg := invalidField(err); !strings.Contains(msg, tc.want) {
				t.Fatalf("got %v; want INVALID_ARGUMENT naming %q", err, tc.want)
			}
		})
	}
	bad := flow.Service{Name: "x", Marking: "SECRET", Region: "nowhere", NetworkDomain: "siprnet", OperatorNationalities: []string{"USA"}}
	if _, err := e.store.ProposeServiceChange(alice, &bad, false, ""); !strings.Contains(invalidField(err), "region: ") {
		t.Fatalf("bad service: %v; want INVALID_ARGUMENT naming region", err)
	}
	// A service is proposed only in a catalogue region, on its network.
	for _, tc := range []struct{ label, region, domain, want string }{
		{"SECRET", "aws/s9", "siprnet", "service.region: aws/s9 is not a region of the catalogue"},
		{"SECRET", "aws/s1", "internet", "service.network_domain: aws/s1 is on siprnet, not internet"},
		{"TOP SECRET", "aws/s1", "siprnet", "service.label: aws/s1 does not hold TOP SECRET"},
	} {
		sv := flow.Service{Name: "x", Scheme: marking.US, Marking: tc.label, Region: tc.region, NetworkDomain: tc.domain, OperatorNationalities: []string{"USA"},
			Personnel: flow.PersonnelClearedSecret}
		if _, err := e.store.ProposeServiceChange(alice, &sv, false, ""); !strings.Contains(invalidField(err), tc.want) {
			t.Errorf("service in %s on %s: %v; want INVALID_ARGUMENT %q", tc.region, tc.domain, err, tc.want)
		}
	}
	if cs, err := e.store.ListChanges(context.Background(), "", 0); err != nil || len(cs) != 0 {
		t.Fatalf("refused proposals stored: %d, %v", len(cs), err)
	}
}

func TestEdgeProposalSuperseded(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, nil, []router.Tenant{army()})
	alice, bob := as("alice"), as("bob")
	cur, _ := e.store.GetEdge("aoai-gov-to-commercial")
	a, b := cur.Edge, cur.Edge
	a.Authority, b.Authority = "authority A", "authority B"
	ca, err := e.store.ProposeEdgeChange(alice, &a, false, "")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := e.store.ProposeEdgeChange(alice, &b, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ApproveChange(bob, ca.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ApproveChange(bob, cb.ID); !errors.Is(err, router.ErrChangeNotPending) || !strings.Contains(err.Error(), "superseded") {
		t.Fatalf("stale approval: %v; want superseded", err)
	}
	got, err := e.store.GetChange(context.Background(), cb.ID)
	if err != nil || got.State != router.ChangeRejected || !strings.HasPrefix(got.Note, "superseded") {
		t.Fatalf("superseded proposal: %+v, %v", got, err)
	}
	if cur, _ := e.store.GetEdge(a.ID); cur.Authority != "authority A" {
		t.Fatalf("edge authority %q; want authority A", cur.Authority)
	}
}

// An edge revoked, or withdrawn, or a service changed, re-checks every
// live placement at once; so does an edge's expiry, with no write.
func TestEdgeChangesRecheckPlacements(t *testing.T) {
	s := given(t).
		regions(secretRegion("aws", "s1", big), secretRegion("azure", "s2", big)).
		countingRechecks().
		placed("w1", "w2", "w3").
		reconciling(state.ReconcilerConfig{Name: "a", Interval: time.Hour, Audit: state.AuditChainConfig{Disabled: true}, AuditIndexDisabled: true}).
		leading()
	eventually(t, 10*time.Second, func() (bool, string) {
		return s.rechecked() >= 3, fmt.Sprintf("%d rechecked by the first sweep", s.rechecked())
	})
	alice, apply := as("alice"), approving(t, s.store)
	s.thenRechecksOnly(0, "a proposal", func() {
		g := sipGuard()
		if _, err := s.store.ProposeEdgeChange(alice, &g, false, ""); err != nil {
			t.Fatal(err)
		}
	})
	cur, err := s.store.GetEdge("aoai-gov-to-commercial")
	if err != nil {
		t.Fatal(err)
	}
	s.thenRechecksOnly(3, "an edge revoked", func() {
		r := cur.Edge
		r.Revoked = true
		apply(s.store.ProposeEdgeChange(alice, &r, false, "suspended"))
	})
	s.thenRechecksOnly(3, "a service withdrawn", func() {
		apply(s.store.ProposeServiceChange(alice, &flow.Service{Name: "azure-openai-gov"}, true, ""))
	})
	expires := time.Now().Add(3 * time.Second).UTC()
	s.thenRechecksOnly(3, "an edge added", func() {
		g := sipGuard()
		g.Expires = expires
		apply(s.store.ProposeEdgeChange(alice, &g, false, ""))
	})
	s.thenRechecksOnly(3, "an edge that expires with no write", func() {
		time.Sleep(time.Until(expires) + 500*time.Millisecond)
	})
}

// A record in etcd the API would refuse is not cached.
func TestInvalidEdgeRecordNotCached(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, nil, []router.Tenant{army()})
	rev := e.putJSON("edges/bad", map[string]any{"id": "bad", "kind": "diode"})
	waitFor(t, e.store, rev)
	if _, err := e.store.GetEdge("bad"); !errors.Is(err, router.ErrNotFound) {
		t.Fatalf("invalid record cached: %v", err)
	}
}

// A placement's dependants are re-checked the moment it changes, with
// no sweep: released, its reader is flagged a violation (no_target) at
// once, and no other placement is looked at.
func TestDependantsRecheckedWhenTargetChanges(t *testing.T) {
	reader := secretWorkload(t, "reader")
	reader.Dependencies = []flow.Dependency{{Target: flow.Placement("us-army", "store"), Direction: flow.Read}}
	s := given(t).
		regions(secretRegion("aws", "s1", big), secretRegion("azure", "s2", big)).
		countingRechecks().
		placed("store", "w1", "w2").
		placedAs("reader", reader).
		reconciling(state.ReconcilerConfig{Name: "a", Interval: time.Hour, Audit: state.AuditChainConfig{Disabled: true}, AuditIndexDisabled: true}).
		leading()
	eventually(t, 10*time.Second, func() (bool, string) {
		return s.rechecked() >= 4, fmt.Sprintf("%d rechecked by the first sweep", s.rechecked())
	})
	before := map[string]int{}
	for _, name := range []string{"reader", "w1", "w2"} {
		before[name] = s.counter.of(name)
	}
	if _, err := s.store.Release(context.Background(), "us-army", "store"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() (bool, string) {
		p, err := s.store.GetPlacement("us-army", "reader")
		if err != nil {
			return false, err.Error()
		}
		for _, is := range p.Issues {
			if is.Violation && slices.ContainsFunc(is.Reasons, func(r router.Reason) bool { return r.Code == router.ReasonNoTarget }) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("reader's issues %+v; want a violation for no_target", p.Issues)
	})
	settled(t, &s.counter.rechecks)
	if s.counter.of("reader") == before["reader"] || s.counter.of("w1") != before["w1"] || s.counter.of("w2") != before["w2"] {
		t.Errorf("rechecked: reader %d, w1 %d, w2 %d times (before: %v); want the reader only",
			s.counter.of("reader"), s.counter.of("w1"), s.counter.of("w2"), before)
	}
}

// A region that changes re-checks, at once, the dependants of what runs
// there (placements holding it, and services in it), wherever those
// dependants run: a writer allowed the USA only, writing to a store whose
// region moves to GBR, is flagged (residency) with no sweep. Without it
// the writer waited for the safety-net sweep (10 minutes by default).
func TestDependantsRecheckedWhenTargetRegionChanges(t *testing.T) {
	store := secretWorkload(t, "store")
	store.AllowedCountries = []string{"USA", "GBR"}
	writer := secretWorkload(t, "writer")
	writer.Dependencies = []flow.Dependency{{Target: flow.Placement("us-army", "store"), Direction: flow.Write}}
	// The store goes to s1, and fills it: the writer goes to s2.
	s1, s2 := secretRegion("aws", "s1", unit), secretRegion("azure", "s2", big)
	s1.Cost, s2.Cost = 0.1, 1
	s := given(t).regions(s1, s2).countingRechecks().placedAs("store", store)
	if p, err := s.store.GetPlacement("us-army", "store"); err != nil || p.Regions[0] != "aws/s1" {
		t.Fatalf("store in %v, %v; want aws/s1", p, err)
	}
	if p, err := s.placedAs("writer", writer).store.GetPlacement("us-army", "writer"); err != nil || p.Regions[0] != "azure/s2" {
		t.Fatalf("writer in %v, %v; want azure/s2", p, err)
	}
	s.
		reconciling(state.ReconcilerConfig{Name: "a", Interval: time.Hour, SweepEvery: time.Hour, Audit: state.AuditChainConfig{Disabled: true}, AuditIndexDisabled: true}).
		leading()
	eventually(t, 10*time.Second, func() (bool, string) {
		return s.counter.of("writer") >= 1 && s.counter.of("store") >= 1, "the term's first sweep"
	})
	settled(t, &s.counter.rechecks)
	before := s.counter.of("writer")
	s.whenRegion("aws/s1", func(r *router.Region) { r.Country = "GBR" }) // the store may stay
	eventually(t, 5*time.Second, func() (bool, string) {
		p, err := s.store.GetPlacement("us-army", "writer")
		if err != nil {
			return false, err.Error()
		}
		for _, is := range p.Issues {
			if is.Violation && slices.ContainsFunc(is.Reasons, func(r router.Reason) bool { return r.Code == router.ReasonResidency }) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("writer's issues %+v (rechecked %d times, %d before); want a violation for residency", p.Issues, s.counter.of("writer"), before)
	})
	if p, err := s.store.GetPlacement("us-army", "store"); err != nil || p.Regions[0] != "aws/s1" || len(p.Issues) != 0 {
		t.Errorf("store %v, %v; want it left in aws/s1 (the region change is the writer's only)", p, err)
	}
}

// approving returns what has a second administrator, bob, approve a
// proposal as it is made.
func approving(tb testing.TB, s *state.Store) func(*router.Change, error) {
	return func(c *router.Change, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := s.ApproveChange(as("bob"), c.ID); err != nil {
			tb.Fatal(err)
		}
	}
}

// A target's retiring copy keeps running until its replacement is
// confirmed, so flows reach it too: a store moving out of a region that
// became British keeps a copy there while its new region's agent has not
// confirmed, and a writer allowed the USA only is refused meanwhile.
func TestDependencyReachesRetiringCopies(t *testing.T) {
	store := secretWorkload(t, "store")
	store.AllowedCountries = []string{"USA", "GBR"}
	s1, s2 := secretRegion("aws", "s1", big), secretRegion("azure", "s2", big)
	s1.Cost, s2.Cost = 0.1, 1
	s := given(t).regions(s1, s2).placedAs("store", store)
	if p, err := s.store.GetPlacement("us-army", "store"); err != nil || p.Regions[0] != "aws/s1" {
		t.Fatalf("store in %v, %v; want aws/s1", p, err)
	}
	// s2's agent confirms nothing: a copy moved there stays unconfirmed.
	s.agentIn("azure/s2").
		reconciling(state.ReconcilerConfig{Name: "a", Interval: time.Hour, Audit: state.AuditChainConfig{Disabled: true}, AuditIndexDisabled: true}).
		leading()
	s.whenRegion("aws/s1", func(r *router.Region) { r.Country, r.Status = "GBR", router.StatusDraining })
	eventually(t, 10*time.Second, func() (bool, string) {
		p, err := s.store.GetPlacement("us-army", "store")
		if err != nil {
			return false, err.Error()
		}
		return len(p.Regions) == 1 && p.Regions[0] == "azure/s2" && len(p.Retiring) == 1 && p.Retiring[0].Region == "aws/s1",
			fmt.Sprintf("store in %v retiring %v; want moved to azure/s2, its copy in aws/s1 retiring", p.Regions, p.Retiring)
	})
	writer := secretWorkload(t, "writer")
	writer.Dependencies = []flow.Dependency{{Target: flow.Placement("us-army", "store"), Direction: flow.Write}}
	p, err := s.store.Place(context.Background(), "writer", writer)
	if err == nil {
		t.Fatalf("writer placed in %v while its writes would reach the store's copy in GBR", p.Regions)
	}
	var refusal *router.RefusalError
	if !errors.As(err, &refusal) || !slices.ContainsFunc(refusal.Regions, func(v router.Explained) bool {
		return slices.ContainsFunc(v.Reasons, func(r router.Reason) bool {
			return r.Code == router.ReasonResidency && strings.Contains(r.Message, "aws/s1 in GBR")
		})
	}) {
		t.Errorf("refusal %v; want residency for the writes reaching aws/s1 in GBR", err)
	}
}

// A placement with dependencies is re-checked once it is committed: what
// its flows rest on may have changed between its decision and its
// commit, and a change the reconciler handled before the commit did not
// see it. One without dependencies is not looked at.
func TestNewDependantRechecked(t *testing.T) {
	s := given(t).
		regions(secretRegion("aws", "s1", big), secretRegion("azure", "s2", big)).
		countingRechecks().
		placed("store").
		reconciling(state.ReconcilerConfig{Name: "a", Interval: time.Hour, SweepEvery: time.Hour, Audit: state.AuditChainConfig{Disabled: true}, AuditIndexDisabled: true}).
		leading()
	eventually(t, 10*time.Second, func() (bool, string) { return s.counter.of("store") >= 1, "the term's first sweep" })
	settled(t, &s.counter.rechecks)
	writer := secretWorkload(t, "writer")
	writer.Dependencies = []flow.Dependency{{Target: flow.Placement("us-army", "store"), Direction: flow.Write}}
	s.placedAs("writer", writer).placed("plain")
	eventually(t, 5*time.Second, func() (bool, string) {
		return s.counter.of("writer") >= 1, fmt.Sprintf("writer rechecked %d times", s.counter.of("writer"))
	})
	settled(t, &s.counter.rechecks)
	if n := s.counter.of("plain"); n != 0 {
		t.Errorf("a placement without dependencies rechecked %d times on its commit", n)
	}
}
