package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
	"github.com/classroute/classroute/router/state"
)

var gbrUS = equiv.Key{From: marking.GBR, To: marking.US}

// defaultEntry returns the default entry of pair k.
func defaultEntry(tb testing.TB, k equiv.Key) equiv.Entry {
	tb.Helper()
	for _, e := range equiv.Default() {
		if e.Key() == k {
			return e
		}
	}
	tb.Fatalf("no default entry %s", k)
	return equiv.Entry{}
}

// mapUKSecret maps a UK SECRET label into US through the store's table.
func mapUKSecret(s interface{ Equivalence() equiv.Table }) equiv.Result {
	return s.Equivalence().Map(marking.Parser{}, marking.MustParse(marking.GBR, "UK SECRET"), marking.US, time.Now())
}

func TestEquivalenceSeeded(t *testing.T) {
	e := newEnv(t, nil)
	if got := e.store.Equivalence().Entries(); len(got) != 0 {
		t.Fatalf("an empty store has %d entries", len(got))
	}
	e.seed([]router.Provider{provider("aws")}, nil, []router.Tenant{army()})
	want := equiv.Default()
	if got := e.store.ListEquivalences(); len(got) != len(want) {
		t.Fatalf("ListEquivalences: %d entries; want the %d defaults", len(got), len(want))
	}
	if got := e.store.Equivalence().Entries(); len(got) != len(want) {
		t.Fatalf("Equivalence: %d entries; want %d", len(got), len(want))
	}
	if r := mapUKSecret(e.store); r.Kind != equiv.Mapped || r.Level.Name != "SECRET" {
		t.Fatalf("UK SECRET into US: %+v; want mapped to SECRET", r)
	}
	cur, hist, err := e.store.GetEquivalence(context.Background(), gbrUS)
	if err != nil || cur.Version != 1 || cur.Change != "" || len(hist) != 1 || hist[0].Version != 1 {
		t.Fatalf("GetEquivalence: %+v, %d versions, %v; want v1, one version", cur, len(hist), err)
	}
	if _, _, err := e.store.GetEquivalence(context.Background(), equiv.Key{From: marking.US, To: marking.GBR}); !errors.Is(err, router.ErrNotFound) {
		t.Fatalf("US→GBR: %v; want ErrNotFound (mappings are never inverted)", err)
	}
}

// invalidField returns the error's violations as "field: description".
func invalidField(err error) string {
	var inv *router.InvalidError
	if !errors.As(err, &inv) {
		return ""
	}
	return inv.Error()
}

