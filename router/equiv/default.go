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
	var doc struct {
		Entries []Entry `yaml:"entries"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
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
func Default() []Entry {
	es, err := Parse(defaultData, "equiv/data/default.yaml", marking.Parser{})
	if err != nil {
		panic(err) // the embedded data is tested
	}
	return es
}
