// Package equiv holds equivalence between classification schemes as
// data: which level of one scheme a region accredited in another scheme
// must hold for a label, by agreement. An entry is keyed by (from-scheme,
// to-scheme), names its agreement and validity, and maps levels — or says
// "no equivalent". With no entry in force there is no equivalence: the
// answer is the reason no_equivalence, never a mapping by similar words
// (a Kenyan CONFIDENTIAL is not a US CONFIDENTIAL).
//
// Mappings are never inverted or chained (DOMAIN.md §6.3's "label
// creep"): an entry GBR→US says nothing of US→GBR, and GBR→NATO with
// NATO→US gives no GBR→US. The original label travels with a placement,
// and every re-check maps again from it.
//
// The package is pure: the store keeps the entries (versioned, changed
// only by two administrators), the checkers ask Map.
package equiv

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/classroute/classroute/router/marking"
)

// Entry is one agreement's equivalence from one scheme to another.
type Entry struct {
	From marking.Scheme `json:"from" yaml:"from"`
	To   marking.Scheme `json:"to" yaml:"to"`
	// Version counts the entry's changes: each approved change of the
	// pair is the next version.
	Version int `json:"version" yaml:"version"`
	// Agreement names the instrument the entry rests on.
	Agreement string `json:"agreement" yaml:"agreement"`
	// ValidFrom and ValidUntil bound when the entry is in force (zero:
	// unbounded on that side).
	ValidFrom  time.Time `json:"valid_from,omitzero" yaml:"valid_from,omitempty"`
	ValidUntil time.Time `json:"valid_until,omitzero" yaml:"valid_until,omitempty"`
	// Withdrawn: the entry no longer holds (kept for the record).
	Withdrawn bool `json:"withdrawn,omitempty" yaml:"withdrawn,omitempty"`
	// Levels map the from-scheme's levels; a level not listed has no
	// equivalence under this entry.
	Levels []Mapping `json:"levels" yaml:"levels"`
	// Illustrative marks data resting on uncertain public facts ([U]):
	// operators must replace it with their own agreements' tables.
	Illustrative bool   `json:"illustrative,omitempty" yaml:"illustrative,omitempty"`
	Source       string `json:"source,omitempty" yaml:"source,omitempty"`
}

// Mapping is one row of an entry.
type Mapping struct {
	// From is a level of the entry's from-scheme, by its canonical name.
	From string `json:"from" yaml:"from"`
	// WithCaveats narrows the row to labels that carry all of these
	// caveats (UK OFFICIAL with SENSITIVE is OFFICIAL-SENSITIVE); the
	// row with the most matching caveats applies.
	WithCaveats []string `json:"with_caveats,omitempty" yaml:"with_caveats,omitempty"`
	// To is the level of the entry's to-scheme the label is held at;
	// empty when None.
	To string `json:"to,omitempty" yaml:"to,omitempty"`
	// None says, explicitly, that the level has no equivalent.
	None bool `json:"none,omitempty" yaml:"none,omitempty"`
	// Note says why (handling, fail-closed choices).
	Note string `json:"note,omitempty" yaml:"note,omitempty"`

	// to is To read in the entry's to-scheme by NewTable, with the zero
	// Parser: Map reads it instead of parsing on every decision.
	to marking.Level
}

// Key is an entry's (from, to) pair.
type Key struct{ From, To marking.Scheme }

func (k Key) String() string { return string(k.From) + "→" + string(k.To) }

// Key is e's pair.
func (e *Entry) Key() Key { return Key{e.From, e.To} }

// Name is how reasons cite e: "GBR→US v2 (US–UK General Security Agreement)".
func (e *Entry) Name() string {
	return fmt.Sprintf("%s v%d (%s)", e.Key(), e.Version, e.Agreement)
}

// InForce reports whether e holds at now.
func (e *Entry) InForce(now time.Time) bool {
	return !e.Withdrawn && (e.ValidFrom.IsZero() || !now.Before(e.ValidFrom)) &&
		(e.ValidUntil.IsZero() || now.Before(e.ValidUntil))
}

