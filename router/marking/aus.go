package marking

import (
	"slices"
	"strings"

	"github.com/classroute/classroute/router/label"
)

// ausGrammar reads Australian markings in the form of the Email
// Protective Marking Standard (PSPF Policy 8; DOMAIN.md §6.1):
//
//	[SEC=LEVEL, CAVEAT=KIND:VALUE, ...]
//
// with its fixed field order: SEC first, then the CAVEAT fields by kind
// in the order C (codeword), FG (foreign government), SH (special
// handling: CABINET, NATIONAL-CABINET, ACCOUNTABLE-MATERIAL,
// EXCLUSIVE-FOR name) and RI (releasability: AGAO, AUSTEO, or REL with a
// "/"-separated list of trigraphs). The subject-line fields that follow
// the caveats (EXPIRES, DOWNTO, ACCESS, NOTE, ORIGIN) are not part of a
// label and are refused. The levels, low to high, are
//
//	UNOFFICIAL < OFFICIAL < OFFICIAL:Sensitive < PROTECTED < SECRET < TOP-SECRET
//
// where UNOFFICIAL and OFFICIAL are valid markings but not
// classifications. Caveats need PROTECTED or above, except
// SH:NATIONAL-CABINET, which OFFICIAL:Sensitive may carry. With the
// scheme given, a bare level in text form ("PROTECTED", "TOP SECRET",
// "OFFICIAL: Sensitive") is read too; String writes the EPMS form.
//
// Releasability: RI:AUSTEO gives Nations {AUS}; RI:REL its list and AUS;
// RI:AGAO (Australian Government access only) is kept as a caveat and
// gives Nations {AUS} (fail closed: the secondees it admits are not
// modelled). One RI caveat at most. Without one the label has AnyNation.
type ausGrammar struct{}

var ausLevels = []string{"UNOFFICIAL", "OFFICIAL", "OFFICIAL:Sensitive", "PROTECTED", "SECRET", "TOP-SECRET"}

const (
	ausProtected   = 3
	ausOfficialSen = 2
	ausNatCabinet  = "SH:NATIONAL-CABINET"
	ausAGAO        = "RI:AGAO"
	ausLevelList   = "UNOFFICIAL, OFFICIAL, OFFICIAL:Sensitive, PROTECTED, SECRET, TOP-SECRET"
)

// ausKinds are the caveat kinds in field order.
var ausKinds = []string{"C", "FG", "SH", "RI"}

// ausLevel returns the rank of an upper-cased EPMS level, or -1.
func ausLevel(v string) int {
	if after, ok := strings.CutPrefix(v, "OFFICIAL:"); ok && strings.TrimLeft(after, " ") == "SENSITIVE" {
		return ausOfficialSen
	}
	for i, n := range ausLevels {
		if upperASCII(n) == v {
			return i
		}
	}
	return -1
}