func TestTwoPersonEquivalenceChanges(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, nil, []router.Tenant{army()})
	alice, bob := as("alice"), as("bob")
	ctx := context.Background()

	// Lowering: UK SECRET has no US equivalent any more.
	low := defaultEntry(t, gbrUS)
	low.Version = 0 // the next
	low.Levels = slices.DeleteFunc(slices.Clone(low.Levels), func(m equiv.Mapping) bool { return m.From == "SECRET" })
	low.Levels = append(low.Levels, equiv.Mapping{From: "SECRET", None: true, Note: "suspended"})
	c, err := e.store.ProposeEquivalenceChange(alice, &low, "agreement under review")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != router.ChangeLower || c.State != router.ChangePending || c.Equivalence.Version != 2 ||
		!slices.Equal(c.Fields, []string{"equivalence.levels"}) || c.BaseRevision == 0 {
		t.Fatalf("proposal %+v", c)
	}
	if r := mapUKSecret(e.store); r.Kind != equiv.Mapped {
		t.Fatal("the proposal changed the table")
	}
	if _, err := e.store.ApproveChange(alice, c.ID); !errors.Is(err, router.ErrPermissionDenied) {
		t.Fatalf("self-approval: %v; want ErrPermissionDenied", err)
	}
	done, err := e.store.ApproveChange(bob, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != router.ChangeApplied || done.DecidedBy != "spiffe://test/admin/bob" {
		t.Fatalf("approved %+v", done)
	}
	if r := mapUKSecret(e.store); r.Kind != equiv.NoEquivalent || r.Entry.Version != 2 {
		t.Fatalf("after approval UK SECRET into US: %+v; want no equivalent under v2", r)
	}
	cur, hist, err := e.store.GetEquivalence(ctx, gbrUS)
	if err != nil || cur.Version != 2 || cur.Change != c.ID || cur.ProposedBy != "spiffe://test/admin/alice" ||
		cur.ApprovedBy != "spiffe://test/admin/bob" || len(hist) != 2 || hist[1].Version != 2 {
		t.Fatalf("GetEquivalence: %+v, %d versions, %v", cur, len(hist), err)
	}

	// Withdrawn, by two people too.
	wd := cur.Entry
	wd.Version, wd.Withdrawn = 0, true
	c2, err := e.store.ProposeEquivalenceChange(bob, &wd, "agreement lapsed")
	if err != nil || c2.Kind != router.ChangeWithdraw {
		t.Fatalf("withdrawal: %+v, %v", c2, err)
	}
	if _, err := e.store.ApproveChange(alice, c2.ID); err != nil {
		t.Fatal(err)
	}
	if r := mapUKSecret(e.store); r.Kind != equiv.NotInForce || !r.Entry.Withdrawn || r.Entry.Version != 3 {
		t.Fatalf("after withdrawal: %+v; want not in force, v3", r)
	}

	// A new pair is an addition; a rejected one is never applied.
	add := equiv.Entry{From: marking.KEN, To: marking.GBR, Agreement: "test agreement", Levels: []equiv.Mapping{{From: "SECRET", None: true}}}
	c3, err := e.store.ProposeEquivalenceChange(alice, &add, "")
	if err != nil || c3.Kind != router.ChangeAdd || c3.BaseRevision != 0 || c3.Equivalence.Version != 1 {
		t.Fatalf("add: %+v, %v", c3, err)
	}
	if _, err := e.store.RejectChange(bob, c3.ID, "no such agreement"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.GetEquivalence(ctx, add.Key()); !errors.Is(err, router.ErrNotFound) {
		t.Fatalf("rejected entry exists: %v", err)
	}

	// Both people are in the audit trail, with what the entry says.
	entries, err := e.store.ListAudit(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, a := range entries {
		if a.RequestID != c.ID && a.RequestID != c2.ID && a.RequestID != c3.ID {
			continue
		}
		ops[a.Op]++
		if a.Op == audit.OpChangeApproved && a.RequestID == c.ID &&
			!slices.ContainsFunc(a.Reasons, func(r string) bool { return strings.HasPrefix(r, "equivalence: GBR→US v2") }) {
			t.Errorf("approval's audit reasons %q name no entry", a.Reasons)
		}
	}
	if ops[audit.OpChangeProposed] != 3 || ops[audit.OpChangeApproved] != 2 || ops[audit.OpChangeRejected] != 1 {
		t.Fatalf("audit ops %v", ops)
	}
}

func TestEquivalenceProposalRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, nil, []router.Tenant{army()})
	alice := as("alice")
	base := defaultEntry(t, gbrUS)
	base.Version = 0
	for _, tc := range []struct {
		name   string
		mutate func(*equiv.Entry)
		want   string // in the message
	}{
		{"unknown level", func(x *equiv.Entry) { x.Levels = []equiv.Mapping{{From: "SECRET", To: "VERY SECRET"}} }, `levels[0].to: "VERY SECRET" is not a level of US`},
		{"no agreement", func(x *equiv.Entry) { x.Agreement = " " }, "agreement: required"},
		{"unknown scheme", func(x *equiv.Entry) { x.To = "XX" }, `to: unknown scheme "XX"`},
		{"stale version", func(x *equiv.Entry) { x.Version = 1 }, "equivalence.version: 1; the next version of GBR→US is 2"},
		{"no change", func(*equiv.Entry) {}, "equivalence: changes nothing of GBR→US v1"},
		{"withdraw what is not there", func(x *equiv.Entry) {
			x.From, x.To, x.Withdrawn = marking.KEN, marking.AUS, true
			x.Levels = []equiv.Mapping{{From: "SECRET", None: true}}
		},
			"equivalence.withdrawn: there is no entry KEN→AUS to withdraw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := base
			x.Levels = slices.Clone(base.Levels)
			tc.mutate(&x)
			c, err := e.store.ProposeEquivalenceChange(alice, &x, "")
			if msg := invalidField(err); !strings.Contains(msg, tc.want) {
				t.Fatalf("got %+v, %v; want an invalid argument containing %q", c, err, tc.want)
			}
		})
	}
	if cs, err := e.store.ListChanges(context.Background(), "", 0); err != nil || len(cs) != 0 {
		t.Fatalf("refused proposals stored: %d, %v", len(cs), err)
	}
	if cur, _, _ := e.store.GetEquivalence(context.Background(), gbrUS); cur.Version != 1 {
		t.Fatalf("entry at v%d after refused proposals", cur.Version)
	}
}

