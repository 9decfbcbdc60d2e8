package router

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

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
	// Notes says where the facts come from.
	Notes string `json:"notes,omitempty" yaml:"notes,omitempty"`
	// Level is MaxLevel read in Scheme, set by ValidateRegion.
	Level marking.Level `json:"-" yaml:"-"`
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
// at or below its highest level, and it lists every caveat l carries
// that the entry's row did not map. Refused, every accreditation's
// reason is given.
func Cover(l marking.Label, accs []SchemeAccreditation, t equiv.Table, p marking.Parser, now time.Time) Coverage {
	return cover(&l, accs, nil, t, p, now)
}

// CoverRegion is Cover over every accreditation of reg: those of other
// schemes, then its US accreditation, which holds a label only when the
// region's network domain can carry, and its personnel are screened for,
// the US level the label is held at.
//
// Only the accreditations tenant may know of count (Tenant.KnowsAccreditation):
// one above its ceiling in its scheme, or in a scheme it has none in,
// neither holds its labels nor is named to it.
func CoverRegion(l marking.Label, reg *Region, tenant *Tenant, t equiv.Table, now time.Time) Coverage {
	accs := reg.Accreditations
	if tenant != nil {
		accs = make([]SchemeAccreditation, 0, len(reg.Accreditations))
		for i := range reg.Accreditations {
			if tenant.KnowsAccreditation(&reg.Accreditations[i]) {
				accs = append(accs, reg.Accreditations[i])
			}
		}
	}
	return cover(&l, accs, reg, t, marking.Parser{}, now)
}

func cover(l *marking.Label, accs []SchemeAccreditation, reg *Region, t equiv.Table, p marking.Parser, now time.Time) Coverage {
	var reasons []Reason
	explain := func(a *SchemeAccreditation) (string, bool) {
		name := fmt.Sprintf("%s accreditation (%s)", equiv.LevelName(a.Scheme, a.MaxLevel), a.Authority)
		r, code := holds(l, a, reg, t, p, now)
		n := len(reasons)
		defer func() {
			// Every reason names the label's scheme and the pair it was read through.
			for i := n; i < len(reasons); i++ {
				reasons[i].Scheme = l.Scheme
				if a.Scheme != l.Scheme {
					pair := string(l.Scheme) + "→" + string(a.Scheme)
					if r.Entry != nil {
						pair = fmt.Sprintf("%s v%d", pair, r.Entry.Version)
					}
					reasons[i].Equivalence = []string{pair}
				}
			}
		}()
		held := equiv.LevelName(a.Scheme, r.Level.Name)
		if r.Kind == equiv.Mapped {
			held = r.Explain(*l, a.Scheme, now)
		}
		switch code {
		case "":
			via := name
			if r.Kind == equiv.Mapped {
				via += ", through " + r.Entry.Name()
			}
			return via, true
		case ReasonAccreditation:
			if a.Revoked {
				reasons = append(reasons, Reason{Code: code, Message: name + " is revoked"})
			} else if !now.Before(a.Expires) {
				reasons = append(reasons, Reason{Code: code, Message: fmt.Sprintf("%s expired on %s", name, a.Expires.Format(time.DateOnly))})
			} else {
				reasons = append(reasons, Reason{Code: code, Message: fmt.Sprintf("%s: %q is not a level of %s", name, a.MaxLevel, a.Scheme)})
			}
		case ReasonNoEquivalence:
			reasons = append(reasons, Reason{Code: code, Message: r.Explain(*l, a.Scheme, now)})
		case ReasonLevel:
			reasons = append(reasons, Reason{Code: code, Message: fmt.Sprintf("%s; the region's %s holds at most %s", held, name, a.MaxLevel)})
		case ReasonControls:
			reasons = append(reasons, Reason{Code: code, Message: fmt.Sprintf("%s; the region's %s is not accredited for %s", held, name,
				strings.Join(unmapped(l, a, r), ", "))})
		case ReasonNetworkDomain:
			reasons = append(reasons, Reason{Code: code, Message: fmt.Sprintf("%s; %s cannot carry it", held, reg.NetworkDomain)})
		case ReasonPersonnel:
			reasons = append(reasons, Reason{Code: code, Message: fmt.Sprintf("%s; personnel %s, which requires %s", held, reg.Personnel, personnelFor(label.Level(r.Level.Rank)))})
		}
		return "", false
	}
	for i := range accs {
		if via, ok := explain(&accs[i]); ok {
			return Coverage{OK: true, Via: via}
		}
	}
	if reg != nil {
		us := usAccreditation(reg)
		if via, ok := explain(&us); ok {
			return Coverage{OK: true, Via: via}
		}
	} else if len(accs) == 0 {
		reasons = append(reasons, Reason{Code: ReasonNoEquivalence, Message: fmt.Sprintf("the region holds no accreditation a label of scheme %s maps into", l.Scheme)})
	}
	return Coverage{Reasons: reasons}
}

