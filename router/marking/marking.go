// Package marking reads, writes and compares security labels of every
// national classification scheme the router knows (DOMAIN.md §6): a
// label is (scheme, level, caveats, releasability, originator), and no
// label is ever read in a scheme it was not written in.
//
// # Schemes
//
// A Scheme names the authority whose rules a marking follows: US (CAPCO,
// whose grammar stays in router/label; a US Label wraps a label.Label),
// GBR (UK Government Security Classifications), AUS (PSPF and the Email
// Protective Marking Standard), NATO (C-M(2002)49), CAN, NZL, EU (Council
// Decision 2013/488) and KEN (Kenya, whose levels are configuration: see
// KenyaLevels). Scheme.String is the name; Schemes lists them all.
//
// # Reading a marking
//
// Parse(scheme, marking) reads marking in that scheme only: Parse(GBR,
// "SECRET") is UK SECRET and Parse(US, "SECRET") is US SECRET, and
// neither is ever taken for the other. With no scheme, Parse accepts only
// a marking whose syntax names its scheme:
//
//   - "[SEC=...]" is EPMS, so AUS;
//   - "UK ..." is GBR;
//   - "NATO ...", "COSMIC ...", and CAPCO's "//NATO ..." and
//     "//COSMIC ..." are NATO;
//   - "... UE/EU ...", "... UE" and "EU ..." are EU;
//   - any other marking with "//" is a CAPCO banner, so US;
//   - otherwise a marking that exactly one scheme reads and that is more
//     than a level word ("SECRET UK EYES ONLY" reads only as GBR).
//
// A bare level word is never guessed, even when only one scheme has it:
// Parse("", "CONFIDENTIAL") is refused with `"CONFIDENTIAL" is a level in
// schemes US, CAN, NZL, KEN: say which scheme`. ParseDefault takes the
// tenant's nation default for such markings. Parser carries the
// configuration of the configurable schemes (Kenya's levels); the
// package-level functions use the zero Parser, whose Kenyan levels are
// the illustrative DefaultKenyaLevels.
//
// Parse is strict and refuses rather than guesses; every refusal is a
// *ParseError whose Reason names the offending part
// ("UK EYES ONLY requires SECRET or above", `EPMS REL lists are
// separated by "/"`). Letter case (ASCII only) and surrounding whitespace
// are forgiven, nothing else. Label.String writes the canonical marking,
// which Parse reads back, in the label's scheme, to an equal label.
//
// # Levels and order
//
// A Level is the scheme's own level: its canonical name, the axis it
// sits on and its rank on that axis. Most schemes have one axis (named
// ""); Canada and New Zealand have two, whose levels are incomparable.
// Levels lists a scheme's levels and ParseLevel reads one written alone
// (an accreditation's highest level, a tenant's ceiling).
// Dominates compares labels of one scheme only: a label never dominates,
// nor is dominated by, a label of another scheme; comparing across
// schemes is the business of equivalence entries, not of this package.
//
// # Releasability
//
// Nations is the set of ISO 3166 trigraphs that may have access, as in
// router/label, where fewer nations is more restrictive. It comes from
// the marking's releasability caveats (UK EYES ONLY, EPMS RI:REL ...)
// and, for NATO and EU labels, from the organisation's members. Apart
// from US labels, whose fail-closed rule is router/label's (classified
// with no foreign-disclosure marking is US-only), a label whose marking
// names no nationality restriction has AnyNation: the marking does not
// restrict nationality, and whether another nation's region may hold the
// data is decided by an equivalence entry (no entry, no placement). The
// releasability caveats are expressed by Nations alone, not in Caveats,
// so that UK EYES ONLY dominates FIVE EYES ONLY as {GBR} ⊆ FVEY.
//
// # Illustrative data
//
// Kenya's levels are configuration (KenyaLevels): no statutory list was
// found, and the default, RESTRICTED < CONFIDENTIAL < SECRET < TOP
// SECRET from a 2025 bill, is marked Illustrative. The member lists of
// NATO (32) and the EU (27) are data in this package, as of 2024.
//
// # Not here
//
// Accreditations, equivalence between schemes, and the eligibility
// checks that use them belong to the router; this package only reads,
// writes and compares labels. It imports router/label and nothing that
// talks to the world (router/deps_test.go enforces it).
package marking

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/classroute/classroute/router/label"
)

// Scheme names a national or international classification scheme.
type Scheme string

