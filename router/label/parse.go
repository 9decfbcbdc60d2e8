package label

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// ParseError says why a banner marking was refused. Every error Parse
// returns is a *ParseError.
type ParseError struct {
	// Banner is the marking as given.
	Banner string
	// Part is the offending piece, upper-cased ("NF", "REL TO GBR, USA");
	// empty when the marking is empty.
	Part string
	// Reason says what is wrong, naming Part.
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("invalid marking %q: %s", e.Banner, e.Reason)
}

// MustParse is Parse for fixtures and tests: it panics if banner is invalid.
func MustParse(banner string) Label {
	l, err := Parse(banner)
	if err != nil {
		panic(err)
	}
	return l
}

// Parse parses a US banner marking,
//
//	CLASSIFICATION[//SCI][//SAP][//AEA][//SP-CATEGORIES][//DISSEM][//NON-IC DISSEM]
//
// where CLASSIFICATION is UNCLASSIFIED, CUI (or CONTROLLED), CONFIDENTIAL,
// SECRET or TOP SECRET, so that a CUI banner reads CUI[//SP-CAT[/CAT]][//LDC[/LDC]].
//
// Parse is strict: it refuses rather than guesses, and every refusal is a
// *ParseError naming the offending part. Only two things are forgiven:
// whitespace around the marking, and letter case (letters are
// upper-cased first, as operators paste banners from documents).
// Categories must come in the order above, each at most once; within a
// category the values may come in any order and String puts them in
// canonical order. Portion marks (S, NF, OC) are refused with their
// banner form, and so are non-US, JOINT and FGI markings, which are
// not supported.
//
// Releasability: NOFORN gives Nations {USA}; REL TO gives its list with
// tetragraphs (FVEY, ACGU, TEYE, NATO) expanded; a classified label with
// neither gives {USA} (fail closed); UNCLASSIFIED and CUI with neither
// give AnyNation. See String for the canonical form.
func Parse(banner string) (Label, error) {
	p := parser{banner: banner, controls: map[string]bool{}}
	return p.parse()
}

// parser holds the state of one Parse.
type parser struct {
	banner string
	level  Level
	last   category // the last category read

	controls map[string]bool

	have        [rankUnknown]bool // dissemination controls seen, by rank
	rel         []string          // REL TO list, expanded
	relText     string            // the REL TO value, for messages
	display     []string          // DISPLAY ONLY list, expanded
	displayText string
	nofornText  string // what carried NOFORN: "NOFORN", "SBU NOFORN" or "LES NOFORN"
}

func (p *parser) fail(part, format string, args ...any) error {
	return &ParseError{Banner: p.banner, Part: part, Reason: fmt.Sprintf(format, args...)}
}

func (p *parser) parse() (Label, error) {
	s := upperASCII(strings.TrimSpace(p.banner))
	if s == "" {
		return Label{}, p.fail("", "empty marking")
	}
	segs := strings.Split(s, "//")
	if segs[0] == "" {
		part := s
		if len(segs) > 1 && segs[1] != "" {
			part = "//" + segs[1]
		}
		return Label{}, p.fail(part, "non-US markings are not supported (%q)", part)
	}
	if err := p.parseLevel(segs[0]); err != nil {
		return Label{}, err
	}
	for i, seg := range segs[1:] {
		if seg == "" {
			if i == len(segs)-2 {
				return Label{}, p.fail("//", `trailing "//"`)
			}
			return Label{}, p.fail("////", `empty category between "//" separators`)
		}
		if err := p.parseCategory(seg); err != nil {
			return Label{}, err
		}
	}
	return p.finish()
}

func (p *parser) parseLevel(seg string) error {
	switch seg {
	case "UNCLASSIFIED":
		p.level = Unclassified
	case "CUI", "CONTROLLED":
		p.level = CUI
	case "CONFIDENTIAL":
		p.level = Confidential
	case "SECRET":
		p.level = Secret
	case "TOP SECRET":
		p.level = TopSecret
	default:
		switch {
		case seg[0] == ' ' || strings.Contains(seg, "  ") || strings.HasSuffix(seg, " "):
			return p.fail(seg, "unexpected space in %q", seg)
		case seg == "TS" || seg == "S" || seg == "C" || seg == "U":
			return p.fail(seg, "%q is a portion marking; the banner form is %s", seg, portionForms[seg])
		case isNonUSLevel(seg):
			return p.fail(seg, "non-US markings are not supported (%q)", seg)
		case strings.Contains(seg, "/"):
			return p.fail(seg, `%q: categories are separated by "//"`, seg)
		}
		return p.fail(seg, "unknown classification level %q", seg)
	}
	p.last = catLevel
	return nil
}