// covers is CoverRegion's verdict alone, for the checkers' fast path: it
// does not format.
func covers(l *marking.Label, reg *Region, tenant *Tenant, t equiv.Table, now time.Time) bool {
	for i := range reg.Accreditations {
		a := &reg.Accreditations[i]
		if !tenant.KnowsAccreditation(a) {
			continue
		}
		if _, code := holds(l, a, reg, t, marking.Parser{}, now); code == "" {
			return true
		}
	}
	us := usAccreditation(reg)
	_, code := holds(l, &us, reg, t, marking.Parser{}, now)
	return code == ""
}

// usAccreditation is reg's US accreditation as a SchemeAccreditation.
func usAccreditation(reg *Region) SchemeAccreditation {
	a := &reg.Accreditation
	name := a.MaxLevel.String()
	return SchemeAccreditation{Scheme: marking.US, MaxLevel: name, Level: marking.Level{Name: name, Rank: int(a.MaxLevel)},
		Caveats: a.Controls, Authority: "US", Expires: a.Expires, Revoked: a.Revoked}
}

// holds says whether accreditation a holds l, and if not the code of the
// first rule it fails: accreditation (not in force), no_equivalence (l
// has no level in a's scheme), level, controls; and, for the US
// accreditation of reg, network_domain and personnel for the US level l
// is held at.
func holds(l *marking.Label, a *SchemeAccreditation, reg *Region, t equiv.Table, p marking.Parser, now time.Time) (equiv.Result, ReasonCode) {
	if a.Revoked || !now.Before(a.Expires) {
		return equiv.Result{}, ReasonAccreditation
	}
	r := t.Map(p, *l, a.Scheme, now)
	if !r.OK() {
		return r, ReasonNoEquivalence
	}
	max := a.Level
	if max.Name == "" {
		var err error
		if max, err = p.ParseLevel(a.Scheme, a.MaxLevel); err != nil {
			return r, ReasonAccreditation
		}
	}
	if r.Level.Axis != max.Axis || r.Level.Rank > max.Rank {
		return r, ReasonLevel
	}
	if len(unmapped(l, a, r)) > 0 {
		return r, ReasonControls
	}
	if a.Scheme == marking.US && reg != nil {
		lv := label.Level(r.Level.Rank)
		if lv > reg.NetworkDomain.Ceiling() {
			return r, ReasonNetworkDomain
		}
		if reg.Personnel < personnelFor(lv) {
			return r, ReasonPersonnel
		}
	}
	return r, ""
}

// unmapped lists l's caveats that a does not list and the entry row r
// used did not map (a row "OFFICIAL with SENSITIVE" maps SENSITIVE).
func unmapped(l *marking.Label, a *SchemeAccreditation, r equiv.Result) []string {
	var out []string
	for _, c := range l.Caveats {
		if slices.Contains(a.Caveats, c) || (r.Row != nil && slices.Contains(r.Row.WithCaveats, c)) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// personnelFor is the least screening of operators for a US level.
func personnelFor(lv label.Level) Personnel {
	switch {
	case lv >= label.TopSecret:
		return PersonnelClearedTopSecret
	case lv >= label.Confidential:
		return PersonnelClearedSecret
	}
	return PersonnelNone
}
