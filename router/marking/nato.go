package marking

import "strings"

// natoGrammar reads NATO markings (C-M(2002)49; DOMAIN.md §6.1), in
// NATO's own form or CAPCO's:
//
//	LEVEL[ ATOMAL]          NATO SECRET ATOMAL
//	//LEVEL[//ATOMAL]       //NATO SECRET//ATOMAL
//
// The levels, low to high, are NATO UNCLASSIFIED < NATO RESTRICTED <
// NATO CONFIDENTIAL < NATO SECRET < COSMIC TOP SECRET. ATOMAL (US RD or
// FRD, or UK atomic information, released to NATO) is a caveat, allowed
// on NATO CONFIDENTIAL and above. NOFORN is barred on NATO information.
// BOHEMIA and BALK are not read. A NATO label is releasable to the NATO
// members (NATOMembers). String writes NATO's own form.
type natoGrammar struct{}

var natoLevels = []string{"NATO UNCLASSIFIED", "NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET", "COSMIC TOP SECRET"}

const (
	natoAtomal    = "ATOMAL"
	natoLevelList = "NATO UNCLASSIFIED, NATO RESTRICTED, NATO CONFIDENTIAL, NATO SECRET, COSMIC TOP SECRET"
)

var natoPortions = map[string]string{
	"NU": "NATO UNCLASSIFIED", "NR": "NATO RESTRICTED", "NC": "NATO CONFIDENTIAL",
	"NS": "NATO SECRET", "CTS": "COSMIC TOP SECRET",
}

func (natoGrammar) parse(m string) (Label, error) {
	s := upperASCII(strings.TrimSpace(m))
	fail := func(part, format string, args ...any) (Label, error) {
		return Label{}, errorf(NATO, m, part, format, args...)
	}
	segs := strings.Split(strings.TrimPrefix(s, "//"), "//")
	lv := segs[0]
	atomal := false
	if before, ok := strings.CutSuffix(lv, " "+natoAtomal); ok {
		lv, atomal = before, true
	}
	rank := -1
	for i, n := range natoLevels {
		if lv == n {
			rank = i
		}
	}
	switch {
	case rank >= 0:
	case natoPortions[lv] != "":
		return fail(lv, "%q is a portion marking; the banner form is %s", lv, natoPortions[lv])
	case lv == "NATO TOP SECRET":
		return fail(lv, "NATO's top level is COSMIC TOP SECRET")
	case lv == "":
		return fail(s, "no NATO level in %q", s)
	default:
		return fail(lv, "unknown NATO level %q (levels: %s)", lv, natoLevelList)
	}
	for _, seg := range segs[1:] {
		switch seg {
		case natoAtomal:
			if atomal {
				return fail(seg, "duplicate %q", seg)
			}
			atomal = true
		case "NOFORN", "NF":
			return fail(seg, "NOFORN is barred on NATO information")
		case "":
			return fail("//", `empty category between "//" separators`)
		default:
			return fail(seg, "unknown NATO marking %q (NATO markings carry ATOMAL only)", seg)
		}
	}
	l := Label{
		Scheme:     NATO,
		Level:      Level{Name: natoLevels[rank], Rank: rank},
		Nations:    natoMembers,
		Originator: originators[NATO],
	}
	if atomal {
		if rank < 2 {
			return fail(natoAtomal, "ATOMAL requires NATO CONFIDENTIAL or above")
		}
		l.Caveats = []string{natoAtomal}
	}
	return l, nil
}

func (natoGrammar) format(l Label) string {
	if len(l.Caveats) == 1 && l.Caveats[0] == natoAtomal {
		return l.Level.Name + " " + natoAtomal
	}
	return l.Level.Name
}

func (natoGrammar) levels() []Level { return ladderLevels("", natoLevels) }

// words is empty: every NATO level word names NATO.
func (natoGrammar) words() []string { return nil }
