package label

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// The methods in this file assume valid labels: labels made by Parse, or
// by Join and Meet from valid labels. Validate checks one built by hand.

// Dominates reports whether l dominates o (DOMAIN.md §1.7): l's level is
// at least o's, l's controls include all of o's, and l's releasability
// is within o's (AnyNation being the widest). Dissemination controls
// other than NOFORN and REL TO do not take part: they do not change
// where a workload may run. Dominates is on the routing hot path: it
// does not allocate.
func (l Label) Dominates(o Label) bool {
	if l.Level < o.Level || !subset(o.Controls, l.Controls) {
		return false
	}
	switch {
	case o.AnyNation:
		return true
	case l.AnyNation:
		return false
	}
	return subset(l.Nations, o.Nations)
}

// ReleasableTo reports whether nation (an ISO 3166 trigraph) may have
// access to data labelled l. It does not allocate.
func (l Label) ReleasableTo(nation string) bool {
	if l.AnyNation {
		return true
	}
	return contains(l.Nations, nation)
}

// Equal reports whether l and o are the same label.
func (l Label) Equal(o Label) bool {
	return l.Level == o.Level && l.AnyNation == o.AnyNation &&
		slices.Equal(l.Controls, o.Controls) &&
		slices.Equal(l.Nations, o.Nations) &&
		slices.Equal(l.Dissem, o.Dissem)
}

// Classified reports whether l is CONFIDENTIAL or above.
func (l Label) Classified() bool { return l.Level >= Confidential }

// HasControl reports whether l carries control c ("SI-G", "SAR-BP",
// "SIGMA 20", "SP-EXPT").
func (l Label) HasControl(c string) bool {
	return contains(l.Controls, c)
}

// ExportCategory is the CUI specified category of export-controlled
// information (ITAR and EAR data marked CUI//SP-EXPT).
const ExportCategory = "SP-EXPT"

// ExportControlled reports whether l marks export-controlled data, that
// is whether it carries ExportCategory. Other categories that may touch
// export control (SP-NNPI and the like) are not counted: whether they
// require US persons is a policy decision, not a marking fact.
func (l Label) ExportControlled() bool { return l.HasControl(ExportCategory) }

// RequiresSCI reports whether l carries an SCI control (HCS, RSV, SI,
// TK or one of their compartments).
func (l Label) RequiresSCI() bool {
	for _, c := range l.Controls {
		if isSCI(c) {
			return true
		}
	}
	return false
}

// LogValue implements slog.LogValuer. It logs the level and counts only,
// never the names of controls or nations, as logs may be read by people
// not cleared for the compartments: level=SECRET controls=2 nations=3,
// or nations=any for AnyNation.
func (l Label) LogValue() slog.Value {
	nations := slog.Int("nations", len(l.Nations))
	if l.AnyNation {
		nations = slog.String("nations", "any")
	}
	return slog.GroupValue(
		slog.String("level", l.Level.String()),
		slog.Int("controls", len(l.Controls)),
		nations,
	)
}

// Validate reports whether l is a label Parse could have produced: a
// valid level, and a canonical banner that parses back to l. Labels
// built by hand (fixtures, decoded records) should pass it before use.
func (l Label) Validate() error {
	if !l.Level.Valid() {
		return fmt.Errorf("invalid label: invalid level %d", uint8(l.Level))
	}
	p, err := Parse(l.String())
	if err != nil {
		return fmt.Errorf("invalid label: %w", err)
	}
	if !p.Equal(l) {
		return fmt.Errorf("invalid label: not in canonical form (its banner %q reads back as a different label)", l.String())
	}
	return nil
}

// Join is the least upper bound of a and b, the label of data combined
// from both (the banner roll-up of CAPCO-2016 §D.2, DOMAIN.md §1.6):
//
//   - the higher level and the union of the controls;
//   - the intersection of the nations, AnyNation being the identity; an
//     empty intersection gives {USA} (NOFORN), though valid labels
//     always share USA;
//   - the union of the dissemination controls, except that RELIDO stays
//     only if both carry it (RELIDO needs a release decision for all the
//     information; Table 3 rules 10, 12, 17, 24), ORCON replaces
//     ORCON-USGOV and NODIS replaces EXDIS, and a DISPLAY ONLY list is
//     the intersection of both lists (Table 3 rules 19, 20, 25).
//
// RELIDO and DISPLAY ONLY need both sides, even when the other is
// UNCLASSIFIED: Join(UNCLASSIFIED, SECRET//RELIDO) is SECRET//NOFORN,
// the safe reading of rule 17. Rule 26 (DISPLAY ONLY joined with a REL
// TO naming the same country keeps DISPLAY ONLY for it) is not applied:
// the result is the more restrictive one, without DISPLAY ONLY. Join of
// two valid labels is valid.
func Join(a, b Label) Label {
	out := Label{Level: max(a.Level, b.Level), Controls: union(a.Controls, b.Controls)}
	switch {
	case a.AnyNation && b.AnyNation:
		out.AnyNation = true
	case a.AnyNation:
		out.Nations = b.Nations
	case b.AnyNation:
		out.Nations = a.Nations
	default:
		out.Nations = intersect(a.Nations, b.Nations)
	}
	if !out.AnyNation && len(out.Nations) == 0 {
		out.Nations = []string{USA}
	}
	out.Dissem = joinDissem(decodeDissem(a.Dissem), decodeDissem(b.Dissem), a.AnyNation, b.AnyNation).encode()
	return out
}