func TestEquivalenceProposalSuperseded(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, nil, []router.Tenant{army()})
	alice, bob := as("alice"), as("bob")
	a := defaultEntry(t, gbrUS)
	a.Version, a.Agreement = 0, "agreement A"
	b := a
	b.Agreement = "agreement B"
	ca, err := e.store.ProposeEquivalenceChange(alice, &a, "")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := e.store.ProposeEquivalenceChange(alice, &b, "")
	if err != nil {
		t.Fatal(err)
	}
	if ca.Kind != router.ChangeOther {
		t.Fatalf("an agreement renamed is %s; want change", ca.Kind)
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
	if cur, _, _ := e.store.GetEquivalence(context.Background(), gbrUS); cur.Agreement != "agreement A" || cur.Version != 2 {
		t.Fatalf("entry %q v%d; want agreement A v2", cur.Agreement, cur.Version)
	}
}

// A later start seeds nothing: operators' changes stay. A store whose
// catalogue was seeded before equivalences were stored gets the
// defaults once.
func TestEquivalenceSeedKeepsChanges(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, nil, []router.Tenant{army()})
	alice, bob := as("alice"), as("bob")
	ctx := context.Background()
	wd := defaultEntry(t, gbrUS)
	wd.Version, wd.Withdrawn = 0, true
	c, err := e.store.ProposeEquivalenceChange(alice, &wd, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ApproveChange(bob, c.ID); err != nil {
		t.Fatal(err)
	}

	// A second daemon starts and seeds.
	s2 := e.open(e.other)
	if ok, err := s2.Seed(ctx, []router.Provider{provider("aws")}, nil, []router.Tenant{army()}); ok || err != nil {
		t.Fatalf("second Seed: %v, %v; want false, nil", ok, err)
	}
	for _, s := range []*state.Store{e.store, s2} {
		if r := mapUKSecret(s); r.Kind != equiv.NotInForce || r.Entry.Version != 2 {
			t.Fatalf("after a restart: %+v; want the withdrawn v2", r)
		}
	}

	// A store seeded before equivalences were stored.
	if _, err := e.other.Delete(ctx, e.prefix+"equivalences/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.other.Delete(ctx, e.prefix+"seeded-equivalences"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s2.Seed(ctx, []router.Provider{provider("aws")}, nil, []router.Tenant{army()}); ok || err != nil {
		t.Fatalf("Seed of an older store: %v, %v; want false (the catalogue was seeded), nil", ok, err)
	}
	waitFor(t, e.store, s2.Revision())
	if got := len(e.store.ListEquivalences()); got != len(equiv.Default()) {
		t.Fatalf("an older store got %d equivalence entries; want the %d defaults", got, len(equiv.Default()))
	}
}

