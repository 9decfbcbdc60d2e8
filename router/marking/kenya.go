package marking

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// KenyaLevels configures scheme KEN, whose levels are configuration: no
// statutory list of Kenyan classification levels was found (DOMAIN.md
// §6.1 marks it [U]). Its JSON form is
//
//	{"levels": ["RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"],
//	 "illustrative": true, "source": "..."}
//
// with the levels low to high, on one axis. KEN labels carry no caveats
// and restrict no nationality.
type KenyaLevels struct {
	// Levels are the level names, low to high: upper-case letters,
	// digits and "-", words separated by single spaces.
	Levels []string `json:"levels"`
	// Illustrative is true when the levels are not an authority's: they
	// stand in until an operator replaces them.
	Illustrative bool `json:"illustrative"`
	// Source says where the levels come from.
	Source string `json:"source"`
}

//go:embed data/kenya.json
var kenyaJSON []byte

// defaultKenya is DefaultKenyaLevels, read once from data/kenya.json.
var defaultKenya = mustKenyaLevels(kenyaJSON)

// DefaultKenyaLevels returns the levels the zero Parser reads in scheme
// KEN: RESTRICTED < CONFIDENTIAL < SECRET < TOP SECRET, as proposed by a
// 2025 bill (reported, not enacted; DOMAIN.md §6.1). They are
// illustrative (Illustrative is true): operators replace them with their
// authority's levels through ParseKenyaLevels and Parser.Kenya.
func DefaultKenyaLevels() KenyaLevels {
	k := defaultKenya
	k.Levels = slices.Clone(k.Levels)
	return k
}

func mustKenyaLevels(data []byte) KenyaLevels {
	k, err := ParseKenyaLevels(data)
	if err != nil {
		panic(err)
	}
	return k
}

// ParseKenyaLevels reads and checks KenyaLevels in JSON. Unknown fields
// are refused. A level must not read as another scheme's syntax ("UK
// ...", "NATO ...", "... UE", "//"), which would take markings away
// from KEN.
func ParseKenyaLevels(data []byte) (KenyaLevels, error) {
	var k KenyaLevels
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return KenyaLevels{}, fmt.Errorf("kenya levels: %w", err)
	}
	if dec.More() {
		return KenyaLevels{}, fmt.Errorf("kenya levels: data after the object")
	}
	return k, k.Validate()
}

// Validate checks the levels: at least one, each well formed, none twice.
func (k KenyaLevels) Validate() error {
	if len(k.Levels) == 0 {
		return fmt.Errorf("kenya levels: no levels")
	}
	for i, l := range k.Levels {
		switch {
		case !levelWord(l):
			return fmt.Errorf("kenya levels: level %q: use upper-case letters, digits and \"-\", words separated by single spaces", l)
		case syntaxScheme(l) != "":
			return fmt.Errorf("kenya levels: level %q reads as a %s marking", l, syntaxScheme(l))
		case slices.Contains(k.Levels[:i], l):
			return fmt.Errorf("kenya levels: level %q twice", l)
		}
	}
	return nil
}

// levelWord reports whether s is upper-case words of A-Z, 0-9 and "-"
// separated by single spaces.
func levelWord(s string) bool {
	if s == "" {
		return false
	}
	for _, w := range strings.Split(s, " ") {
		if w == "" {
			return false
		}
		for _, r := range w {
			if !('A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// configuredKenya is the levels ConfigureKenya set: the zero Parser's,
// in place of DefaultKenyaLevels.
var configuredKenya atomic.Pointer[KenyaLevels]

// ConfigureKenya makes k the levels of scheme KEN for the zero Parser,
// and so for the whole process (the daemon's --kenya-levels): an
// operator replaces the illustrative default with its authority's
// levels. Call it at start-up, before any marking is read: labels
// already read keep the levels they were read with.
func ConfigureKenya(k KenyaLevels) error {
	if err := k.Validate(); err != nil {
		return err
	}
	k.Levels = slices.Clone(k.Levels)
	configuredKenya.Store(&k)
	return nil
}

// KenyaLevelsInUse returns the levels the zero Parser reads in scheme
// KEN: those ConfigureKenya set, else DefaultKenyaLevels().
func KenyaLevelsInUse() KenyaLevels {
	if k := configuredKenya.Load(); k != nil {
		c := *k
		c.Levels = slices.Clone(k.Levels)
		return c
	}
	return DefaultKenyaLevels()
}

// kenya returns the grammar of scheme KEN with p's levels.
func (p Parser) kenya() ladderGrammar {
	k := p.Kenya
	if len(k.Levels) == 0 {
		if c := configuredKenya.Load(); c != nil {
			k = *c
		} else {
			k = defaultKenya
		}
	}
	return ladderGrammar{scheme: KEN, axes: []axis{{"", k.Levels}}}
}
