package label_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/classroute/classroute/router/label"
)

// genControls are the controls the generator draws from, with the least
// level each needs and the controls each implies.
var genControls = []struct {
	c       string
	min     label.Level
	implies []string
}{
	{"SI", label.Confidential, nil},
	{"SI-G", label.TopSecret, []string{"SI"}},
	{"SI-G ABCD", label.TopSecret, []string{"SI", "SI-G"}},
	{"SI-ECRU", label.TopSecret, []string{"SI"}},
	{"TK", label.Secret, nil},
	{"TK-BLFH", label.TopSecret, []string{"TK"}},
	{"TK-IDIT", label.Secret, []string{"TK"}},
	{"TK-IDIT X1", label.Secret, []string{"TK", "TK-IDIT"}},
	{"HCS-O", label.Secret, nil},
	{"HCS-P", label.Secret, nil},
	{"HCS-P XYZ", label.TopSecret, []string{"HCS-P"}},
	{"RSV-ABC", label.Secret, nil},
	{"SAR-BP", label.Confidential, nil},
	{"SAR-CD", label.Confidential, nil},
	{"SAR-SI", label.Confidential, nil},
	{"SAR-BP-X1", label.Confidential, []string{"SAR-BP"}},
	{"SAR-BP-X1 Y", label.Confidential, []string{"SAR-BP", "SAR-BP-X1"}},
	{"SAR-RED WAGON", label.Confidential, nil},
	{"RD", label.Confidential, nil},
	{"CNWDI", label.Secret, []string{"RD"}},
	{"SIGMA 2", label.Secret, nil},
	{"SIGMA 14", label.Secret, nil},
	{"FRD", label.Confidential, nil},
	{"DOD UCNI", label.Unclassified, nil},
	{"TFNI", label.Confidential, nil},
	{"ATOMAL", label.Confidential, nil},
	{"SP-EXPT", label.CUI, nil},
	{"SP-CTI", label.CUI, nil},
}

var genNations = []string{"AUS", "CAN", "DEU", "GBR", "KEN", "NZL"}

// genDissem are the dissemination controls in canonical order; each
// entry is a choice of at most one of its values.
var genDissem = []struct {
	values []string
	min    label.Level
}{
	{[]string{"RSEN"}, label.Secret},
	{[]string{"FOUO"}, label.Unclassified},
	{[]string{"ORCON", "ORCON-USGOV"}, label.Confidential},
	{[]string{"IMCON"}, label.Secret},
	{[]string{"FED ONLY"}, label.Unclassified},
	{[]string{"NOCON"}, label.Unclassified},
	{[]string{"PROPIN"}, label.Unclassified},
	{[]string{"RELIDO"}, label.Unclassified},
	{[]string{"FISA"}, label.Unclassified},
	{[]string{"DISPLAY ONLY AUS", "DISPLAY ONLY AUS, GBR", "DISPLAY ONLY FRA, GBR, KEN", "DISPLAY ONLY KEN"}, label.Unclassified},
	{[]string{"LIMDIS"}, label.Unclassified},
	{[]string{"EXDIS", "NODIS"}, label.Unclassified},
	{[]string{"SBU"}, label.Unclassified},
	{[]string{"LES"}, label.Unclassified},
}

// genLabel returns a random valid label, built directly in canonical
// form so that the round trip through String and Parse checks both.
func genLabel(r *rand.Rand) label.Label {
	l := label.Label{Level: label.Level(r.IntN(int(label.TopSecret) + 1))}
	var cs []string
	for _, g := range genControls {
		if l.Level >= g.min && r.IntN(6) == 0 {
			cs = append(cs, g.c)
			cs = append(cs, g.implies...)
		}
	}
	slices.Sort(cs)
	l.Controls = slices.Compact(cs)
	if len(l.Controls) == 0 {
		l.Controls = nil
	}
	if !l.Classified() && r.IntN(2) == 0 {
		l.AnyNation = true
	} else {
		l.Nations = []string{"USA"}
		for _, n := range genNations {
			if r.IntN(3) == 0 {
				l.Nations = append(l.Nations, n)
			}
		}
		slices.Sort(l.Nations)
	}
	for _, g := range genDissem {
		if l.Level >= g.min && r.IntN(5) == 0 {
			l.Dissem = append(l.Dissem, g.values[r.IntN(len(g.values))])
		}
	}
	// A US-audience control makes the label US-only, whatever its level.
	if l.AnyNation && slices.ContainsFunc(l.Dissem, usAudience) {
		l.AnyNation, l.Nations = false, []string{"USA"}
	}
	return l
}