// A UK SECRET workload held on a US SECRET region through the GBR→US
// entry is flagged and moved to a UK-accredited region once the entry is
// withdrawn by two administrators: a change of an entry re-checks every
// live placement, as a change of a region's accreditation does.
func TestWithdrawnEquivalenceReroutes(t *testing.T) {
	// Given a UK SECRET workload placed in aws/s1, the cheaper, through GBR→US,
	s := givenUKSecretInUS(t)

	// when alice proposes withdrawing GBR→US and bob approves,
	wd := defaultEntry(t, gbrUS)
	wd.Version, wd.Withdrawn = 0, true
	c, err := s.store.ProposeEquivalenceChange(as("alice"), &wd, "agreement suspended")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if p := s.placements()["w"].P; p.Moves != 0 || p.State != router.PlacementPlaced {
		t.Fatalf("moved on a proposal: %+v", p)
	}
	if _, err := s.store.ApproveChange(as("bob"), c.ID); err != nil {
		t.Fatal(err)
	}

	// then the placement is flagged and moves to the UK region.
	s.thenPlacement("w", 10*time.Second, placementIn("ukc/london"))
	s.thenAudit("the withdrawal flagged as a violation, then the move", map[string]int{audit.OpViolation: 1, audit.OpReroute: 1})
	s.thenUsageExact("aws/s1", "ukc/london")
}

// ukSecretCatalogue is the UK MOD tenant, aws/s1 (a US SECRET region
// serving it, the cheaper), ukc/london (accredited UK SECRET) and a UK
// SECRET UK/US EYES ONLY workload that either may hold, aws/s1 through
// the GBR→US entry. (UK/US EYES ONLY: a UK SECRET naming no releasability
// is UK nationals' only, and aws/s1 is operated by US nationals.)
func ukSecretCatalogue(t *testing.T) (router.Tenant, router.Region, router.Region, *router.Workload) {
	t.Helper()
	expires := time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second)
	us := cheaper(secretRegion("aws", "s1", big))
	us.Customers = []string{"USA", "GBR"}
	uk := secretRegion("ukc", "london", big)
	uk.Country, uk.OperatorJurisdiction, uk.OperatorNationalities, uk.Customers = "GBR", "GBR", []string{"GBR"}, []string{"GBR"}
	uk.Accreditation = router.Accreditation{MaxLevel: label.Unclassified, Expires: expires}
	uk.Accreditations = []router.SchemeAccreditation{{Scheme: marking.GBR, MaxLevel: "SECRET", Authority: "UK MOD", Expires: expires}}
	mod := router.Tenant{ID: "uk-mod", Name: "UK MOD", Nation: "GBR", Sector: "defense", Ceiling: "SECRET//REL TO USA, GBR",
		Ceilings: []router.SchemeCeiling{{Scheme: marking.GBR, Level: "SECRET"}}}
	w := &router.Workload{Name: "uk-secret", Tenant: "uk-mod", Banner: "SECRET UK/US EYES ONLY", Scheme: marking.GBR,
		AllowedCountries: []string{"USA", "GBR"}, Resources: unit, Replicas: 1}
	if err := router.ValidateWorkload(w, marking.GBR); err != nil {
		t.Fatal(err)
	}
	return mod, us, uk, w
}

// givenUKSecretInUS is a scenario of a UK SECRET workload (uk-mod's,
// "w") placed in aws/s1, a US SECRET region, through the GBR→US entry:
// the cheaper of it and ukc/london, a region accredited UK SECRET; a
// reconciler runs.
func givenUKSecretInUS(t *testing.T) *scenario {
	t.Helper()
	mod, us, uk, w := ukSecretCatalogue(t)
	s := given(t).tenants(mod).regions(us, uk).
		placedAs("w", w).
		reconciling(state.ReconcilerConfig{Name: "a"})
	if p := s.placements()["w"].P; !slices.Equal(p.Regions, []string{"aws/s1"}) {
		t.Fatalf("placed in %v; want aws/s1, through GBR→US", p.Regions)
	}
	return s
}

