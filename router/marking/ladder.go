package marking

import (
	"slices"
	"strings"
)

// ladderGrammar reads schemes whose markings are a level word alone, on
// one or more axes: Canada, New Zealand and Kenya. Their labels carry no
// caveats and restrict no nationality (AnyNation).
type ladderGrammar struct {
	scheme Scheme
	axes   []axis
	// hints answer common misspellings.
	hints map[string]string
}

// axis is one ladder of levels, low to high.
type axis struct {
	name   string
	levels []string
}

// canGrammar: Canada's two axes (TBS Policy on Government Security;
// DOMAIN.md §6.1): Protected A < B < C for injury outside the national
// interest, CONFIDENTIAL < SECRET < TOP SECRET for the national
// interest. A level of one axis neither dominates nor is dominated by a
// level of the other.
var canGrammar = ladderGrammar{
	scheme: CAN,
	axes: []axis{
		{"PROTECTED", []string{"PROTECTED A", "PROTECTED B", "PROTECTED C"}},
		{"CLASSIFIED", []string{"CONFIDENTIAL", "SECRET", "TOP SECRET"}},
	},
	hints: map[string]string{
		"PROTECTED": `"PROTECTED" needs its tier: PROTECTED A, PROTECTED B or PROTECTED C`,
	},
}

// nzlGrammar: New Zealand's Protective Security Requirements (DOMAIN.md
// §6.1): IN-CONFIDENCE < SENSITIVE for policy and privacy, RESTRICTED <
// CONFIDENTIAL < SECRET < TOP SECRET for national security; the two axes
// are incomparable. Endorsements are not levels and are not read.
var nzlGrammar = ladderGrammar{
	scheme: NZL,
	axes: []axis{
		{"POLICY AND PRIVACY", []string{"IN-CONFIDENCE", "SENSITIVE"}},
		{"NATIONAL SECURITY", []string{"RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"}},
	},
	hints: map[string]string{
		"IN CONFIDENCE": `"IN CONFIDENCE" is written "IN-CONFIDENCE"`,
	},
}

func (g ladderGrammar) parse(m string) (Label, error) {
	s := upperASCII(strings.TrimSpace(m))
	for _, a := range g.axes {
		if r := slices.Index(a.levels, s); r >= 0 {
			return Label{
				Scheme:     g.scheme,
				Level:      Level{Name: s, Axis: a.name, Rank: r},
				AnyNation:  true,
				Originator: originators[g.scheme],
			}, nil
		}
	}
	if h, ok := g.hints[s]; ok {
		return Label{}, errorf(g.scheme, m, s, "%s", h)
	}
	return Label{}, errorf(g.scheme, m, s, "unknown %s level %q (levels: %s)", g.scheme, s, g.levelList())
}

// levelList writes the axes: "PROTECTED A < PROTECTED B; CONFIDENTIAL < SECRET".
func (g ladderGrammar) levelList() string {
	parts := make([]string, len(g.axes))
	for i, a := range g.axes {
		parts[i] = strings.Join(a.levels, " < ")
	}
	return strings.Join(parts, "; ")
}

func (g ladderGrammar) format(l Label) string { return l.Level.Name }

func (g ladderGrammar) levels() []Level {
	var ls []Level
	for _, a := range g.axes {
		ls = append(ls, ladderLevels(a.name, a.levels)...)
	}
	return ls
}

// ladderLevels returns the levels of one axis, low to high.
func ladderLevels(axis string, names []string) []Level {
	ls := make([]Level, len(names))
	for i, n := range names {
		ls[i] = Level{Name: n, Axis: axis, Rank: i}
	}
	return ls
}

func (g ladderGrammar) words() []string {
	var w []string
	for _, a := range g.axes {
		w = append(w, a.levels...)
	}
	for h := range g.hints {
		w = append(w, h)
	}
	slices.Sort(w)
	return w
}