func usAudience(d string) bool {
	switch d {
	case "RELIDO", "FED ONLY", "FEDCON", "NOCON", "DL ONLY":
		return true
	}
	return strings.HasPrefix(d, "DISPLAY ONLY ")
}

// projection is what Dominates compares.
func sameProjection(a, b label.Label) bool {
	return a.Level == b.Level && slices.Equal(a.Controls, b.Controls) &&
		a.AnyNation == b.AnyNation && slices.Equal(a.Nations, b.Nations)
}

const propertyRounds = 4000

func TestGeneratedLabelsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range propertyRounds {
		checkRoundTrip(t, genLabel(r))
	}
}

func TestLatticeLaws(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	eq := func(law string, got, want label.Label, args ...label.Label) {
		t.Helper()
		if !got.Equal(want) {
			t.Fatalf("%s fails for %q:\n got  %q\n want %q", law, args, got, want)
		}
	}
	proj := func(law string, got, want label.Label, args ...label.Label) {
		t.Helper()
		if !sameProjection(got, want) {
			t.Fatalf("%s fails for %q:\n got  %q\n want %q", law, args, got, want)
		}
	}
	for range propertyRounds {
		a, b, c := genLabel(r), genLabel(r), genLabel(r)
		j, m := label.Join(a, b), label.Meet(a, b)
		checkRoundTrip(t, j)
		checkRoundTrip(t, m)

		eq("Join commutative", j, label.Join(b, a), a, b)
		eq("Join associative", label.Join(j, c), label.Join(a, label.Join(b, c)), a, b, c)
		eq("Join idempotent", label.Join(a, a), a, a)
		eq("Meet commutative", m, label.Meet(b, a), a, b)
		eq("Meet associative", label.Meet(m, c), label.Meet(a, label.Meet(b, c)), a, b, c)
		eq("Meet idempotent", label.Meet(a, a), a, a)
		// Absorption holds on what routing compares (level, controls,
		// releasability: DOMAIN.md §0). The dissemination annotations
		// follow the register's roll-up rules, and rule 17 (RELIDO with
		// anything not RELIDO is NOFORN) is not absorptive:
		// U//RELIDO ∨ (U//RELIDO ∧ U) = U//RELIDO ∨ U = U//NOFORN.
		proj("absorption a∨(a∧b)=a", label.Join(a, m), a, a, b)
		proj("absorption a∧(a∨b)=a", label.Meet(a, j), a, a, b)

		if !j.Dominates(a) || !j.Dominates(b) {
			t.Fatalf("Join(%v, %v) = %v does not dominate both", a, b, j)
		}
		if !a.Dominates(m) || !b.Dominates(m) {
			t.Fatalf("Meet(%v, %v) = %v is not dominated by both", a, b, m)
		}
		// Join is the least upper bound and Meet the greatest lower bound.
		if c.Dominates(a) && c.Dominates(b) && !c.Dominates(j) {
			t.Fatalf("%v bounds %v and %v but not their Join %v", c, a, b, j)
		}
		if a.Dominates(c) && b.Dominates(c) && !m.Dominates(c) {
			t.Fatalf("%v is below %v and %v but not below their Meet %v", c, a, b, m)
		}
		// Dominance agrees with Join and Meet.
		if got, want := a.Dominates(b), sameProjection(j, a); got != want {
			t.Fatalf("%v.Dominates(%v) = %v, but Join = %v", a, b, got, j)
		}
		if got, want := a.Dominates(b), sameProjection(m, b); got != want {
			t.Fatalf("%v.Dominates(%v) = %v, but Meet = %v", a, b, got, m)
		}
	}
}

func TestDominatesOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range propertyRounds {
		a, b, c := genLabel(r), genLabel(r), genLabel(r)
		if !a.Dominates(a) {
			t.Fatalf("Dominates not reflexive for %v", a)
		}
		// Antisymmetric on what Dominates compares: labels that differ
		// only in dissemination controls dominate each other.
		for _, p := range [][2]label.Label{{a, b}, {a, label.Join(a, b)}, {label.Meet(a, b), b}} {
			x, y := p[0], p[1]
			if x.Dominates(y) && y.Dominates(x) && !sameProjection(x, y) {
				t.Fatalf("%v and %v dominate each other but differ", x, y)
			}
		}
		// Transitive, on chains that exercise it and on random triples.
		x, y, z := label.Meet(label.Meet(a, b), c), label.Meet(a, b), a
		for _, tr := range [][3]label.Label{{z, y, x}, {label.Join(label.Join(a, b), c), label.Join(a, b), a}, {a, b, c}} {
			if tr[0].Dominates(tr[1]) && tr[1].Dominates(tr[2]) && !tr[0].Dominates(tr[2]) {
				t.Fatalf("Dominates not transitive: %v ⊒ %v ⊒ %v", tr[0], tr[1], tr[2])
			}
		}
		// ReleasableTo agrees with the nations Dominates compares.
		for _, n := range append([]string{"USA", "FRA"}, genNations...) {
			want := a.AnyNation || slices.Contains(a.Nations, n)
			if got := a.ReleasableTo(n); got != want {
				t.Fatalf("%v.ReleasableTo(%s) = %v", a, n, got)
			}
		}
	}
}