// The schemes. Their names are ISO 3166 trigraphs where the scheme is a
// nation's, except US, whose name predates the others.
const (
	US   Scheme = "US"   // United States: CAPCO banners, router/label's grammar
	GBR  Scheme = "GBR"  // United Kingdom: Government Security Classifications
	AUS  Scheme = "AUS"  // Australia: PSPF levels, written in EPMS form
	NATO Scheme = "NATO" // NATO: C-M(2002)49
	CAN  Scheme = "CAN"  // Canada: Protected A/B/C and Confidential/Secret/Top Secret
	NZL  Scheme = "NZL"  // New Zealand: Protective Security Requirements
	EU   Scheme = "EU"   // European Union: Council Decision 2013/488/EU
	KEN  Scheme = "KEN"  // Kenya: levels are configuration (KenyaLevels)
)

var schemes = [...]Scheme{US, GBR, AUS, NATO, CAN, NZL, EU, KEN}

// Schemes returns every scheme, in a fixed order.
func Schemes() []Scheme { return slices.Clone(schemes[:]) }

// Valid reports whether s is one of the schemes.
func (s Scheme) Valid() bool { return slices.Contains(schemes[:], s) }

func (s Scheme) String() string { return string(s) }

// ParseScheme reads a scheme name, in any ASCII letter case ("gbr").
// The empty string is refused: callers that allow "no scheme" test for
// it first.
func ParseScheme(s string) (Scheme, error) {
	sc := Scheme(upperASCII(strings.TrimSpace(s)))
	if !sc.Valid() {
		return "", fmt.Errorf("unknown scheme %q (schemes: %s)", s, schemeList(schemes[:]))
	}
	return sc, nil
}

func schemeList(ss []Scheme) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Level is a level of one scheme.
type Level struct {
	// Name is the canonical name of the level in its scheme ("SECRET",
	// "PROTECTED B", "OFFICIAL:Sensitive", "SECRET UE/EU SECRET").
	Name string
	// Axis names the ladder the level sits on in schemes with more than
	// one ("PROTECTED" and "CLASSIFIED" in CAN, "POLICY AND PRIVACY" and
	// "NATIONAL SECURITY" in NZL); "" in the others. Levels on different
	// axes are incomparable.
	Axis string
	// Rank is the position of the level on its axis, 0 the lowest.
	Rank int
}

func (l Level) String() string { return l.Name }

// Label is a parsed security label of one scheme. Labels are values: the
// slices are never modified after construction, so copies may share them.
type Label struct {
	// Scheme is the scheme the marking was written in.
	Scheme Scheme
	// Level is the scheme's own level.
	Level Level
	// Caveats is the sorted set of caveats, controls and descriptors a
	// region must be accredited for, in the scheme's canonical spelling:
	// US controls (SI, SAR-BP, RD), UK's SENSITIVE descriptor, EPMS's
	// "C:LOBSTER", "FG:...", "SH:CABINET", "RI:AGAO", NATO's ATOMAL.
	// Releasability caveats are not here: Nations expresses them.
	Caveats []string
	// AnyNation is true when the marking restricts no nationality; then
	// Nations is empty.
	AnyNation bool
	// Nations is the sorted set of ISO 3166 trigraphs that may have
	// access when AnyNation is false.
	Nations []string
	// Originator is the authority whose marking it is: the scheme's
	// nation (a trigraph) or organisation ("NATO", "EU"). Parse sets it
	// from the scheme; String does not write it.
	Originator string
	// US is the CAPCO label of a US label, nil in other schemes. It keeps
	// what Caveats and Nations do not: the dissemination controls.
	US *label.Label
}

// originators are the authorities of each scheme.
var originators = map[Scheme]string{
	US: "USA", GBR: "GBR", AUS: "AUS", NATO: "NATO", CAN: "CAN", NZL: "NZL", EU: "EU", KEN: "KEN",
}

// Equal reports whether l and o are the same label.
func (l Label) Equal(o Label) bool {
	if (l.US == nil) != (o.US == nil) || (l.US != nil && !l.US.Equal(*o.US)) {
		return false
	}
	return l.Scheme == o.Scheme && l.Level == o.Level && l.AnyNation == o.AnyNation &&
		l.Originator == o.Originator &&
		slices.Equal(l.Caveats, o.Caveats) && slices.Equal(l.Nations, o.Nations)
}