// Validate checks e against the schemes: both known and distinct, every
// level a level of its scheme, each row either mapped or none, no level
// (with the same caveats) mapped twice, a validity that ends after it
// starts.
func (e *Entry) Validate(p marking.Parser) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !e.From.Valid() {
		bad("from: unknown scheme %q", e.From)
	}
	if !e.To.Valid() {
		bad("to: unknown scheme %q", e.To)
	}
	if e.From == e.To && e.From != "" {
		bad("from and to are both %s: a scheme needs no equivalence with itself", e.From)
	}
	if e.Version < 1 {
		bad("version: %d; want 1 or more", e.Version)
	}
	if strings.TrimSpace(e.Agreement) == "" {
		bad("agreement: required: the instrument the entry rests on")
	}
	if !e.ValidFrom.IsZero() && !e.ValidUntil.IsZero() && !e.ValidUntil.After(e.ValidFrom) {
		bad("valid_until %s is not after valid_from %s", e.ValidUntil.Format(time.DateOnly), e.ValidFrom.Format(time.DateOnly))
	}
	if len(e.Levels) == 0 {
		bad("levels: at least one row (a level mapped, or none: true)")
	}
	seen := map[string]bool{}
	for i, m := range e.Levels {
		if e.From.Valid() {
			if _, err := p.ParseLevel(e.From, m.From); err != nil {
				bad("levels[%d].from: %q is not a level of %s", i, m.From, e.From)
			}
		}
		switch {
		case m.None && m.To != "":
			bad("levels[%d]: none and to %q: one or the other", i, m.To)
		case !m.None && m.To == "":
			bad("levels[%d]: to is required (or none: true, to say there is no equivalent)", i)
		case m.To != "" && e.To.Valid():
			if _, err := p.ParseLevel(e.To, m.To); err != nil {
				bad("levels[%d].to: %q is not a level of %s", i, m.To, e.To)
			}
		}
		caveats := slices.Clone(m.WithCaveats)
		slices.Sort(caveats)
		k := m.From + "|" + strings.Join(caveats, ",")
		if seen[k] {
			bad("levels[%d]: %s%s is mapped twice", i, m.From, withText(caveats))
		}
		seen[k] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("equivalence %s: %s", e.Key(), strings.Join(errs, "; "))
	}
	return nil
}

func withText(caveats []string) string {
	if len(caveats) == 0 {
		return ""
	}
	return " with " + strings.Join(caveats, ", ")
}

// Table is the entries in force or not, one (the current version) per
// pair. A Table is a value: Map never changes it.
type Table struct {
	entries map[Key]*Entry
}

// NewTable makes a table of entries; a second entry for a pair is an
// error.
func NewTable(entries []Entry) (Table, error) {
	t := Table{entries: make(map[Key]*Entry, len(entries))}
	for i := range entries {
		e := entries[i]
		if _, dup := t.entries[e.Key()]; dup {
			return Table{}, fmt.Errorf("equivalence %s: given twice", e.Key())
		}
		e.Levels = slices.Clone(e.Levels) // the rows' parsed levels are the table's own
		for j := range e.Levels {
			m := &e.Levels[j]
			if !m.None {
				m.to, _ = marking.Parser{}.ParseLevel(e.To, m.To) // a bad row stays unparsed: Map parses it and refuses
			}
		}
		t.entries[e.Key()] = &e
	}
	return t, nil
}

// Entry returns the entry of pair k, if any.
func (t Table) Entry(k Key) (Entry, bool) {
	e, ok := t.entries[k]
	if !ok {
		return Entry{}, false
	}
	return *e, true
}

// Entries returns every entry, ordered by pair.
func (t Table) Entries() []Entry {
	out := make([]Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return strings.Compare(a.Key().String(), b.Key().String())
	})
	return out
}

// Kind is how a mapping came out.
type Kind int

const (
	// Same: the label is of the target scheme already; no entry needed.
	Same Kind = iota
	// Mapped: an entry in force maps the label's level.
	Mapped
	// NoEntry: no entry for the pair.
	NoEntry
	// NotInForce: the pair's entry is expired, not yet valid or withdrawn.
	NotInForce
	// NoEquivalent: the entry says the level has no equivalent.
	NoEquivalent
	// Unlisted: the entry does not list the level.
	Unlisted
)