func TestDominates(t *testing.T) {
	mp := label.MustParse
	cases := []struct {
		name string
		a, b string
		want bool
	}{
		{"higher level", "TOP SECRET//NOFORN", "SECRET//NOFORN", true},
		{"lower level", "SECRET//NOFORN", "TOP SECRET//NOFORN", false},
		{"controls superset", "TOP SECRET//SI-G/TK//NOFORN", "TOP SECRET//SI//NOFORN", true},
		{"controls missing", "TOP SECRET//SI//NOFORN", "TOP SECRET//SI/TK//NOFORN", false},
		{"NOFORN within REL TO", "SECRET//NOFORN", "SECRET//REL TO USA, GBR", true},
		{"REL TO wider than NOFORN", "SECRET//REL TO USA, GBR", "SECRET//NOFORN", false},
		{"anything within AnyNation", "SECRET//REL TO USA, GBR", "UNCLASSIFIED", true},
		{"AnyNation not within NOFORN", "CUI", "UNCLASSIFIED//NOFORN", false},
		{"dissemination controls ignored", "SECRET//NOFORN", "SECRET//ORCON/NOFORN", true},
		{"export category is a control", "CUI//NOFORN", "CUI//SP-EXPT//NOFORN", false},
	}
	for _, tc := range cases {
		if got := mp(tc.a).Dominates(mp(tc.b)); got != tc.want {
			t.Errorf("%s: %s dominates %s = %v; want %v", tc.name, tc.a, tc.b, got, tc.want)
		}
	}
}

// TestJoinRollUp checks Join against the banner roll-up of CAPCO-2016
// §D.2, Table 3, and the scenarios of DOMAIN.md.
func TestJoinRollUp(t *testing.T) {
	cases := []struct {
		name, a, b, want string
	}{
		{"REL TO common list (rule 21)", "SECRET//REL TO USA, AUS, GBR", "SECRET//REL TO USA, GBR, NZL", "SECRET//REL TO USA, GBR"},
		{"REL TO no common list (rule 9)", "SECRET//REL TO USA, AUS", "SECRET//REL TO USA, CAN", "SECRET//NOFORN"},
		{"tetragraphs expand (rule 23)", "SECRET//REL TO USA, FVEY", "SECRET//REL TO USA, GBR, DEU", "SECRET//REL TO USA, GBR"},
		{"NOFORN wins (rule 2)", "SECRET//NOFORN", "SECRET//REL TO USA, GBR", "SECRET//NOFORN"},
		{"REL TO and RELIDO (rule 10)", "SECRET//REL TO USA, GBR", "SECRET//RELIDO", "SECRET//NOFORN"},
		{"REL TO and no FD&R (rule 16)", "SECRET//REL TO USA, GBR", "SECRET", "SECRET//NOFORN"},
		{"RELIDO and RELIDO (rule 24)", "SECRET//RELIDO", "TOP SECRET//RELIDO", "TOP SECRET//RELIDO"},
		{"RELIDO with unclassified (rule 17)", "UNCLASSIFIED", "SECRET//RELIDO", "SECRET//NOFORN"},
		{"RELIDO needs all", "SECRET//REL TO USA, GBR/RELIDO", "SECRET//REL TO USA, GBR", "SECRET//REL TO USA, GBR"},
		{"DISPLAY ONLY common (rule 25)", "SECRET//DISPLAY ONLY AUS, GBR", "SECRET//DISPLAY ONLY GBR, KEN", "SECRET//DISPLAY ONLY GBR"},
		{"DISPLAY ONLY no common (rule 20)", "SECRET//DISPLAY ONLY AUS", "SECRET//DISPLAY ONLY KEN", "SECRET//NOFORN"},
		{"DISPLAY ONLY and none (rule 19)", "SECRET//DISPLAY ONLY AUS", "SECRET//NOFORN", "SECRET//NOFORN"},
		{"unclassified is the identity", "UNCLASSIFIED", "SECRET//REL TO USA, GBR", "SECRET//REL TO USA, GBR"},
		{"unclassified stays open", "UNCLASSIFIED", "UNCLASSIFIED//FOUO", "UNCLASSIFIED//FOUO"},
		{"controls union", "TOP SECRET//SI//NOFORN", "SECRET//SAR-BP//REL TO USA, GBR", "TOP SECRET//SI//SAR-BP//NOFORN"},
		{"export category survives", "CUI//SP-EXPT", "SECRET//REL TO USA, GBR", "SECRET//SP-EXPT//REL TO USA, GBR"},
		{"CUI NOFORN", "CUI//SP-EXPT//NOFORN", "UNCLASSIFIED", "CUI//SP-EXPT//NOFORN"},
		{"ORCON wins over ORCON-USGOV", "SECRET//ORCON-USGOV/NOFORN", "SECRET//ORCON/REL TO USA, GBR", "SECRET//ORCON/NOFORN"},
		{"NODIS wins over EXDIS", "SECRET//NOFORN//EXDIS", "SECRET//NOFORN//NODIS/SBU", "SECRET//NOFORN//NODIS/SBU"},
		{"SIGMA under RD", "SECRET//FRD-SIGMA 14//NOFORN", "SECRET//RD//NOFORN", "SECRET//RD-SIGMA 14/FRD//NOFORN"},
		{"unclassified US-only RELIDO", "UNCLASSIFIED//REL TO USA, GBR/RELIDO", "UNCLASSIFIED//REL TO USA, AUS/RELIDO", "UNCLASSIFIED//REL TO USA/RELIDO"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := label.Join(label.MustParse(tc.a), label.MustParse(tc.b))
			if s := got.String(); s != tc.want {
				t.Errorf("Join(%s, %s) = %s; want %s", tc.a, tc.b, s, tc.want)
			}
			checkRoundTrip(t, got)
		})
	}
}

