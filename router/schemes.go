package router

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/marking"
)

// ReasonNoEquivalence: the label's scheme has no equivalence in force to
// any scheme the region is accredited in (router/equiv): a label is never
// read in a scheme it was not written in.
const ReasonNoEquivalence ReasonCode = "no_equivalence"

// SchemeAccreditation is what a region may hold in one national or
// international scheme, by the authority that granted it. (Issue 12: the
// region model gains a list of these beside its US accreditation; this is
// the rule that reads them, not yet wired into the checker chain.)
type SchemeAccreditation struct {
	Scheme marking.Scheme `json:"scheme" yaml:"scheme"`
	// MaxLevel is the highest level of Scheme the region may hold, by
	// its canonical name ("OFFICIAL", "PROTECTED", "NATO SECRET").
	MaxLevel string `json:"max_level" yaml:"max_level"`
	// Caveats are the caveats, controls and descriptors it may hold
	// ("SENSITIVE" for UK OFFICIAL-SENSITIVE, "ATOMAL").
	Caveats []string `json:"caveats,omitempty" yaml:"caveats,omitempty"`
	// Authority granted it: an Australian agency's authorisation belongs
	// to the agency, not the provider.
	Authority string    `json:"authority" yaml:"authority"`
	Expires   time.Time `json:"expires" yaml:"expires"`
	Revoked   bool      `json:"revoked,omitempty" yaml:"revoked,omitempty"`
	// Illustrative: it rests on uncertain public facts; operators replace it.
	Illustrative bool `json:"illustrative,omitempty" yaml:"illustrative,omitempty"`
}

// Validate checks a against its scheme.
func (a SchemeAccreditation) Validate(p marking.Parser) error {
	var errs []string
	if !a.Scheme.Valid() {
		errs = append(errs, fmt.Sprintf("scheme: unknown %q", a.Scheme))
	} else if _, err := p.ParseLevel(a.Scheme, a.MaxLevel); err != nil {
		errs = append(errs, fmt.Sprintf("max_level: %q is not a level of %s", a.MaxLevel, a.Scheme))
	}
	if strings.TrimSpace(a.Authority) == "" {
		errs = append(errs, "authority: required: who granted it")
	}
	if a.Expires.IsZero() {
		errs = append(errs, "expires: required")
	}
	if len(errs) > 0 {
		return fmt.Errorf("accreditation %s: %s", a.Scheme, strings.Join(errs, "; "))
	}
	return nil
}

// Coverage is whether a region's accreditations hold a label, and how.
type Coverage struct {
	OK bool
	// Via says which accreditation held it and through which
	// equivalence entry: "GBR SECRET accreditation (UK MOD), through
	// GBR→US v1 (...)"; or, refused, Reasons say why for each.
	Via     string
	Reasons []Reason
}

// Cover decides whether any of accs holds label l at now, reading l into
// each accreditation's scheme through table t only (never by similar
// words, never inverted or chained). An accreditation holds l when it is
// in force, l maps into its scheme, the mapped level is on the same axis
// at or below its highest level, and it lists every caveat l carries.
// Refused, every accreditation's reason is given.
func Cover(l marking.Label, accs []SchemeAccreditation, t equiv.Table, p marking.Parser, now time.Time) Coverage {
	var reasons []Reason
	for _, a := range accs {
		name := fmt.Sprintf("%s %s accreditation (%s)", a.Scheme, a.MaxLevel, a.Authority)
		switch {
		case a.Revoked:
			reasons = append(reasons, Reason{ReasonAccreditation, name + " is revoked"})
			continue
		case !now.Before(a.Expires):
			reasons = append(reasons, Reason{ReasonAccreditation, fmt.Sprintf("%s expired on %s", name, a.Expires.Format(time.DateOnly))})
			continue
		}
		r := t.Map(p, l, a.Scheme, now)
		if !r.OK() {
			reasons = append(reasons, Reason{ReasonNoEquivalence, r.Explain(l, a.Scheme, now)})
			continue
		}
		max, err := p.ParseLevel(a.Scheme, a.MaxLevel)
		if err != nil {
			reasons = append(reasons, Reason{ReasonAccreditation, fmt.Sprintf("%s: %v", name, err)})
			continue
		}
		held := fmt.Sprintf("%s %s", a.Scheme, r.Level.Name)
		if r.Kind == equiv.Mapped {
			held = r.Explain(l, a.Scheme, now)
		}
		if r.Level.Axis != max.Axis || r.Level.Rank > max.Rank {
			reasons = append(reasons, Reason{ReasonLevel, fmt.Sprintf("%s; the region's %s holds at most %s", held, name, a.MaxLevel)})
			continue
		}
		if miss := missingOf(l.Caveats, a.Caveats); len(miss) > 0 {
			reasons = append(reasons, Reason{ReasonControls, fmt.Sprintf("%s; the region's %s is not accredited for %s", held, name, strings.Join(miss, ", "))})
			continue
		}
		via := name
		if r.Kind == equiv.Mapped {
			via += ", through " + r.Entry.Name()
		}
		return Coverage{OK: true, Via: via}
	}
	if len(accs) == 0 {
		reasons = append(reasons, Reason{ReasonNoEquivalence, fmt.Sprintf("the region holds no accreditation a %s label maps into", l.Scheme)})
	}
	return Coverage{Reasons: reasons}
}

func missingOf(need, have []string) []string {
	var out []string
	for _, n := range need {
		if !slices.Contains(have, n) {
			out = append(out, n)
		}
	}
	return out
}