// ReleasableTo reports whether nation (an ISO 3166 trigraph) may have
// access to data labelled l.
func (l Label) ReleasableTo(nation string) bool {
	if l.AnyNation {
		return true
	}
	_, ok := slices.BinarySearch(l.Nations, nation)
	return ok
}

// String returns the canonical marking of l in its scheme, which Parse
// reads back, in that scheme, to a label equal to l. The canonical forms
// of GBR, AUS, NATO and EU labels also name their scheme, so Parse reads
// them back with no scheme given.
func (l Label) String() string {
	g := grammarOf(l.Scheme, Parser{})
	if g == nil {
		return fmt.Sprintf("%s(%s)", l.Scheme, l.Level.Name)
	}
	return g.format(l)
}

// LogValue implements slog.LogValuer: the scheme, the level and counts,
// never the names of caveats or nations.
func (l Label) LogValue() slog.Value {
	nations := slog.Int("nations", len(l.Nations))
	if l.AnyNation {
		nations = slog.String("nations", "any")
	}
	return slog.GroupValue(
		slog.String("scheme", string(l.Scheme)),
		slog.String("level", l.Level.Name),
		slog.Int("caveats", len(l.Caveats)),
		nations,
	)
}

// ParseError says why a marking was refused.
type ParseError struct {
	// Scheme is the scheme the marking was read in; "" when none was
	// given and none could be chosen.
	Scheme Scheme
	// Marking is the marking as given.
	Marking string
	// Part is the offending piece, as written or upper-cased; empty when
	// the marking is empty.
	Part string
	// Reason says what is wrong, naming Part.
	Reason string
}

func (e *ParseError) Error() string {
	if e.Scheme == "" {
		return fmt.Sprintf("invalid marking %q: %s", e.Marking, e.Reason)
	}
	return fmt.Sprintf("invalid %s marking %q: %s", e.Scheme, e.Marking, e.Reason)
}

// Parser reads markings with the configuration of the configurable
// schemes. The zero Parser uses DefaultKenyaLevels.
type Parser struct {
	// Kenya holds the levels of scheme KEN; when it has none,
	// DefaultKenyaLevels(). Levels not checked by KenyaLevels.Validate
	// (ParseKenyaLevels does) may make markings unreadable.
	Kenya KenyaLevels
}

// grammar is one scheme's reader and writer.
type grammar interface {
	// parse reads marking, which is not empty once trimmed.
	parse(marking string) (Label, error)
	// format writes the canonical marking of a label of the scheme.
	format(l Label) string
	// words lists the level words a marking may consist of alone, in
	// upper case, for the refusal of bare words with no scheme.
	words() []string
	// levels lists the levels, axis by axis, each low to high.
	levels() []Level
}

func grammarOf(s Scheme, p Parser) grammar {
	switch s {
	case US:
		return usGrammar{}
	case GBR:
		return gbrGrammar{}
	case AUS:
		return ausGrammar{}
	case NATO:
		return natoGrammar{}
	case CAN:
		return canGrammar
	case NZL:
		return nzlGrammar
	case EU:
		return euGrammar{}
	case KEN:
		return p.kenya()
	}
	return nil
}

// Parse reads marking in scheme with the zero Parser; see Parser.Parse.
func Parse(scheme Scheme, marking string) (Label, error) {
	return Parser{}.Parse(scheme, marking)
}

// ParseDefault reads marking with the zero Parser; see Parser.ParseDefault.
func ParseDefault(marking string, nationDefault Scheme) (Label, error) {
	return Parser{}.ParseDefault(marking, nationDefault)
}

// MustParse is Parse for fixtures and tests: it panics on error.
func MustParse(scheme Scheme, marking string) Label {
	l, err := Parse(scheme, marking)
	if err != nil {
		panic(err)
	}
	return l
}

// Parse reads marking in scheme, or, when scheme is "", in the scheme its
// syntax names (see the package documentation). A bare level word with
// no scheme is refused naming the schemes that have it.
func (p Parser) Parse(scheme Scheme, marking string) (Label, error) {
	if scheme != "" {
		g := grammarOf(scheme, p)
		if g == nil {
			return Label{}, &ParseError{Marking: marking, Part: string(scheme),
				Reason: fmt.Sprintf("unknown scheme %q (schemes: %s)", scheme, schemeList(schemes[:]))}
		}
		if strings.TrimSpace(marking) == "" {
			return Label{}, &ParseError{Scheme: scheme, Marking: marking, Reason: "empty marking"}
		}
		return g.parse(marking)
	}
	d := p.detect(marking)
	if d.err != nil {
		return Label{}, d.err
	}
	return grammarOf(d.scheme, p).parse(marking)
}

