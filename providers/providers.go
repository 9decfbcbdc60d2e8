// Package providers holds classroute's catalogue of providers, regions
// and tenants (providers/catalog.yaml, embedded) and its strict loader.
// It owns the catalogue's file format; it imports router for the model
// and nothing that talks to the world.
package providers

import (
	"strconv"
	"strings"

	"github.com/classroute/classroute/router"
)

// Catalog is a set of providers, regions and tenants, as read from a
// catalogue file. Every entry has passed the router's validators, no id
// repeats, and every region's provider is listed.
type Catalog struct {
	Providers []router.Provider `yaml:"providers"`
	Regions   []router.Region   `yaml:"regions"`
	Tenants   []router.Tenant   `yaml:"tenants"`
}

// Problem is one fault in a catalogue.
type Problem struct {
	// Entry names the entry at fault, "regions[3] (aws/us-iso-east-1)";
	// empty when the fault is in the file as a whole.
	Entry string
	// Field is the path of the field at fault, as the validators name it
	// ("region.accreditation.expires"); empty when the whole entry is at fault.
	Field string
	// Line is the line of the field, or of the entry when the field is
	// missing; 0 when unknown.
	Line        int
	Description string
}

// Error is a catalogue that was refused. It lists every problem found,
// not just the first.
type Error struct {
	// Source names the catalogue: its path, or "catalog.yaml" for the default.
	Source   string
	Problems []Problem
}

// Error renders one problem a line:
//
//	catalog.yaml: regions[3] (aws/us-iso-east-1): region.accreditation.expires: required (line 212)
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Source)
		for _, part := range []string{p.Entry, p.Field, p.Description} {
			if part != "" {
				b.WriteString(": ")
				b.WriteString(part)
			}
		}
		if p.Line > 0 {
			b.WriteString(" (line ")
			b.WriteString(strconv.Itoa(p.Line))
			b.WriteByte(')')
		}
	}
	return b.String()
}