// Meet is the greatest lower bound of a and b: the lower level, the
// common controls, the union of the nations (AnyNation if either has
// it), and the dissemination controls dual to Join's: the common ones,
// RELIDO if either carries it, ORCON-USGOV over ORCON, EXDIS over
// NODIS, and the union of DISPLAY ONLY lists. Join and Meet obey the
// lattice laws, absorption included; the tests check them.
func Meet(a, b Label) Label {
	out := Label{Level: min(a.Level, b.Level), Controls: intersect(a.Controls, b.Controls)}
	if a.AnyNation || b.AnyNation {
		out.AnyNation = true
	} else {
		out.Nations = union(a.Nations, b.Nations)
	}
	m := meetDissem(decodeDissem(a.Dissem), decodeDissem(b.Dissem))
	if out.AnyNation {
		// An unrestricted result carries no US-audience control: such a
		// control would make it US-only (see Parse).
		m.relido, m.display = false, nil
		m.plain = slices.DeleteFunc(m.plain, isUSAudience)
	}
	out.Dissem = m.encode()
	return out
}

// subset reports whether sorted set a is a subset of sorted set b. It
// walks both in step, testing equality first (cheaper than ordering);
// when b is much longer than a (a few nations against NATO's 32) it
// binary-searches b instead.
func subset(a, b []string) bool {
	switch {
	case len(a) > len(b):
		return false
	case len(a) == len(b):
		return slices.Equal(a, b)
	case len(b) >= 8*len(a):
		for _, x := range a {
			if !contains(b, x) {
				return false
			}
		}
		return true
	}
	j := 0
	for _, x := range a {
		for {
			if len(b)-j < 1 {
				return false
			}
			y := b[j]
			j++
			if y == x {
				break
			}
			if y > x {
				return false
			}
		}
	}
	return true
}

// contains reports whether sorted set s holds x: a binary search making
// one ordered comparison per step (slices.BinarySearch makes two).
func contains(s []string, x string) bool {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m] < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(s) && s[lo] == x
}

// union returns the union of sorted sets a and b. It may return a or b.
func union(a, b []string) []string {
	switch {
	case len(a) == 0:
		return b
	case len(b) == 0 || slices.Equal(a, b):
		return a
	}
	out := make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := strings.Compare(a[i], b[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// intersect returns the intersection of sorted sets a and b, nil when empty.
func intersect(a, b []string) []string {
	var out []string
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := strings.Compare(a[i], b[j]); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// dissemSet is Label.Dissem taken apart for Join and Meet.
type dissemSet struct {
	plain   []string // entries combined as a plain set
	relido  bool
	orcon   int      // 0 none, 1 ORCON-USGOV, 2 ORCON
	dist    int      // 0 none, 1 EXDIS, 2 NODIS
	display []string // DISPLAY ONLY countries, sorted; nil when absent
}

func decodeDissem(ds []string) dissemSet {
	var s dissemSet
	for _, d := range ds {
		switch r := dissemRank(d); r {
		case rankRELIDO:
			s.relido = true
		case rankORCONUSGOV:
			s.orcon = max(s.orcon, 1)
		case rankORCON:
			s.orcon = 2
		case rankEXDIS:
			s.dist = max(s.dist, 1)
		case rankNODIS:
			s.dist = 2
		case rankDisplayOnly:
			s.display = strings.Split(strings.TrimPrefix(d, displayOnly+" "), ", ")
		default:
			s.plain = append(s.plain, d)
		}
	}
	return s
}

// joinDissem combines the dissemination controls of two labels. RELIDO
// survives only when both carry it; DISPLAY ONLY when every part carries
// it or is unrestricted (aAny, bAny): an unrestricted part does not
// limit who may view.
func joinDissem(a, b dissemSet, aAny, bAny bool) dissemSet {
	s := dissemSet{
		plain:  slices.Clone(a.plain),
		relido: a.relido && b.relido, // CAPCO roll-up rule 17: RELIDO with anything else is NOFORN
		orcon:  max(a.orcon, b.orcon),
		dist:   max(a.dist, b.dist),
	}
	switch {
	case aAny:
		s.display = b.display
	case bAny:
		s.display = a.display
	default:
		s.display = intersect(a.display, b.display)
	}
	for _, d := range b.plain {
		if !slices.Contains(s.plain, d) {
			s.plain = append(s.plain, d)
		}
	}
	return s
}

func meetDissem(a, b dissemSet) dissemSet {
	s := dissemSet{
		relido:  a.relido || b.relido,
		orcon:   min(a.orcon, b.orcon),
		dist:    min(a.dist, b.dist),
		display: union(a.display, b.display),
	}
	for _, d := range a.plain {
		if slices.Contains(b.plain, d) {
			s.plain = append(s.plain, d)
		}
	}
	return s
}

// encode returns the entries of s in banner order, nil when none.
func (s dissemSet) encode() []string {
	out := slices.Clone(s.plain)
	if s.relido {
		out = append(out, relido)
	}
	switch s.orcon {
	case 1:
		out = append(out, dissemOrder[rankORCONUSGOV])
	case 2:
		out = append(out, dissemOrder[rankORCON])
	}
	switch s.dist {
	case 1:
		out = append(out, dissemOrder[rankEXDIS])
	case 2:
		out = append(out, dissemOrder[rankNODIS])
	}
	if len(s.display) > 0 {
		out = append(out, displayOnly+" "+strings.Join(s.display, ", "))
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(x, y string) int {
		return cmp.Or(cmp.Compare(dissemRank(x), dissemRank(y)), cmp.Compare(x, y))
	})
	return out
}

// isUSAudience reports whether a plain dissemination control limits the
// audience to the USA.
func isUSAudience(d string) bool {
	switch dissemRank(d) {
	case rankFEDONLY, rankFEDCON, rankNOCON, rankDLONLY:
		return true
	}
	return false
}