// ParseDefault reads marking in the scheme its syntax names, and
// otherwise (a bare level word, or a marking no scheme's syntax names)
// in nationDefault, the scheme of the tenant's nation. With nationDefault
// "" it is Parse(marking) with no scheme.
func (p Parser) ParseDefault(marking string, nationDefault Scheme) (Label, error) {
	d := p.detect(marking)
	if d.err == nil {
		return grammarOf(d.scheme, p).parse(marking)
	}
	if nationDefault == "" {
		return Label{}, d.err
	}
	return p.Parse(nationDefault, marking)
}

// detection is the scheme of a marking given without one, or why none
// may be chosen.
type detection struct {
	scheme Scheme
	err    error
}

// detect chooses the scheme of a marking given without one.
func (p Parser) detect(marking string) detection {
	s := upperASCII(strings.TrimSpace(marking))
	fail := func(part, format string, args ...any) detection {
		return detection{err: &ParseError{Marking: marking, Part: part, Reason: fmt.Sprintf(format, args...)}}
	}
	if s == "" {
		return fail("", "empty marking")
	}
	if sc := syntaxScheme(s); sc != "" {
		return detection{scheme: sc}
	}
	var have []Scheme
	for _, sc := range schemes {
		if slices.Contains(grammarOf(sc, p).words(), s) {
			have = append(have, sc)
		}
	}
	switch len(have) {
	case 0:
	case 1:
		return fail(s, "%q is a level in scheme %s: say which scheme", s, have[0])
	default:
		return fail(s, "%q is a level in schemes %s: say which scheme", s, schemeList(have))
	}
	var read []Scheme
	for _, sc := range schemes {
		if _, err := grammarOf(sc, p).parse(marking); err == nil {
			read = append(read, sc)
		}
	}
	switch len(read) {
	case 0:
		return fail(s, "no scheme reads %q: say which scheme", s)
	case 1:
		return detection{scheme: read[0]}
	}
	return fail(s, "%q reads in schemes %s: say which scheme", s, schemeList(read))
}

// syntaxScheme returns the scheme whose syntax upper-cased marking s is
// written in, or "" when its syntax names none.
func syntaxScheme(s string) Scheme {
	switch {
	case strings.HasPrefix(s, "["), strings.HasPrefix(s, "SEC="), strings.HasPrefix(s, "VER="):
		return AUS
	case strings.HasPrefix(s, "UK "):
		return GBR
	case strings.HasPrefix(s, "NATO "), strings.HasPrefix(s, "COSMIC "),
		strings.HasPrefix(s, "//NATO "), strings.HasPrefix(s, "//COSMIC "):
		return NATO
	case strings.Contains(s, " UE/EU "), strings.HasSuffix(s, " UE"), strings.HasPrefix(s, "EU "):
		return EU
	case strings.Contains(s, "//"):
		return US
	}
	return ""
}

// Levels returns the levels of scheme, axis by axis, each axis from the
// lowest level to the highest; nil for an unknown scheme.
func (p Parser) Levels(scheme Scheme) []Level {
	if g := grammarOf(scheme, p); g != nil {
		return g.levels()
	}
	return nil
}

// Levels is Parser{}.Levels(scheme).
func Levels(scheme Scheme) []Level { return Parser{}.Levels(scheme) }

// ParseLevel reads a level of scheme written alone, as an accreditation's
// highest level or a tenant's ceiling is: Parse(scheme, name) must give a
// label carrying that level and nothing more ("UK SECRET UK EYES ONLY"
// and "OFFICIAL-SENSITIVE" are refused: they carry caveats).
func (p Parser) ParseLevel(scheme Scheme, name string) (Level, error) {
	l, err := p.Parse(scheme, name)
	if err != nil {
		return Level{}, err
	}
	if bare, err := p.Parse(scheme, Label{Scheme: scheme, Level: l.Level, AnyNation: true}.String()); err != nil || !bare.Equal(l) {
		return Level{}, errorf(scheme, name, name, "%q is more than a level: write %q", l.String(), l.Level.Name)
	}
	return l.Level, nil
}

// ParseLevel is Parser{}.ParseLevel(scheme, name).
func ParseLevel(scheme Scheme, name string) (Level, error) { return Parser{}.ParseLevel(scheme, name) }