// Result is the outcome of Map.
type Result struct {
	Kind Kind
	// Level is the target scheme's level, for Same and Mapped.
	Level marking.Level
	// Entry is the entry consulted, when there was one.
	Entry *Entry
	// Row is the entry's row used, for Mapped and NoEquivalent.
	Row *Mapping
}

// OK reports whether the label has a level in the target scheme.
func (r Result) OK() bool { return r.Kind == Same || r.Kind == Mapped }

// Code is the reason code a refusal gives: "no_equivalence" whenever the
// label has no level in the target scheme.
func (r Result) Code() string {
	if r.OK() {
		return ""
	}
	return "no_equivalence"
}

// Explain says, in words the caller may read, which entry was used or is
// missing.
func (r Result) Explain(l marking.Label, to marking.Scheme, now time.Time) string {
	switch r.Kind {
	case Same:
		return fmt.Sprintf("%s label, %s accreditation", l.Scheme, to)
	case Mapped:
		return fmt.Sprintf("%s held as %s through %s", LevelName(l.Scheme, l.Level.Name), LevelName(to, r.Level.Name), r.Entry.Name())
	case NoEntry:
		return fmt.Sprintf("no equivalence entry %s→%s: a label of scheme %s is never read as %s", l.Scheme, to, l.Scheme, to)
	case NotInForce:
		e := r.Entry
		switch {
		case e.Withdrawn:
			return fmt.Sprintf("equivalence %s is withdrawn", e.Name())
		case !e.ValidUntil.IsZero() && !now.Before(e.ValidUntil):
			return fmt.Sprintf("equivalence %s expired on %s", e.Name(), e.ValidUntil.Format(time.DateOnly))
		default:
			return fmt.Sprintf("equivalence %s is in force from %s", e.Name(), e.ValidFrom.Format(time.DateOnly))
		}
	case NoEquivalent:
		msg := fmt.Sprintf("%s%s has no %s equivalent under %s", LevelName(l.Scheme, l.Level.Name), withText(r.Row.WithCaveats), to, r.Entry.Name())
		if r.Row.Note != "" {
			msg += ": " + r.Row.Note
		}
		return msg
	case Unlisted:
		return fmt.Sprintf("equivalence %s maps no %s %s", r.Entry.Name(), l.Scheme, l.Level.Name)
	}
	return "unknown"
}

// LevelName names a level with its scheme, once: "GBR SECRET",
// "KEN CONFIDENTIAL", but "NATO RESTRICTED", not "NATO NATO RESTRICTED".
func LevelName(s marking.Scheme, level string) string {
	if strings.HasPrefix(level, string(s)+" ") {
		return level
	}
	return string(s) + " " + level
}

// Map finds the level of scheme to at which label l must be held, at
// now: the label's own level when it is of that scheme, else through the
// entry (l.Scheme, to) if it is in force and maps l's level. Only that
// one entry is consulted: never the reverse pair, never a chain.
func (t Table) Map(p marking.Parser, l marking.Label, to marking.Scheme, now time.Time) Result {
	if l.Scheme == to {
		return Result{Kind: Same, Level: l.Level}
	}
	e, ok := t.entries[Key{l.Scheme, to}]
	if !ok {
		return Result{Kind: NoEntry}
	}
	if !e.InForce(now) {
		return Result{Kind: NotInForce, Entry: e}
	}
	var row *Mapping
	for i := range e.Levels {
		m := &e.Levels[i]
		if m.From != l.Level.Name || !containsAll(l.Caveats, m.WithCaveats) {
			continue
		}
		if row == nil || len(m.WithCaveats) > len(row.WithCaveats) {
			row = m
		}
	}
	switch {
	case row == nil:
		return Result{Kind: Unlisted, Entry: e}
	case row.None:
		return Result{Kind: NoEquivalent, Entry: e, Row: row}
	}
	if row.to.Name != "" && len(p.Kenya.Levels) == 0 {
		return Result{Kind: Mapped, Level: row.to, Entry: e, Row: row}
	}
	lv, err := p.ParseLevel(to, row.To)
	if err != nil { // a validated entry maps to levels of its scheme
		return Result{Kind: Unlisted, Entry: e}
	}
	return Result{Kind: Mapped, Level: lv, Entry: e, Row: row}
}

func containsAll(set, sub []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}