// An entry that ends (valid_until) re-routes what rested on it when it
// ends, with no write.
func TestExpiredEquivalenceReroutes(t *testing.T) {
	// Given a UK SECRET workload placed in aws/s1 through GBR→US,
	s := givenUKSecretInUS(t)

	// when GBR→US v2, valid for 1.5s more, is approved,
	ending := defaultEntry(t, gbrUS)
	ending.Version, ending.ValidUntil = 0, time.Now().Add(1500*time.Millisecond).UTC()
	c, err := s.store.ProposeEquivalenceChange(as("alice"), &ending, "annex ends")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != router.ChangeLower {
		t.Errorf("an entry given an end is %s; want lower", c.Kind)
	}
	if _, err := s.store.ApproveChange(as("bob"), c.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if p := s.placements()["w"].P; p.Moves != 0 {
		t.Fatalf("moved while the entry was in force: %+v", p)
	}

	// then, once it ends, the placement is flagged and moves.
	s.thenPlacement("w", 10*time.Second, placementIn("ukc/london"))
	s.thenAudit("the end flagged as a violation, then the move", map[string]int{audit.OpViolation: 1, audit.OpReroute: 1})
}

// An entry withdrawn between a decision that read it and that decision's
// commit fails the commit: the Place decides again, on the withdrawn
// entry, and lands where the label is held in its own scheme. The commit
// compares the records of every pair from the label's scheme.
func TestEquivalenceWithdrawnBeforeCommit(t *testing.T) {
	var once sync.Once
	var s *scenario
	withdrawn := make(chan error, 1)
	hook := func(id string) {
		if id != "race" {
			return
		}
		once.Do(func() {
			// A second administrator's withdrawal lands after the
			// decision, before its commit.
			wd := defaultEntry(t, gbrUS)
			wd.Version, wd.Withdrawn = 0, true
			c, err := s.store.ProposeEquivalenceChange(as("alice"), &wd, "agreement suspended")
			if err == nil {
				_, err = s.store.ApproveChange(as("bob"), c.ID)
			}
			withdrawn <- err
		})
	}
	s = &scenario{env: newEnv(t, nil, state.WithBeforeCommit(hook)), t: t, catalog: make(map[string]router.Region)}
	mod, us, uk, w := ukSecretCatalogue(t)
	s.tenants(mod).regions(us, uk)
	p, err := s.store.Place(context.Background(), "race", w)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-withdrawn; err != nil {
		t.Fatalf("the withdrawal: %v", err)
	}
	if !slices.Equal(p.Regions, []string{"ukc/london"}) {
		t.Fatalf("placed in %v after GBR→US was withdrawn before the commit; want ukc/london", p.Regions)
	}
}

// A service removed between a decision that read it and that decision's
// commit fails the commit: the Place decides again and, with nothing to
// call, is refused (no_target). The commit compares the service's record.
// (The record is deleted straight from etcd, as another daemon's
// approved withdrawal would.)
func TestServiceWithdrawnBeforeCommit(t *testing.T) {
	var once sync.Once
	var s *scenario
	withdrawn := make(chan error, 1)
	hook := func(id string) {
		if id != "llm" {
			return
		}
		once.Do(func() {
			_, err := s.other.Delete(context.Background(), s.prefix+"services/azure-openai-commercial")
			withdrawn <- err
		})
	}
	s = &scenario{env: newEnv(t, nil, state.WithBeforeCommit(hook)), t: t, catalog: make(map[string]router.Region)}
	c1 := commercialRegion("aws", "c1")
	c1.Accreditation.ImpactLevel = 2 // the Army's unclassified data needs IL2
	// Where the service runs must be in the catalogue too: the prompts
	// rest there (residency).
	eastus := commercialRegion("azure", "eastus")
	eastus.Accreditation.ImpactLevel = 2
	s.regions(c1, eastus)
	if _, err := s.store.GetService("azure-openai-commercial"); err != nil {
		// Not seeded here: add the default by two administrators.
		_, svcs := flow.Defaults()
		i := slices.IndexFunc(svcs, func(x flow.Service) bool { return x.Name == "azure-openai-commercial" })
		c, err := s.store.ProposeServiceChange(as("alice"), &svcs[i], false, "the seed's endpoint")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.store.ApproveChange(as("bob"), c.ID); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, err := s.store.GetService("azure-openai-commercial"); err != nil; _, err = s.store.GetService("azure-openai-commercial") {
			if time.Now().After(deadline) {
				t.Fatalf("service not cached: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	w := &router.Workload{Name: "chat", Tenant: "us-army", Banner: "UNCLASSIFIED", AllowedCountries: []string{"*"}, Resources: unit, Replicas: 1,
		Dependencies: []flow.Dependency{{Target: flow.ServiceNamed("azure-openai-commercial"), Direction: flow.Call}}}
	if err := router.ValidateWorkload(w, marking.US); err != nil {
		t.Fatal(err)
	}
	p, err := s.store.Place(context.Background(), "llm", w)
	select {
	case werr := <-withdrawn:
		if werr != nil {
			t.Fatalf("the withdrawal: %v", werr)
		}
	default:
		t.Fatalf("no commit was attempted (Place: %v, %v): the test proves nothing", p, err)
	}
	if err == nil {
		t.Fatalf("placed in %v after the service it calls was withdrawn before the commit; want refused", p.Regions)
	}
	if !strings.Contains(err.Error(), "dependency") {
		t.Errorf("refusal %v; want it to name the dependency rule", err)
	}
}

// An edge a decision's flows go through, revoked between the decision
// and its commit, fails the commit: decided again, the Place is refused
// (cds_expired). An edge the decision did not use, changed meanwhile,
// does not hold the commit up (router.FlowEdges): without the first
// guard the SECRET reader is placed over a revoked diode.
func TestEdgeRevokedBeforeCommit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		touch   string // the edge the hook revokes
		refused bool
	}{
		{"the diode it reads through", "diode-inet-sipr", true},
		{"an edge it does not use", "guard-sipr-inet", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var once sync.Once
			var s *scenario
			touched := make(chan error, 1)
			hook := func(id string) {
				if id != "reader" {
					return
				}
				once.Do(func() {
					cur, err := s.store.GetEdge(tc.touch)
					if err != nil {
						touched <- err
						return
					}
					v := *cur
					v.Revoked = true
					data, err := json.Marshal(v)
					if err == nil {
						_, err = s.other.Put(context.Background(), s.prefix+"edges/"+tc.touch, string(data))
					}
					touched <- err
				})
			}
			s = &scenario{env: newEnv(t, nil, state.WithBeforeCommit(hook)), t: t, catalog: make(map[string]router.Region)}
			s.regions(secretRegion("aws", "s1", big), commercialRegion("aws", "c1"))
			alice, apply := as("alice"), approving(t, s.store)
			apply(s.store.ProposeServiceChange(alice, &flow.Service{Name: "feed", Scheme: marking.US, Marking: "UNCLASSIFIED", Region: "aws/c1", NetworkDomain: "internet",
				OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelNone}, false, ""))
			diode := flow.Edge{ID: "diode-inet-sipr", Kind: flow.Diode, From: "internet", To: "siprnet", Direction: flow.Write,
				Range:     flow.Range{Scheme: marking.US, LowMarking: "UNCLASSIFIED", HighMarking: "UNCLASSIFIED"},
				Authority: "DISA", Expires: time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second)}
			apply(s.store.ProposeEdgeChange(alice, &diode, false, ""))
			guard := sipGuard()
			guard.ID = "guard-sipr-inet"
			apply(s.store.ProposeEdgeChange(alice, &guard, false, ""))
			eventually(t, 5*time.Second, func() (bool, string) {
				_, e1 := s.store.GetEdge("diode-inet-sipr")
				_, e2 := s.store.GetEdge("guard-sipr-inet")
				_, e3 := s.store.GetService("feed")
				return e1 == nil && e2 == nil && e3 == nil, "edges and service not cached"
			})
			w := secretWorkload(t, "reader")
			w.Dependencies = []flow.Dependency{{Target: flow.ServiceNamed("feed"), Direction: flow.Read}}
			p, err := s.store.Place(context.Background(), "reader", w)
			select {
			case terr := <-touched:
				if terr != nil {
					t.Fatalf("the revocation: %v", terr)
				}
			default:
				t.Fatalf("no commit was attempted (Place: %v, %v): the test proves nothing", p, err)
			}
			switch {
			case tc.refused && err == nil:
				t.Fatalf("placed in %v after the edge it reads through was revoked before the commit; want refused", p.Regions)
			case tc.refused && !strings.Contains(err.Error(), "dependency"):
				t.Errorf("refusal %v; want it to name the dependency rule", err)
			case !tc.refused && err != nil:
				t.Fatalf("refused (%v) for an edge the decision did not use", err)
			}
		})
	}
}

