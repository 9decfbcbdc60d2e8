package equiv

import (
	"bytes"
	_ "embed"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/classroute/classroute/router/marking"
)

//go:embed data/default.yaml
var defaultData []byte

// Parse reads entries from YAML: a document with an "entries" list;
// unknown fields are errors, and every entry is validated.
func Parse(data []byte, source string, p marking.Parser) ([]Entry, error) {
	es, err := decode(data, source)
	if err != nil {
		return nil, err
	}
	return validated(es, source, p)
}

func decode(data []byte, source string) ([]Entry, error) {
	var doc struct {
		Entries []Entry `yaml:"entries"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return doc.Entries, nil
}

func validated(entries []Entry, source string, p marking.Parser) ([]Entry, error) {
	doc := struct{ Entries []Entry }{entries}
	for i := range doc.Entries {
		if err := doc.Entries[i].Validate(p); err != nil {
			return nil, fmt.Errorf("%s: entries[%d]: %w", source, i, err)
		}
	}
	if _, err := NewTable(doc.Entries); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return doc.Entries, nil
}

// Default returns the default entries (data/default.yaml): what the
// project's sources support, illustrative where they are uncertain.
//
// Kenya's levels are configuration (marking.ConfigureKenya): rows from a
// Kenyan level the levels in use do not have are left out, and an entry
// from KEN left with no row is left out; a Kenyan label then has no
// equivalence at all, which is what those rows said.
func Default() []Entry {
	es, err := decode(defaultData, "equiv/data/default.yaml")
	if err != nil {
		panic(err) // the embedded data is tested
	}
	kept := es[:0]
	for _, e := range es {
		if e.From == marking.KEN {
			rows := e.Levels[:0]
			for _, m := range e.Levels {
				if _, err := (marking.Parser{}).ParseLevel(marking.KEN, m.From); err == nil {
					rows = append(rows, m)
				}
			}
			if e.Levels = rows; len(rows) == 0 {
				continue
			}
		}
		kept = append(kept, e)
	}
	es, err = validated(kept, "equiv/data/default.yaml", marking.Parser{})
	if err != nil {
		panic(err) // the embedded data is tested
	}
	return es
}