func (ausGrammar) parse(m string) (Label, error) {
	s := upperASCII(strings.TrimSpace(m))
	fail := func(part, format string, args ...any) (Label, error) {
		return Label{}, errorf(AUS, m, part, format, args...)
	}
	l := Label{Scheme: AUS, AnyNation: true, Originator: originators[AUS]}
	if !strings.HasPrefix(s, "[") {
		// A bare level in text form.
		r := ausLevel(s)
		if s == "TOP SECRET" {
			r = len(ausLevels) - 1
		}
		if r < 0 {
			if strings.HasPrefix(s, "VER=") || strings.HasPrefix(s, "SEC=") {
				return fail(s, `the X-Protective-Marking header form is not read: give the subject form "[SEC=...]"`)
			}
			if strings.ContainsAny(s, "=,") || strings.Contains(s, "CAVEAT") {
				return fail(s, `AUS markings with caveats are written in EPMS form "[SEC=..., CAVEAT=...]"`)
			}
			return fail(s, "unknown AUS level %q (levels: %s)", s, ausLevelList)
		}
		l.Level = Level{Name: ausLevels[r], Rank: r}
		return l, nil
	}
	inner, ok := strings.CutSuffix(s[1:], "]")
	if !ok {
		return fail(s, `an EPMS marking ends with "]"`)
	}
	fields := strings.Split(inner, ",")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	sec, ok := strings.CutPrefix(fields[0], "SEC=")
	if !ok {
		return fail(fields[0], "the first EPMS field is SEC=, not %q", fields[0])
	}
	r := ausLevel(sec)
	if r < 0 {
		if sec == "TOP SECRET" {
			return fail(sec, `EPMS writes "TOP-SECRET"`)
		}
		return fail(sec, "unknown AUS level %q (levels: %s)", sec, ausLevelList)
	}
	l.Level = Level{Name: ausLevels[r], Rank: r}
	kind, rel := -1, false // the last caveat kind read; whether it was RI:REL
	var ri string
	for _, f := range fields[1:] {
		key, val, hasEq := strings.Cut(f, "=")
		switch {
		case f == "":
			return fail(inner, "empty EPMS field in %q", inner)
		case !hasEq && rel:
			return fail(f, `EPMS REL lists are separated by "/"`)
		case !hasEq:
			return fail(f, "EPMS field %q is not KEY=VALUE", f)
		case key == "SEC":
			return fail(f, "a second SEC= field %q", f)
		case key != "CAVEAT":
			return fail(key, "EPMS field %s= is not part of a label: give the SEC= and CAVEAT= fields only", key)
		}
		k, v, ok := strings.Cut(val, ":")
		ki := slices.Index(ausKinds, k)
		switch {
		case !ok || ki < 0:
			return fail(val, "unknown EPMS caveat kind in %q (kinds: C, FG, SH, RI)", val)
		case ki < kind:
			return fail(f, "EPMS caveats come in the order C, FG, SH, RI: %q is out of order", f)
		case v == "":
			return fail(f, "empty caveat %q", f)
		}
		kind, rel = ki, false
		c := k + ":" + v
		if r < ausProtected && !(c == ausNatCabinet && r >= ausOfficialSen) {
			if c == ausNatCabinet {
				return fail(f, "CAVEAT=%s requires OFFICIAL:Sensitive or above", c)
			}
			return fail(f, "CAVEAT=%s requires PROTECTED or above", c)
		}
		switch k {
		case "C", "FG":
			if why := ausText(v); why != "" {
				return fail(v, "%s", why)
			}
		case "SH":
			switch name, ok := strings.CutPrefix(v, "EXCLUSIVE-FOR "); {
			case ok:
				if why := ausText(name); why != "" {
					return fail(v, "%s", why)
				}
			case v == "CABINET", v == "NATIONAL-CABINET", v == "ACCOUNTABLE-MATERIAL":
			default:
				return fail(v, "unknown EPMS special-handling caveat %q (SH: CABINET, NATIONAL-CABINET, ACCOUNTABLE-MATERIAL, EXCLUSIVE-FOR name)", v)
			}
		case "RI":
			if ri != "" {
				return fail(f, "a second RI caveat %q: an EPMS marking carries one at most", f)
			}
			ri = c
			switch list, isRel := strings.CutPrefix(v, "REL "); {
			case v == "AUSTEO":
				l.AnyNation, l.Nations = false, []string{"AUS"}
				continue
			case v == "AGAO":
				l.AnyNation, l.Nations = false, []string{"AUS"}
			case isRel:
				rel = true
				ns, err := ausRel(list)
				if err != "" {
					return fail(list, "%s", err)
				}
				l.AnyNation, l.Nations = false, ns
				continue
			default:
				return fail(v, "unknown EPMS releasability caveat %q (RI: AGAO, AUSTEO, REL list)", v)
			}
		}
		if slices.Contains(l.Caveats, c) {
			return fail(f, "duplicate %q", f)
		}
		l.Caveats = append(l.Caveats, c)
	}
	slices.Sort(l.Caveats)
	return l, nil
}

// ausRel reads the list of an RI:REL caveat, returning the nations with
// AUS added, or why the list is refused.
func ausRel(list string) ([]string, string) {
	if strings.ContainsAny(list, " ,") {
		return nil, `EPMS REL lists are separated by "/"`
	}
	ns := []string{"AUS"}
	for i, c := range strings.Split(list, "/") {
		switch {
		case !label.IsCountry(c):
			return nil, "unknown country code " + quote(c) + " in REL " + list
		case slices.Contains(strings.Split(list, "/")[:i], c):
			return nil, "duplicate " + quote(c) + " in REL " + list
		}
		ns = append(ns, c)
	}
	slices.Sort(ns)
	return slices.Compact(ns), ""
}

// ausText checks the free text of a codeword, foreign-government caveat
// or EXCLUSIVE-FOR name: letters, digits, "-" and single spaces.
func ausText(v string) string {
	if strings.HasPrefix(v, " ") || strings.HasSuffix(v, " ") || strings.Contains(v, "  ") {
		return "unexpected space in " + quote(v)
	}
	for _, r := range v {
		if !('A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == ' ') {
			return "invalid character " + quote(string(r)) + " in " + quote(v)
		}
	}
	return ""
}

func (ausGrammar) format(l Label) string {
	var b strings.Builder
	b.WriteString("[SEC=")
	b.WriteString(l.Level.Name)
	for _, k := range ausKinds[:3] {
		for _, c := range l.Caveats {
			if strings.HasPrefix(c, k+":") {
				b.WriteString(", CAVEAT=" + c)
			}
		}
	}
	switch {
	case slices.Contains(l.Caveats, ausAGAO):
		b.WriteString(", CAVEAT=" + ausAGAO)
	case l.AnyNation:
	case slices.Equal(l.Nations, []string{"AUS"}):
		b.WriteString(", CAVEAT=RI:AUSTEO")
	default:
		b.WriteString(", CAVEAT=RI:REL " + strings.Join(l.Nations, "/"))
	}
	b.WriteString("]")
	return b.String()
}

func (ausGrammar) levels() []Level { return ladderLevels("", ausLevels) }

func (ausGrammar) words() []string {
	return []string{"UNOFFICIAL", "OFFICIAL", "OFFICIAL:SENSITIVE", "OFFICIAL: SENSITIVE", "PROTECTED", "SECRET", "TOP-SECRET", "TOP SECRET"}
}
