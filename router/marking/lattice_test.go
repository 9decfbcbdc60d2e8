package marking_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/classroute/classroute/router/marking"
)

// genMarkings returns markings of scheme built from valid and invalid
// pieces in every combination (or, for US, at random); the tests keep
// those Parse accepts.
func genMarkings(scheme marking.Scheme) []string {
	var out []string
	cross := func(parts ...[]string) {
		acc := []string{""}
		for _, p := range parts {
			var next []string
			for _, a := range acc {
				for _, b := range p {
					next = append(next, a+b)
				}
			}
			acc = next
		}
		out = append(out, acc...)
	}
	switch scheme {
	case marking.US:
		levels := []string{"UNCLASSIFIED", "CUI", "CONFIDENTIAL", "SECRET", "TOP SECRET"}
		values := []string{"SI", "SI-G", "TK", "HCS-P", "SAR-BP", "RD", "FRD", "SP-EXPT", "NOFORN",
			"REL TO USA", "REL TO USA, GBR", "REL TO USA, AUS, GBR", "REL TO USA, FVEY", "REL TO USA, NATO", "ORCON"}
		r := rand.New(rand.NewPCG(1, 2))
		for range 3000 {
			var b strings.Builder
			b.WriteString(levels[r.IntN(len(levels))])
			for range r.IntN(3) {
				b.WriteString("//" + values[r.IntN(len(values))])
			}
			out = append(out, b.String())
		}
	case marking.GBR:
		cross([]string{"", "UK "}, []string{"OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", "TOP SECRET"},
			[]string{"", " UK EYES ONLY", " UK/US EYES ONLY", " FIVE EYES ONLY", " REL EU"})
	case marking.AUS:
		cross([]string{"[SEC="}, []string{"UNOFFICIAL", "OFFICIAL", "OFFICIAL:Sensitive", "PROTECTED", "SECRET", "TOP-SECRET"},
			[]string{"", ", CAVEAT=C:A", ", CAVEAT=C:A, CAVEAT=C:B"},
			[]string{"", ", CAVEAT=FG:X"},
			[]string{"", ", CAVEAT=SH:NATIONAL-CABINET", ", CAVEAT=SH:CABINET"},
			[]string{"", ", CAVEAT=RI:AGAO", ", CAVEAT=RI:AUSTEO", ", CAVEAT=RI:REL GBR", ", CAVEAT=RI:REL GBR/USA", ", CAVEAT=RI:REL CAN/GBR/NZL/USA", ", CAVEAT=RI:REL NZL"},
			[]string{"]"})
	case marking.NATO:
		cross([]string{"", "//"}, []string{"NATO UNCLASSIFIED", "NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET", "COSMIC TOP SECRET"},
			[]string{"", " ATOMAL", "//ATOMAL"})
	case marking.CAN:
		out = []string{"PROTECTED A", "PROTECTED B", "PROTECTED C", "CONFIDENTIAL", "SECRET", "TOP SECRET"}
	case marking.NZL:
		out = []string{"IN-CONFIDENCE", "SENSITIVE", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"}
	case marking.EU:
		out = []string{"RESTREINT UE/EU RESTRICTED", "CONFIDENTIEL UE", "EU SECRET", "TRÈS SECRET UE/EU TOP SECRET"}
	case marking.KEN:
		out = marking.DefaultKenyaLevels().Levels
	}
	return out
}

// genLabels returns the distinct labels of scheme Parse reads from genMarkings.
func genLabels(t testing.TB, scheme marking.Scheme) []marking.Label {
	t.Helper()
	var ls []marking.Label
	seen := map[string]bool{}
	for _, m := range genMarkings(scheme) {
		l, err := marking.Parse(scheme, m)
		if err != nil || seen[l.String()] {
			continue
		}
		seen[l.String()] = true
		checkRoundTrip(t, marking.Parser{}, l)
		ls = append(ls, l)
	}
	if len(ls) < 4 {
		t.Fatalf("only %d %s labels generated", len(ls), scheme)
	}
	return ls
}

// sameOrder reports whether a and b are equal in all Dominates compares.
func sameOrder(a, b marking.Label) bool {
	return a.Scheme == b.Scheme && a.Level == b.Level && a.AnyNation == b.AnyNation &&
		slices.Equal(a.Caveats, b.Caveats) && slices.Equal(a.Nations, b.Nations)
}

// TestDominatesLaws checks that Dominates is a partial order within each
// scheme: reflexive, antisymmetric on canonical labels, transitive.
func TestDominatesLaws(t *testing.T) {
	for _, s := range marking.Schemes() {
		t.Run(string(s), func(t *testing.T) {
			ls := genLabels(t, s)
			t.Logf("%d labels", len(ls))
			for _, a := range ls {
				if !a.Dominates(a) {
					t.Fatalf("%q does not dominate itself", a)
				}
				for _, b := range ls {
					if !a.Dominates(b) || !b.Dominates(a) {
						continue
					}
					// US labels that differ only in dissemination controls
					// (ORCON) dominate each other, as in router/label; all
					// others are then equal.
					if !sameOrder(a, b) || (s != marking.US && !a.Equal(b)) {
						t.Fatalf("%q and %q dominate each other but differ", a, b)
					}
				}
			}
			r := rand.New(rand.NewPCG(7, uint64(len(s))))
			triple := func(a, b, c marking.Label) {
				if a.Dominates(b) && b.Dominates(c) && !a.Dominates(c) {
					t.Fatalf("not transitive: %q ≥ %q ≥ %q but not %q ≥ %q", a, b, c, a, c)
				}
			}
			if n := len(ls); n*n*n <= 300000 {
				for _, a := range ls {
					for _, b := range ls {
						for _, c := range ls {
							triple(a, b, c)
						}
					}
				}
			} else {
				// Draw b from those a dominates and c from those b
				// dominates, so that the premise often holds.
				for range 200000 {
					a := ls[r.IntN(n)]
					b := ls[r.IntN(n)]
					c := ls[r.IntN(n)]
					triple(a, b, c)
				}
				chains := 0
				for _, a := range ls {
					below := slices.DeleteFunc(slices.Clone(ls), func(b marking.Label) bool { return !a.Dominates(b) })
					for range 50 {
						b := below[r.IntN(len(below))]
						c := ls[r.IntN(n)]
						if b.Dominates(c) {
							chains++
						}
						triple(a, b, c)
					}
				}
				if chains == 0 {
					t.Fatal("no chain a ≥ b ≥ c drawn: the transitivity check proves nothing")
				}
			}
		})
	}
}

// TestDominatesAcrossSchemes checks that a label of one scheme never
// dominates, nor is dominated by, a label of another, whatever their
// words.
func TestDominatesAcrossSchemes(t *testing.T) {
	var all []marking.Label
	for _, s := range marking.Schemes() {
		all = append(all, genLabels(t, s)...)
	}
	for _, a := range all {
		for _, b := range all {
			if a.Scheme != b.Scheme && (a.Dominates(b) || b.Dominates(a)) {
				t.Fatalf("%s %q and %s %q are compared across schemes", a.Scheme, a, b.Scheme, b)
			}
		}
	}
}

// TestLevelOrders pins each scheme's order, low to high, axis by axis.
func TestLevelOrders(t *testing.T) {
	ladders := []struct {
		scheme marking.Scheme
		levels []string
	}{
		{marking.US, []string{"UNCLASSIFIED", "CUI", "CONFIDENTIAL//NOFORN", "SECRET//NOFORN", "TOP SECRET//NOFORN"}},
		{marking.GBR, []string{"OFFICIAL", "SECRET", "TOP SECRET"}},
		{marking.AUS, []string{"[SEC=UNOFFICIAL]", "[SEC=OFFICIAL]", "[SEC=OFFICIAL:Sensitive]", "[SEC=PROTECTED]", "[SEC=SECRET]", "[SEC=TOP-SECRET]"}},
		{marking.NATO, []string{"NATO UNCLASSIFIED", "NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET", "COSMIC TOP SECRET"}},
		{marking.CAN, []string{"PROTECTED A", "PROTECTED B", "PROTECTED C"}},
		{marking.CAN, []string{"CONFIDENTIAL", "SECRET", "TOP SECRET"}},
		{marking.NZL, []string{"IN-CONFIDENCE", "SENSITIVE"}},
		{marking.NZL, []string{"RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"}},
		{marking.EU, []string{"RESTREINT UE", "CONFIDENTIEL UE", "SECRET UE", "TRÈS SECRET UE"}},
		{marking.KEN, []string{"UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"}},
	}
	for _, lad := range ladders {
		for i, lo := range lad.levels {
			for _, hi := range lad.levels[i+1:] {
				l, h := marking.MustParse(lad.scheme, lo), marking.MustParse(lad.scheme, hi)
				if !h.Dominates(l) || l.Dominates(h) {
					t.Errorf("%s: want %q > %q", lad.scheme, hi, lo)
				}
			}
		}
	}
	// The axes of Canada and New Zealand are incomparable.
	for _, tc := range []struct {
		scheme marking.Scheme
		a, b   []string
	}{
		{marking.CAN, []string{"PROTECTED A", "PROTECTED B", "PROTECTED C"}, []string{"CONFIDENTIAL", "SECRET", "TOP SECRET"}},
		{marking.NZL, []string{"IN-CONFIDENCE", "SENSITIVE"}, []string{"RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"}},
	} {
		for _, x := range tc.a {
			for _, y := range tc.b {
				a, b := marking.MustParse(tc.scheme, x), marking.MustParse(tc.scheme, y)
				if a.Dominates(b) || b.Dominates(a) {
					t.Errorf("%s: %q and %q are on different axes but compare", tc.scheme, x, y)
				}
			}
		}
	}
}

func TestDominates(t *testing.T) {
	for _, tc := range []struct {
		as, bs marking.Scheme
		a, b   string
		want   bool
	}{
		{marking.GBR, marking.GBR, "OFFICIAL-SENSITIVE", "OFFICIAL", true},
		{marking.GBR, marking.GBR, "OFFICIAL", "OFFICIAL-SENSITIVE", false},
		{marking.GBR, marking.GBR, "SECRET", "OFFICIAL-SENSITIVE", false}, // SENSITIVE is a caveat the SECRET label lacks
		{marking.GBR, marking.GBR, "SECRET UK EYES ONLY", "SECRET FIVE EYES ONLY", true},
		{marking.GBR, marking.GBR, "SECRET FIVE EYES ONLY", "SECRET UK EYES ONLY", false},
		{marking.GBR, marking.GBR, "SECRET UK/US EYES ONLY", "SECRET", true},
		{marking.GBR, marking.GBR, "TOP SECRET UK EYES ONLY", "SECRET REL EU", true},
		{marking.AUS, marking.AUS, "[SEC=PROTECTED, CAVEAT=RI:AUSTEO]", "[SEC=PROTECTED, CAVEAT=RI:REL AUS/GBR]", true},
		{marking.AUS, marking.AUS, "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR]", "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]", true},
		{marking.AUS, marking.AUS, "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]", "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR]", false},
		{marking.AUS, marking.AUS, "[SEC=TOP-SECRET, CAVEAT=SH:CABINET]", "[SEC=PROTECTED]", true},
		{marking.AUS, marking.AUS, "[SEC=TOP-SECRET]", "[SEC=PROTECTED, CAVEAT=SH:CABINET]", false},
		{marking.NATO, marking.NATO, "COSMIC TOP SECRET ATOMAL", "NATO SECRET ATOMAL", true},
		{marking.NATO, marking.NATO, "COSMIC TOP SECRET", "NATO CONFIDENTIAL ATOMAL", false},
		{marking.CAN, marking.CAN, "PROTECTED C", "CONFIDENTIAL", false},
		{marking.CAN, marking.CAN, "TOP SECRET", "PROTECTED A", false},
		{marking.NZL, marking.NZL, "SENSITIVE", "RESTRICTED", false},
		{marking.NZL, marking.NZL, "TOP SECRET", "IN-CONFIDENCE", false},
		// Across schemes, whatever the words.
		{marking.GBR, marking.US, "SECRET", "SECRET", false},
		{marking.US, marking.GBR, "TOP SECRET", "SECRET", false},
		{marking.KEN, marking.US, "CONFIDENTIAL", "CONFIDENTIAL", false},
		{marking.US, marking.KEN, "TOP SECRET", "RESTRICTED", false},
		{marking.NATO, marking.US, "COSMIC TOP SECRET", "UNCLASSIFIED", false},
		{marking.CAN, marking.NZL, "SECRET", "SECRET", false},
		{marking.EU, marking.NATO, "TRÈS SECRET UE", "NATO RESTRICTED", false},
	} {
		a, b := marking.MustParse(tc.as, tc.a), marking.MustParse(tc.bs, tc.b)
		if got := a.Dominates(b); got != tc.want {
			t.Errorf("%s %q Dominates %s %q = %v; want %v", tc.as, tc.a, tc.bs, tc.b, got, tc.want)
		}
	}
}

// TestKenyaConfiguredOrder checks that configured Kenyan levels are
// ordered as listed.
func TestKenyaConfiguredOrder(t *testing.T) {
	p := marking.Parser{Kenya: marking.KenyaLevels{Levels: []string{"C", "B", "A"}}}
	var ls []marking.Label
	for _, w := range []string{"C", "B", "A"} {
		l, err := p.Parse(marking.KEN, w)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	for i := range ls {
		for j := range ls {
			if got, want := ls[i].Dominates(ls[j]), i >= j; got != want {
				t.Errorf("%s Dominates %s = %v; want %v", ls[i], ls[j], got, want)
			}
		}
	}
}

func ExampleParse() {
	for _, m := range []struct {
		scheme  marking.Scheme
		marking string
	}{
		{marking.GBR, "SECRET UK EYES ONLY"},
		{"", "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]"},
		{marking.KEN, "CONFIDENTIAL"},
		{"", "CONFIDENTIAL"},
	} {
		l, err := marking.Parse(m.scheme, m.marking)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s %s: level %s, nations %v\n", l.Scheme, l, l.Level, l.Nations)
	}
	// Output:
	// GBR UK SECRET UK EYES ONLY: level SECRET, nations [GBR]
	// AUS [SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]: level SECRET, nations [AUS GBR USA]
	// KEN CONFIDENTIAL: level CONFIDENTIAL, nations []
	// invalid marking "CONFIDENTIAL": "CONFIDENTIAL" is a level in schemes US, CAN, NZL, KEN: say which scheme
}