// Validate reports whether l is a label p.Parse could have produced: its
// canonical marking reads back, in its scheme, as l.
func (p Parser) Validate(l Label) error {
	if grammarOf(l.Scheme, p) == nil {
		return fmt.Errorf("invalid label: unknown scheme %q", l.Scheme)
	}
	r, err := p.Parse(l.Scheme, l.String())
	if err != nil {
		return fmt.Errorf("invalid label: %w", err)
	}
	if !r.Equal(l) {
		return fmt.Errorf("invalid label: not in canonical form (its marking %q reads back as a different label)", l.String())
	}
	return nil
}

// Validate is Parser{}.Validate(l).
func (l Label) Validate() error { return Parser{}.Validate(l) }

// errorf builds the *ParseError of scheme s for marking m.
func errorf(s Scheme, m, part, format string, args ...any) error {
	return &ParseError{Scheme: s, Marking: m, Part: part, Reason: fmt.Sprintf(format, args...)}
}

// AsParseError returns err as a *ParseError, if it is one.
func AsParseError(err error) (*ParseError, bool) {
	var pe *ParseError
	ok := errors.As(err, &pe)
	return pe, ok
}

// upperASCII upper-cases the ASCII letters of s and nothing else, so
// that no other character folds into a marking letter.
func upperASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}, s)
}

// subset reports whether sorted set a is a subset of sorted set b.
func subset(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}

// Dominates reports whether l dominates o: both are of one scheme, l's
// level is on o's axis and at least o's, l's caveats include all of o's,
// and l's releasability is within o's (AnyNation being the widest; fewer
// nations is more restrictive), as router/label's lattice. Labels of
// different schemes, or on different axes of one scheme, never dominate
// each other. US dissemination controls other than NOFORN and REL TO do
// not take part, as in router/label.
func (l Label) Dominates(o Label) bool {
	if l.Scheme != o.Scheme || l.Level.Axis != o.Level.Axis || l.Level.Rank < o.Level.Rank {
		return false
	}
	if !subset(o.Caveats, l.Caveats) {
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

// quote returns s in Go quotes.
func quote(s string) string { return fmt.Sprintf("%q", s) }

// nationSchemes are the schemes of the nations whose own scheme the
// package reads.
var nationSchemes = map[string]Scheme{
	"USA": US, "GBR": GBR, "AUS": AUS, "CAN": CAN, "NZL": NZL, "KEN": KEN,
}

// NationScheme returns the scheme of nation (an ISO 3166 trigraph), or
// "" when the package reads no scheme of that nation's own (a NATO or EU
// member's national scheme is not NATO's or the EU's).
func NationScheme(nation string) Scheme { return nationSchemes[nation] }

// SyntaxScheme returns the scheme marking's syntax names ("[SEC=...]" is
// AUS, "UK ..." GBR, "//NATO ..." NATO, any other "//" US; see the
// package documentation), or "" when its syntax names none. It does not
// read the marking: Parse does.
func SyntaxScheme(marking string) Scheme {
	return syntaxScheme(upperASCII(strings.TrimSpace(marking)))
}

// NationalSecurity reports whether l is classified in its scheme's
// national-security sense, the information whose release abroad is the
// originator's decision: US CONFIDENTIAL and above; UK SECRET and above;
// Australian PROTECTED and above; Canada's classified axis; New
// Zealand's national-security axis; every NATO level above NATO
// UNCLASSIFIED and every EU level; a Kenyan level other than
// UNCLASSIFIED. Not so: UK OFFICIAL (with SENSITIVE or not), Australian
// OFFICIAL:Sensitive and below, Canada's Protected A/B/C, New Zealand's
// IN-CONFIDENCE and SENSITIVE, US UNCLASSIFIED and CUI.
func (l Label) NationalSecurity() bool {
	switch l.Scheme {
	case US:
		return l.US != nil && l.US.Level >= label.Confidential
	case GBR:
		return l.Level.Name != "OFFICIAL"
	case AUS:
		return l.Level.Name == "PROTECTED" || l.Level.Name == "SECRET" || l.Level.Name == "TOP-SECRET"
	case CAN:
		return l.Level.Axis == "CLASSIFIED"
	case NZL:
		return l.Level.Axis == "NATIONAL SECURITY"
	case NATO:
		return l.Level.Name != "NATO UNCLASSIFIED"
	case EU:
		return true
	case KEN:
		return l.Level.Name != "UNCLASSIFIED"
	}
	return true // an unknown scheme: fail closed
}
