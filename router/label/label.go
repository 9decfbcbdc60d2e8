// Package label parses, formats and compares security labels written as
// banner markings: levels, SCI and SAP controls, dissemination and
// releasability, and the dominance and join the checkers and the audit
// use. It owns the banner grammar; it is pure and imports nothing of
// this module and nothing that talks to the world (router/deps_test.go
// enforces both).
package label

import (
	"fmt"
	"strings"
)

// Level is a classification level. CUI is not a US classification level,
// but for routing it sits between UNCLASSIFIED and CONFIDENTIAL.
type Level uint8

// Levels in ascending order of sensitivity.
const (
	Unclassified Level = iota
	CUI
	Confidential
	Secret
	TopSecret
)

var levelNames = [...]string{"UNCLASSIFIED", "CUI", "CONFIDENTIAL", "SECRET", "TOP SECRET"}

// String returns the banner form of the level.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// Valid reports whether l is one of the defined levels.
func (l Level) Valid() bool { return int(l) < len(levelNames) }

// ParseLevel parses a level name in banner form ("TOP SECRET"); case and
// the separators '-' and '_' in place of a space are accepted
// ("top-secret", "top_secret").
func ParseLevel(s string) (Level, error) {
	// ASCII case only: Unicode folding would read "top ſecret" as TOP SECRET.
	n := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - ('a' - 'A')
		case r == '-' || r == '_':
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	for i, name := range levelNames {
		if n == name {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown level %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) {
	if !l.Valid() {
		return nil, fmt.Errorf("invalid level %d", uint8(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// USA is the trigraph of the United States, always releasable for US labels.
const USA = "USA"

// Label is a parsed security label. Labels are values: the slices are
// never modified after construction, so copies may share them.
type Label struct {
	// Level is the classification level.
	Level Level
	// Controls is the sorted set of SCI control systems and compartments
	// (SI, SI-G, TK, HCS-P), SAP programs (SAR-BP), AEA markings (RD,
	// FRD, CNWDI) and CUI specified categories (SP-EXPT). A region must
	// be accredited for every one. A compartment implies its system and
	// a sub-compartment its compartment: SI-G ABCD gives SI, SI-G and
	// "SI-G ABCD"; RD-SIGMA 14 gives RD and "SIGMA 14".
	Controls []string
	// AnyNation is true when the label carries no foreign-disclosure
	// restriction: UNCLASSIFIED or CUI without NOFORN or REL TO.
	// When it is true Nations is empty.
	AnyNation bool
	// Nations is the sorted set of ISO 3166 trigraphs that may have
	// access when AnyNation is false; tetragraphs are already expanded.
	// NOFORN, and classified data with no foreign-disclosure marking,
	// give {USA}.
	Nations []string
	// Dissem holds the other dissemination controls, which do not
	// change where a workload may run (ORCON, RELIDO, FOUO, PROPIN,
	// FED ONLY, ...), in register order (see String). NOFORN and REL TO
	// are not here: they are expressed by Nations. DISPLAY ONLY keeps its
	// country list: "DISPLAY ONLY AUS, GBR".
	Dissem []string
}
