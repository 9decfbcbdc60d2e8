package flow_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/marking"
)

// gen generates labels, sides, edges and flows from fixed pools, seeded
// so that a failure replays.
type gen struct {
	tb     testing.TB
	r      *rand.Rand
	labels []marking.Label
	sides  []flow.Side
	ends   []string // edge endpoints: domains and region keys
}

func newGen(tb testing.TB, seed uint64) *gen {
	tb.Helper()
	g := &gen{tb: tb, r: rand.New(rand.NewPCG(seed, 13))}
	for _, m := range []struct {
		s marking.Scheme
		m string
	}{
		{marking.US, "UNCLASSIFIED"}, {marking.US, "CUI"}, {marking.US, "CUI//SP-EXPT"}, {marking.US, "CONFIDENTIAL"},
		{marking.US, "SECRET"}, {marking.US, "SECRET//REL TO USA, GBR"}, {marking.US, "SECRET//REL TO USA, AUS"},
		{marking.US, "SECRET//REL TO USA, FVEY"}, {marking.US, "TOP SECRET"}, {marking.US, "TOP SECRET//SI"},
		{marking.US, "TOP SECRET//SI/TK"}, {marking.GBR, "UK OFFICIAL"}, {marking.GBR, "UK SECRET"},
		{marking.GBR, "UK SECRET UK EYES ONLY"}, {marking.AUS, "[SEC=PROTECTED]"},
	} {
		g.labels = append(g.labels, marking.MustParse(m.s, m.m))
	}
	g.sides = []flow.Side{siprA, siprB, jwics, jwicB, inet, govVA, comEU, gapUS, gapG, ukGap,
		{Region: "aws/eu-west-2", Domain: flow.DomainInternet, Operators: []string{"GBR", "USA"}, Personnel: flow.PersonnelNone},
		{Region: "azure/usdodeast", Domain: flow.DomainNIPRNet, Operators: []string{"USA"}, Personnel: flow.PersonnelUSPersonsADP},
	}
	g.ends = []string{flow.DomainInternet, flow.DomainNIPRNet, flow.DomainSIPRNet, flow.DomainJWICS}
	for _, s := range g.sides {
		g.ends = append(g.ends, s.Region)
	}
	return g
}

func (g *gen) label() marking.Label { return g.labels[g.r.IntN(len(g.labels))] }
func (g *gen) side() flow.Side      { return g.sides[g.r.IntN(len(g.sides))] }
func (g *gen) dir() flow.Direction  { return flow.Direction(1 + g.r.IntN(3)) }

func (g *gen) flow() flow.Flow {
	f := flow.Flow{Direction: g.dir(), Label: g.label(), From: g.side(), Target: flow.ServiceNamed("svc"), TargetLabel: g.label(), To: g.side()}
	if g.r.IntN(8) == 0 {
		f.ExportControl = "ITAR"
	}
	if g.r.IntN(4) == 0 {
		f.Target = flow.Placement("t", "p")
	}
	return f
}

// edge generates a valid edge, often between the flow's sides so that
// it matters.
func (g *gen) edge(f flow.Flow, id string) flow.Edge {
	for {
		e := flow.Edge{ID: id, Kind: flow.Kind(1 + g.r.IntN(4)), Direction: g.dir(), Authority: "NCDSMO"}
		e.From, e.To = g.ends[g.r.IntN(len(g.ends))], g.ends[g.r.IntN(len(g.ends))]
		if g.r.IntN(2) == 0 {
			e.From, e.To = pick(g, f.From), pick(g, f.To)
			if g.r.IntN(2) == 0 {
				e.From, e.To = e.To, e.From
			}
		}
		if e.Kind == flow.Diode && e.Direction == flow.Call {
			e.Direction = flow.Read
		}
		lo, hi := g.label(), g.label()
		if !hi.Dominates(lo) {
			lo, hi = hi, lo
		}
		e.Range = flow.NewRange(lo, hi)
		e.Expires = now.Add(time.Duration(g.r.IntN(400)-100) * 24 * time.Hour)
		e.Revoked = g.r.IntN(10) == 0
		if e.Validate(marking.Parser{}) == nil {
			return e
		}
	}
}

// pick names side s by its region key or, unless air-gapped, its domain.
func pick(g *gen, s flow.Side) string {
	if s.Domain != flow.DomainAirGapped && g.r.IntN(2) == 0 {
		return s.Domain
	}
	return s.Region
}