func TestMeet(t *testing.T) {
	cases := []struct {
		name, a, b, want string
	}{
		{"lower level, common controls", "TOP SECRET//SI/TK//NOFORN", "SECRET//TK//NOFORN", "SECRET//TK//NOFORN"},
		{"union of nations", "SECRET//REL TO USA, AUS", "SECRET//REL TO USA, CAN", "SECRET//REL TO USA, AUS, CAN"},
		{"AnyNation absorbs", "UNCLASSIFIED", "SECRET//NOFORN", "UNCLASSIFIED"},
		{"RELIDO if either", "SECRET//RELIDO", "SECRET//NOFORN", "SECRET//RELIDO"},
		{"RELIDO on a US-only unclassified label", "SECRET//RELIDO", "UNCLASSIFIED//NOFORN", "UNCLASSIFIED//REL TO USA/RELIDO"},
		{"ORCON-USGOV below ORCON", "SECRET//ORCON/NOFORN", "SECRET//ORCON-USGOV/NOFORN", "SECRET//ORCON-USGOV/NOFORN"},
		{"DISPLAY ONLY union", "SECRET//DISPLAY ONLY AUS", "SECRET//DISPLAY ONLY KEN", "SECRET//DISPLAY ONLY AUS, KEN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := label.Meet(label.MustParse(tc.a), label.MustParse(tc.b))
			if s := got.String(); s != tc.want {
				t.Errorf("Meet(%s, %s) = %s; want %s", tc.a, tc.b, s, tc.want)
			}
			checkRoundTrip(t, got)
		})
	}
}

func TestJoinEmptyIntersection(t *testing.T) {
	// Valid labels always share USA; a hand-built one may not.
	a := label.Label{Level: label.Secret, Nations: []string{"GBR"}}
	b := label.Label{Level: label.Secret, Nations: []string{"AUS"}}
	if got := label.Join(a, b); !slices.Equal(got.Nations, []string{"USA"}) {
		t.Errorf("Join of disjoint nations = %q; want [USA]", got.Nations)
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	a := label.MustParse("TOP SECRET//HCS-P/SI-G/TK//SAR-BP//RD-CNWDI//REL TO USA, NATO")
	b := label.MustParse("SECRET//SI/TK//REL TO USA, FVEY")
	var sink bool
	if n := testing.AllocsPerRun(100, func() { sink = a.Dominates(b) || a.ReleasableTo("GBR") || a.HasControl("SI-G") }); n != 0 {
		t.Errorf("Dominates, ReleasableTo and HasControl allocate %v times", n)
	}
	_ = sink
}