// The region a dependency's target runs in, changed between the decision
// and its commit (now British, where the writer's data may not go),
// fails the commit: decided again, the writer is refused (residency).
// Without the guard on the target's region record it was committed, and
// only the re-check after the commit flagged it.
func TestTargetRegionChangedBeforeCommit(t *testing.T) {
	var once sync.Once
	var s *scenario
	changed := make(chan error, 1)
	hook := func(id string) {
		if id != "writer" {
			return
		}
		once.Do(func() {
			ctx := context.Background()
			key := s.prefix + "regions/aws/s1"
			resp, err := s.other.Get(ctx, key)
			if err == nil && len(resp.Kvs) != 1 {
				err = errors.New("no region record")
			}
			var r map[string]any
			if err == nil {
				err = json.Unmarshal(resp.Kvs[0].Value, &r)
			}
			if err == nil {
				r["country"] = "GBR"
				var data []byte
				if data, err = json.Marshal(r); err == nil {
					_, err = s.other.Put(ctx, key, string(data))
				}
			}
			changed <- err
		})
	}
	s = &scenario{env: newEnv(t, nil, state.WithBeforeCommit(hook)), t: t, catalog: make(map[string]router.Region)}
	// The store fills s1; the writer goes to s2.
	s1, s2 := secretRegion("aws", "s1", unit), secretRegion("azure", "s2", big)
	s1.Cost, s2.Cost = 0.1, 1
	s.regions(s1, s2)
	store := secretWorkload(t, "store")
	store.AllowedCountries = []string{"USA", "GBR"}
	if p := s.place("store", store); p.Regions[0] != "aws/s1" {
		t.Fatalf("store in %v; want aws/s1", p.Regions)
	}
	writer := secretWorkload(t, "writer")
	writer.Dependencies = []flow.Dependency{{Target: flow.Placement("us-army", "store"), Direction: flow.Write}}
	p, err := s.store.Place(context.Background(), "writer", writer)
	select {
	case cerr := <-changed:
		if cerr != nil {
			t.Fatalf("the region change: %v", cerr)
		}
	default:
		t.Fatalf("no commit was attempted (Place: %v, %v): the test proves nothing", p, err)
	}
	var refusal *router.RefusalError
	if err == nil {
		t.Fatalf("writer placed in %v after its target's region became British before the commit", p.Regions)
	}
	if !errors.As(err, &refusal) || !slices.ContainsFunc(refusal.Regions, func(v router.Explained) bool {
		return slices.ContainsFunc(v.Reasons, func(r router.Reason) bool {
			return r.Code == router.ReasonResidency && strings.Contains(r.Message, "aws/s1 in GBR")
		})
	}) {
		t.Errorf("refusal %v; want residency for the writes reaching aws/s1 in GBR", err)
	}
}