func (g *gen) edges(f flow.Flow, n int) []flow.Edge {
	es := make([]flow.Edge, n)
	for i := range es {
		es[i] = g.edge(f, "e"+string(rune('a'+i)))
	}
	return es
}

// TestPropertyEdgesMonotone: adding an edge never makes a legal flow
// illegal, and removing one never makes an illegal flow legal; the
// order edges are given in changes nothing.
func TestPropertyEdgesMonotone(t *testing.T) {
	g := newGen(t, 1)
	seen := map[string]int{}
	for i := range 20000 {
		f := g.flow()
		es := g.edges(f, g.r.IntN(4))
		base := flow.Check(f, es, now)
		seen[codeOf(base)]++
		// The fast path decides the same, without words.
		if legal := flow.NewChecker(es, now).Legal(f, []flow.Side{f.From}, []flow.Side{f.To}); legal != base.OK {
			t.Fatalf("case %d: Legal %v, Check %+v", i, legal, base)
		}
		if base.OK && base.Edge != "" {
			seen["ok through an edge"]++
		}
		extra := g.edge(f, "z"+string(rune('a'+g.r.IntN(3))))
		with := flow.Check(f, append(slices.Clone(es), extra), now)
		if base.OK && !with.OK {
			t.Fatalf("case %d: adding %+v made a legal flow illegal: %s", i, extra, with.Message)
		}
		for j := range es {
			without := flow.Check(f, slices.Delete(slices.Clone(es), j, j+1), now)
			if !base.OK && without.OK {
				t.Fatalf("case %d: removing %s made an illegal flow legal", i, es[j].ID)
			}
		}
		shuffled := slices.Clone(es)
		g.r.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if again := flow.Check(f, shuffled, now); !resultEqual(again, base) {
			t.Fatalf("case %d: order changed the result: %+v then %+v", i, base, again)
		}
	}
	for _, c := range []string{"ok", "ok through an edge", "write_down", "read_up", "incomparable", "no_edge", "cds_expired", "out_of_range", "personnel"} {
		if seen[c] == 0 {
			t.Errorf("the generator never produced %s: %v", c, seen)
		}
	}
	t.Logf("outcomes: %v", seen)
}

// TestPropertySound: an allowed flow is allowed for a reason. Without
// an edge, its sides share a network and every transfer lands on a
// label that dominates it; through an edge, the edge is in force, joins
// the sides and its range is in the scheme of a label of the flow.
func TestPropertySound(t *testing.T) {
	g := newGen(t, 2)
	for i := range 20000 {
		f := g.flow()
		es := g.edges(f, g.r.IntN(4))
		r := flow.Check(f, es, now)
		if !r.OK {
			if r.Code == "" || r.Message == "" {
				t.Fatalf("case %d: a refusal with no code or message: %+v", i, r)
			}
			continue
		}
		if r.Code != "" || r.Message != "" {
			t.Fatalf("case %d: OK with a code or message: %+v", i, r)
		}
		if r.Edge == "" {
			same := f.From.Domain == f.To.Domain && (f.From.Domain != flow.DomainAirGapped || f.From.Region == f.To.Region)
			down := f.Direction != flow.Read && !f.TargetLabel.Dominates(f.Label)
			up := f.Direction != flow.Write && !f.Label.Dominates(f.TargetLabel)
			if !same || down || up {
				t.Fatalf("case %d: allowed with no edge: %+v", i, f)
			}
			continue
		}
		k := slices.IndexFunc(es, func(e flow.Edge) bool { return e.ID == r.Edge })
		if k < 0 {
			t.Fatalf("case %d: used edge %q not given", i, r.Edge)
		}
		e := es[k]
		if !e.InForce(now) {
			t.Fatalf("case %d: used edge %s not in force", i, e.ID)
		}
		if s := e.Range.Scheme; s != f.Label.Scheme && s != f.TargetLabel.Scheme {
			t.Fatalf("case %d: edge %s of scheme %s covers %s and %s", i, e.ID, s, f.Label.Scheme, f.TargetLabel.Scheme)
		}
	}
}

func resultEqual(a, b flow.Result) bool {
	return a.OK == b.OK && a.Code == b.Code && a.Edge == b.Edge && a.From == b.From && a.To == b.To && a.Message == b.Message
}