// isNonUSLevel reports whether seg is a non-US, NATO or JOINT
// classification written without the leading "//".
func isNonUSLevel(seg string) bool {
	if nonUSLevels[seg] {
		return true
	}
	for _, p := range [...]string{"NATO ", "JOINT ", "COSMIC ", "FGI "} {
		if strings.HasPrefix(seg, p) {
			return true
		}
	}
	// "GBR SECRET", "NATO SECRET"
	if i := strings.IndexByte(seg, ' '); i > 0 {
		_, tetra := tetragraphs[seg[:i]]
		return IsCountry(seg[:i]) || tetra
	}
	return false
}

// parseCategory parses one "//"-separated category.
func (p *parser) parseCategory(seg string) error {
	if strings.Contains(seg, "EYES ONLY") {
		return p.fail(seg, "EYES ONLY is retired (%q); use REL TO", seg)
	}
	values := strings.Split(seg, "/")
	for i, v := range values {
		if v == "" {
			switch {
			case i == len(values)-1:
				return p.fail(seg, "trailing %q in %q", "/", seg)
			case i == 0:
				return p.fail(seg, "leading %q in %q", "/", seg)
			}
			return p.fail(seg, "empty value between %q separators in %q", "/", seg)
		}
		if err := p.checkChars(v); err != nil {
			return err
		}
	}
	cat, why := classify(values[0])
	switch {
	case why != "":
		return p.fail(values[0], "%s", why)
	case cat == catUnknown:
		return p.unknown(values[0], p.last >= catDissem)
	case cat < p.last:
		return p.fail(seg, "%s markings must come before %s markings", cat, p.last)
	case cat == p.last:
		return p.fail(seg, "a second %s category; values of one category are separated by %q", cat, "/")
	}
	p.last = cat
	for i, v := range values {
		if slices.Contains(values[:i], v) {
			return p.fail(v, "duplicate %q", v)
		}
		c, why := classify(v)
		switch {
		case why != "":
			return p.fail(v, "%s", why)
		case c == cat:
		case cat == catSAP && c == catUnknown:
			// A further program of "SAR-BP/CD".
		case c == catUnknown:
			return p.unknown(v, cat >= catDissem)
		case cat == catSAP:
			return p.fail(v, "%q belongs to the %s category, not SAP; separate categories with %q (a program named %s is written %s%s)", v, c, "//", v, sapPrefix, v)
		default:
			return p.fail(v, "%q belongs to the %s category, not %s; separate categories with %q", v, c, cat, "//")
		}
		var err error
		switch cat {
		case catSCI:
			err = p.parseSCI(v)
		case catSAP:
			err = p.parseSAP(v)
		case catAEA:
			err = p.parseAEA(v)
		case catCUI:
			err = p.parseCUI(v)
		case catDissem, catNonIC:
			err = p.parseDissem(v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) unknown(v string, dissem bool) error {
	switch {
	case dissem:
		return p.fail(v, "unknown dissemination control %q", v)
	case p.level == CUI:
		return p.fail(v, "unknown control %q (CUI basic category markings are not recognised; specified categories are written SP-...)", v)
	}
	return p.fail(v, "unknown control %q", v)
}

// checkChars refuses characters no marking value uses, and stray spaces.
func (p *parser) checkChars(v string) error {
	for _, r := range v {
		if !('A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == ' ' || r == '-' || r == ',') {
			if r == utf8.RuneError {
				return p.fail(v, "invalid UTF-8 in %q", v)
			}
			return p.fail(v, "unexpected character %q in %q", r, v)
		}
	}
	if v[0] == ' ' || v[len(v)-1] == ' ' || strings.Contains(v, "  ") {
		return p.fail(v, "unexpected space in %q", v)
	}
	return nil
}

// classify says which category value v belongs to, from its spelling
// alone, or why v is refused wherever it appears (a portion mark, a
// non-US or retired marking).
func classify(v string) (category, string) {
	if form, ok := portionForms[v]; ok {
		return catUnknown, fmt.Sprintf("%q is a portion marking; the banner form is %s", v, form)
	}
	switch {
	case strings.HasPrefix(v, "SG "):
		return catUnknown, fmt.Sprintf("%q is a portion marking; the banner form is SIGMA [#]", v)
	case v == "EYES" || strings.Contains(v, "EYES ONLY"):
		return catUnknown, fmt.Sprintf("EYES ONLY is retired (%q); use REL TO", v)
	case v == "FGI" || strings.HasPrefix(v, "FGI ") || nonUSControls[v]:
		return catUnknown, fmt.Sprintf("non-US markings are not supported (%q)", v)
	case v == "SAR" || strings.HasPrefix(v, sapPrefix):
		return catSAP, ""
	case v == "SP" || strings.HasPrefix(v, cuiPrefix):
		return catCUI, ""
	}
	head := v
	if i := strings.IndexAny(v, "- "); i >= 0 {
		head = v[:i]
	}
	if slices.Contains(sciSystems[:], head) {
		return catSCI, ""
	}
	if _, ok := aeaMarkings[v]; ok || head == "RD" || head == "FRD" || head == sigma || v == cnwdi {
		return catAEA, ""
	}
	if v == relTo || strings.HasPrefix(v, relTo+" ") || v == displayOnly || strings.HasPrefix(v, displayOnly+" ") {
		return catDissem, ""
	}
	if _, ok := noforNonIC[v]; ok {
		return catNonIC, ""
	}
	switch r := dissemRank(v); {
	case r < rankFirstNonIC:
		return catDissem, ""
	case r < rankUnknown:
		return catNonIC, ""
	}
	return catUnknown, ""
}

// addControl records control c, which needs at least level min.
func (p *parser) addControl(part, c string, min Level) error {
	if p.level < min {
		return p.fail(part, "%q needs %s; the banner is %s", c, atLeast(min), p.level)
	}
	p.controls[c] = true
	return nil
}

func atLeast(l Level) string {
	if l == TopSecret {
		return l.String()
	}
	return l.String() + " or above"
}

// sciRule says what an SCI compartment is and what it allows.
type sciRule struct {
	canon  string // the compartment as stored ("ECRU" for "EU")
	min    Level  // least level for the compartment
	subMin Level  // least level for its sub-compartments
	subLo  int    // sub-compartment length bounds; subHi 0: none allowed
	subHi  int
}

// sciCompartment looks up compartment comp of control system sys
// (CAPCO-2016 Register, Table 4; level limits from §H.4).
func sciCompartment(sys, comp string) (sciRule, bool) {
	switch sys {
	case "HCS":
		switch comp {
		case "O":
			return sciRule{canon: comp, min: Secret}, true
		case "P":
			return sciRule{canon: comp, min: Secret, subMin: TopSecret, subLo: 1, subHi: 6}, true
		}
	case "RSV":
		if alnum(comp, 1, 3) {
			return sciRule{canon: comp, min: Secret}, true
		}
	case "SI":
		switch comp {
		case "G":
			return sciRule{canon: comp, min: TopSecret, subMin: TopSecret, subLo: 4, subHi: 4}, true
		case "ECRU", "EU":
			return sciRule{canon: "ECRU", min: TopSecret}, true
		case "NONBOOK", "NK":
			return sciRule{canon: "NONBOOK", min: TopSecret}, true
		}
		if alnum(comp, 2, 3) {
			return sciRule{canon: comp, min: TopSecret}, true
		}
	case "TK":
		switch comp {
		case "BLFH":
			return sciRule{canon: comp, min: TopSecret, subMin: TopSecret, subLo: 1, subHi: 6}, true
		case "IDIT", "KAND":
			return sciRule{canon: comp, min: Secret, subMin: Secret, subLo: 1, subHi: 6}, true
		}
	}
	return sciRule{}, false
}

// alnum reports whether s is lo to hi (0: no limit) letters and digits.
func alnum(s string, lo, hi int) bool {
	if len(s) < lo || (hi > 0 && len(s) > hi) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// parseSCI parses one SCI value: SYS[-COMP[ SUB...]]... ("SI-G ABCD-XYZ").
// A compartment implies its system and a sub-compartment its compartment,
// so "SI-G ABCD" gives the controls SI, SI-G and "SI-G ABCD".
func (p *parser) parseSCI(v string) error {
	parts := strings.Split(v, "-")
	sys := parts[0]
	if !slices.Contains(sciSystems[:], sys) {
		return p.fail(v, "unknown control %q", v)
	}
	switch {
	case sys == "HCS" && len(parts) == 1:
		return p.fail(v, "HCS requires a compartment (HCS-O or HCS-P)")
	case sys == "RSV" && len(parts) == 1:
		return p.fail(v, "RSV requires a compartment (RSV-XXX)")
	case sys == "SI":
		if err := p.addControl(v, sys, Confidential); err != nil {
			return err
		}
	case sys == "TK":
		if err := p.addControl(v, sys, Secret); err != nil {
			return err
		}
	}
	var seen []string
	for _, part := range parts[1:] {
		if part == "" {
			return p.fail(v, "empty compartment in %q", v)
		}
		fields := strings.Split(part, " ")
		rule, ok := sciCompartment(sys, fields[0])
		if !ok {
			return p.fail(v, "unknown control %q", sys+"-"+fields[0])
		}
		c := sys + "-" + rule.canon
		if slices.Contains(seen, c) {
			return p.fail(v, "duplicate compartment %q in %q", c, v)
		}
		seen = append(seen, c)
		if err := p.addControl(v, c, rule.min); err != nil {
			return err
		}
		for i, sub := range fields[1:] {
			if rule.subHi == 0 {
				return p.fail(v, "unknown control %q (%s has no sub-compartments)", c+" "+sub, c)
			}
			if !alnum(sub, rule.subLo, rule.subHi) {
				return p.fail(v, "invalid sub-compartment %q of %s (%s letters or digits)", sub, c, lengths(rule.subLo, rule.subHi))
			}
			if slices.Contains(fields[1:i+1], sub) {
				return p.fail(v, "duplicate sub-compartment %q in %q", sub, v)
			}
			if err := p.addControl(v, c+" "+sub, rule.subMin); err != nil {
				return err
			}
		}
	}
	return nil
}

func lengths(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

// parseSAP parses one SAP value, "SAR-PROGRAM[-COMP[ SUB...]]...", or a
// further program of the same category written without "SAR-" ("CD" in
// "SAR-BP/CD"). A program identifier may be several words ("SAR-RED
// WAGON"). As for SCI, compartments imply their program.
func (p *parser) parseSAP(v string) error {
	rest, ok := strings.CutPrefix(v, sapPrefix)
	if v == "SAR" || (ok && rest == "") {
		return p.fail(v, "SAR requires a program identifier (SAR-XX)")
	}
	parts := strings.Split(rest, "-")
	prog := parts[0]
	for _, w := range strings.Split(prog, " ") {
		if !alnum(w, 1, 0) {
			return p.fail(v, "malformed SAP program identifier %q", prog)
		}
	}
	base := sapPrefix + prog
	if err := p.addControl(v, base, Confidential); err != nil {
		return err
	}
	var seen []string
	for _, part := range parts[1:] {
		fields := strings.Split(part, " ")
		if !alnum(fields[0], 1, 0) {
			return p.fail(v, "malformed SAP compartment %q in %q", part, v)
		}
		c := base + "-" + fields[0]
		if slices.Contains(seen, c) {
			return p.fail(v, "duplicate compartment %q in %q", c, v)
		}
		seen = append(seen, c)
		if err := p.addControl(v, c, Confidential); err != nil {
			return err
		}
		for i, sub := range fields[1:] {
			if !alnum(sub, 1, 0) || slices.Contains(fields[1:i+1], sub) {
				return p.fail(v, "malformed or duplicate sub-compartment %q in %q", sub, v)
			}
			if err := p.addControl(v, c+" "+sub, Confidential); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseAEA parses one AEA value: RD[-CNWDI][-SIGMA n...], FRD[-SIGMA
// n...], SIGMA n..., DOD UCNI, DOE UCNI, TFNI or ATOMAL. CNWDI and each
// SIGMA number are controls of their own ("SIGMA 20").
func (p *parser) parseAEA(v string) error {
	if min, ok := aeaMarkings[v]; ok {
		return p.addControl(v, v, min)
	}
	if v == cnwdi {
		return p.fail(v, "CNWDI is a sub-marking of RD; the banner form is RD-CNWDI")
	}
	if v == sigma || strings.HasPrefix(v, sigmaSpace) {
		return p.parseSigma(v, v)
	}
	parts := strings.Split(v, "-")
	head := parts[0]
	if head != "RD" && head != "FRD" {
		return p.fail(v, "unknown control %q", v)
	}
	if err := p.addControl(v, head, Confidential); err != nil {
		return err
	}
	for i, sub := range parts[1:] {
		if slices.Contains(parts[1:i+1], sub) {
			return p.fail(v, "duplicate %q in %q", sub, v)
		}
		var err error
		switch {
		case sub == cnwdi && head == "RD":
			err = p.addControl(v, cnwdi, Secret)
		case sub == cnwdi:
			err = p.fail(v, "CNWDI is a sub-marking of RD, not of FRD")
		case sub == sigma || strings.HasPrefix(sub, sigmaSpace):
			err = p.parseSigma(sub, v)
		case sub == "SG" || strings.HasPrefix(sub, "SG "):
			err = p.fail(v, "%q is a portion marking; the banner form is SIGMA [#]", sub)
		default:
			err = p.fail(v, "unknown control %q", head+"-"+sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseSigma parses "SIGMA n[ n...]", numbers 1 to 99, within value v.
func (p *parser) parseSigma(s, v string) error {
	nums := strings.Split(strings.TrimPrefix(s, sigma), " ")[1:]
	if len(nums) == 0 {
		return p.fail(v, "SIGMA needs a number (SIGMA 14)")
	}
	for i, n := range nums {
		if !isSigmaNumber(n) {
			return p.fail(v, "invalid SIGMA number %q in %q", n, v)
		}
		if slices.Contains(nums[:i], n) {
			return p.fail(v, "duplicate SIGMA number %q in %q", n, v)
		}
		if err := p.addControl(v, sigmaSpace+n, Secret); err != nil {
			return err
		}
	}
	return nil
}

func isSigmaNumber(n string) bool {
	switch len(n) {
	case 1:
		return '1' <= n[0] && n[0] <= '9'
	case 2:
		return '1' <= n[0] && n[0] <= '9' && '0' <= n[1] && n[1] <= '9'
	}
	return false
}

// parseCUI parses a CUI specified category, "SP-" and letters.
func (p *parser) parseCUI(v string) error {
	rest, ok := strings.CutPrefix(v, cuiPrefix)
	if !ok {
		rest = ""
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < 'A' || rest[i] > 'Z' {
			rest = ""
		}
	}
	if rest == "" {
		return p.fail(v, "malformed CUI specified category %q (want SP- and letters, as in SP-EXPT)", v)
	}
	return p.addControl(v, v, CUI)
}

// parseDissem parses an IC or non-IC dissemination control or a CUI
// limited dissemination control.
func (p *parser) parseDissem(v string) error {
	switch {
	case v == relTo:
		return p.fail(v, "REL TO needs a country list (REL TO USA, GBR)")
	case strings.HasPrefix(v, relTo+" "):
		if p.relText != "" {
			return p.fail(v, "a second REL TO (%q)", v)
		}
		list, err := p.countries(v, v[len(relTo)+1:], true)
		p.rel, p.relText = list, v
		return err
	case v == displayOnly:
		return p.fail(v, "DISPLAY ONLY needs a country list (DISPLAY ONLY GBR)")
	case strings.HasPrefix(v, displayOnly+" "):
		if p.displayText != "" {
			return p.fail(v, "a second DISPLAY ONLY (%q)", v)
		}
		list, err := p.countries(v, v[len(displayOnly)+1:], false)
		p.display, p.displayText = list, v
		p.have[rankDisplayOnly] = true
		return err
	}
	if base, ok := noforNonIC[v]; ok {
		if p.nofornText == "" {
			p.nofornText = v
		}
		return p.addDissem(v, base)
	}
	if v == noforn {
		if p.nofornText == "" {
			p.nofornText = v
		}
		return nil
	}
	if min, ok := dissemMinLevel[v]; ok && p.level < min {
		return p.fail(v, "%q needs %s; the banner is %s", v, atLeast(min), p.level)
	}
	return p.addDissem(v, v)
}

func (p *parser) addDissem(part, d string) error {
	r := dissemRank(d)
	if p.have[r] {
		return p.fail(part, "duplicate %q", d)
	}
	p.have[r] = true
	return nil
}

// countries parses the ", "-separated list of a REL TO (rel) or DISPLAY
// ONLY value v and returns it expanded, sorted and without duplicates.
// A REL TO list starts with USA; a DISPLAY ONLY list names only foreign
// countries, so the USA of an expanded tetragraph is dropped.
func (p *parser) countries(v, list string, rel bool) ([]string, error) {
	items := strings.Split(list, ", ")
	var out []string
	for i, c := range items {
		switch {
		case c == "" || strings.ContainsAny(c, ", "):
			return nil, p.fail(v, "countries are separated by %q in %q", ", ", v)
		case slices.Contains(items[:i], c):
			return nil, p.fail(v, "duplicate country %q in %q", c, v)
		case rel && i == 0 && c != USA:
			return nil, p.fail(v, "REL TO must list USA first")
		case !rel && c == USA:
			return nil, p.fail(v, "DISPLAY ONLY lists foreign countries; remove %q", USA)
		}
		if members, ok := tetragraphs[c]; ok {
			out = append(out, members...)
		} else if IsCountry(c) {
			out = append(out, c)
		} else {
			return nil, p.fail(c, "unknown country code %q", c)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if !rel {
		out = slices.DeleteFunc(out, func(c string) bool { return c == USA })
	}
	return out, nil
}

// finish checks the rules that span values and builds the label.
func (p *parser) finish() (Label, error) {
	if p.nofornText != "" {
		switch {
		case p.relText != "":
			return Label{}, p.fail(p.relText, "%s cannot be combined with REL TO", p.nofornText)
		case p.have[rankRELIDO]:
			return Label{}, p.fail(relido, "%s cannot be combined with RELIDO", p.nofornText)
		case p.displayText != "":
			return Label{}, p.fail(p.displayText, "%s cannot be combined with DISPLAY ONLY", p.nofornText)
		}
	}
	if p.have[rankORCON] && p.have[rankORCONUSGOV] {
		return Label{}, p.fail("ORCON-USGOV", "ORCON cannot be combined with ORCON-USGOV")
	}
	if p.have[rankEXDIS] && p.have[rankNODIS] {
		return Label{}, p.fail("NODIS", "EXDIS cannot be combined with NODIS")
	}

	l := Label{Level: p.level}
	if len(p.controls) > 0 {
		l.Controls = make([]string, 0, len(p.controls))
		for c := range p.controls {
			l.Controls = append(l.Controls, c)
		}
		slices.Sort(l.Controls)
	}
	switch {
	case p.nofornText != "":
		l.Nations = []string{USA}
	case p.relText != "":
		l.Nations = p.rel
	case p.level >= Confidential:
		l.Nations = []string{USA}
	default:
		l.AnyNation = true
	}
	// A foreign-disclosure or US-audience control makes even unclassified
	// data US-only (fail closed): RELIDO is not yet released, DISPLAY
	// ONLY lets foreign nations view but not hold, FED ONLY, FEDCON,
	// NOCON and DL ONLY name US audiences.
	if l.AnyNation && p.usAudience() {
		l.AnyNation, l.Nations = false, []string{USA}
	}
	for r, ok := range p.have {
		switch {
		case !ok:
		case r == rankDisplayOnly:
			l.Dissem = append(l.Dissem, displayOnly+" "+strings.Join(p.display, ", "))
		default:
			l.Dissem = append(l.Dissem, dissemOrder[r])
		}
	}
	return l, nil
}

// upperASCII upper-cases the ASCII letters of s and nothing else, so
// that no other character folds into a marking letter.
func upperASCII(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'a' <= r && r <= 'z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if 'a' <= b[i] && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// usAudience reports whether a control seen limits the audience to the
// USA: RELIDO, DISPLAY ONLY, FED ONLY, FEDCON, NOCON or DL ONLY.
func (p *parser) usAudience() bool {
	for _, r := range [...]int{rankRELIDO, rankDisplayOnly, rankFEDONLY, rankFEDCON, rankNOCON, rankDLONLY} {
		if p.have[r] {
			return true
		}
	}
	return false
}
