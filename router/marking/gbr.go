package marking

import (
	"slices"
	"strings"
)

// gbrGrammar reads UK Government Security Classifications markings
// (GSCP 2014, updated 2023/2024; DOMAIN.md §6.1):
//
//	[UK ]LEVEL[ CAVEAT]
//
// LEVEL is OFFICIAL, OFFICIAL-SENSITIVE, SECRET or TOP SECRET, and
// OFFICIAL < SECRET < TOP SECRET. "-SENSITIVE" marks OFFICIAL and is not
// a tier: OFFICIAL-SENSITIVE is level OFFICIAL with caveat SENSITIVE, so
// that it dominates OFFICIAL and a region must be accredited for it. The
// "UK" prefix, which the UK puts on assets sent abroad or to NATO, does
// not change the label; String always writes it, so the canonical form
// names its scheme. CAVEAT is one of
//
//	UK EYES ONLY     Nations {GBR}
//	UK/US EYES ONLY  Nations {GBR, USA}
//	FIVE EYES ONLY   Nations {AUS, CAN, GBR, NZL, USA}
//	REL EU           Nations {GBR} and the EU member states
//
// The three national caveats (EYES ONLY) are allowed on SECRET and TOP
// SECRET only; REL EU on any level. Without a caveat the label has
// AnyNation (see the package documentation).
type gbrGrammar struct{}

const gbrSensitive = "SENSITIVE"

var gbrLevels = []string{"OFFICIAL", "SECRET", "TOP SECRET"}

// gbrCaveats are the UK releasability caveats and their nations.
var gbrCaveats = []struct {
	name     string
	national bool // an EYES ONLY caveat: SECRET and above only
	nations  []string
}{
	{"UK EYES ONLY", true, []string{"GBR"}},
	{"UK/US EYES ONLY", true, []string{"GBR", "USA"}},
	{"FIVE EYES ONLY", true, fiveEyes},
	{"REL EU", false, sortedUnion([]string{"GBR"}, euMembers)},
}

func (gbrGrammar) parse(m string) (Label, error) {
	s := upperASCII(strings.TrimSpace(m))
	fail := func(part, format string, args ...any) (Label, error) {
		return Label{}, errorf(GBR, m, part, format, args...)
	}
	if strings.Contains(s, "  ") {
		return fail(s, "unexpected double space in %q", s)
	}
	s = strings.TrimPrefix(s, "UK ")
	l := Label{Scheme: GBR, AnyNation: true, Originator: originators[GBR]}
	rank := -1
	// Longest names first: TOP SECRET before SECRET.
	for _, i := range []int{2, 1, 0} {
		if strings.HasPrefix(s, gbrLevels[i]) {
			rank = i
			break
		}
	}
	if rank < 0 {
		w, _, _ := strings.Cut(s, " ")
		switch w {
		case "CONFIDENTIAL", "RESTRICTED", "PROTECT":
			return fail(w, "%q is not a GBR level since 2014 (levels: OFFICIAL, SECRET, TOP SECRET)", w)
		}
		return fail(w, "unknown GBR level %q (levels: OFFICIAL, OFFICIAL-SENSITIVE, SECRET, TOP SECRET)", w)
	}
	l.Level = Level{Name: gbrLevels[rank], Rank: rank}
	rest := s[len(gbrLevels[rank]):]
	if strings.HasPrefix(rest, "-"+gbrSensitive) {
		if rank > 0 {
			return fail(gbrLevels[rank]+"-"+gbrSensitive, "-SENSITIVE marks OFFICIAL only: it is not a tier")
		}
		l.Caveats = []string{gbrSensitive}
		rest = rest[len("-"+gbrSensitive):]
	}
	if rest == "" {
		return l, nil
	}
	if rest[0] != ' ' {
		w, _, _ := strings.Cut(s, " ")
		return fail(w, "unknown GBR level %q (levels: OFFICIAL, OFFICIAL-SENSITIVE, SECRET, TOP SECRET)", w)
	}
	rest = rest[1:]
	if rank == 0 && l.Caveats == nil && rest == gbrSensitive {
		return fail("OFFICIAL SENSITIVE", `"OFFICIAL SENSITIVE" is written "OFFICIAL-SENSITIVE"`)
	}
	for _, c := range gbrCaveats {
		after, ok := strings.CutPrefix(rest, c.name)
		if !ok || (after != "" && after[0] != ' ') {
			continue
		}
		if c.national && rank < 1 {
			return fail(c.name, "%s requires SECRET or above", c.name)
		}
		if after != "" {
			return fail(after[1:], "a second caveat %q: a GBR marking carries one caveat at most", after[1:])
		}
		l.AnyNation, l.Nations = false, c.nations
		return l, nil
	}
	return fail(rest, "unknown GBR caveat %q (caveats: UK EYES ONLY, UK/US EYES ONLY, FIVE EYES ONLY, REL EU)", rest)
}

func (gbrGrammar) format(l Label) string {
	var b strings.Builder
	b.WriteString("UK ")
	b.WriteString(l.Level.Name)
	if slices.Contains(l.Caveats, gbrSensitive) {
		b.WriteString("-" + gbrSensitive)
	}
	if !l.AnyNation {
		for _, c := range gbrCaveats {
			if slices.Equal(c.nations, l.Nations) {
				b.WriteString(" " + c.name)
				break
			}
		}
	}
	return b.String()
}

func (gbrGrammar) levels() []Level { return ladderLevels("", gbrLevels) }

func (gbrGrammar) words() []string {
	return []string{"OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", "TOP SECRET"}
}

// sortedUnion returns the sorted union of a and b.
func sortedUnion(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
