package providers

import (
	"bytes"
	_ "embed"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/classroute/classroute/router"
)

//go:embed catalog.yaml
var defaultCatalog []byte

// DefaultSource is the name the embedded catalogue goes by in errors.
const DefaultSource = "catalog.yaml"

// Default returns the embedded default catalogue: real public regions
// with illustrative capacity, cost, expiry and personnel data. Each call
// returns a fresh copy.
func Default() (*Catalog, error) { return Parse(defaultCatalog, DefaultSource) }

// Load reads and checks the catalogue file at path.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load catalogue: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes and checks a catalogue; source names it in errors. The
// error is nil or an *Error listing every problem.
//
// Decoding is strict: an unknown or repeated key, a value of the wrong
// kind, an unknown enum name or a YAML alias is an error naming the entry
// and field. yaml.v3's own Decoder.KnownFields stops at the first enum it
// cannot read and does not say where it was, so the document is walked
// against the Go types instead (checkNode), and each entry is decoded only
// once its walk is clean. Every decoded entry then goes through the
// router's validators, and the catalogue as a whole is checked for
// repeated ids and regions of unknown providers.
func Parse(data []byte, source string) (*Catalog, error) {
	p := &parser{}
	c := p.parse(data)
	if len(p.problems) > 0 {
		return nil, &Error{Source: source, Problems: p.problems}
	}
	return c, nil
}

type parser struct {
	problems []Problem
}

func (p *parser) add(entry, field string, line int, format string, args ...any) {
	p.problems = append(p.problems, Problem{Entry: entry, Field: field, Line: line, Description: fmt.Sprintf(format, args...)})
}

// entry is one decoded list item, with what errors call it.
type entry[T any] struct {
	name string // "regions[3] (aws/us-iso-east-1)"
	line int
	v    T
}

func (p *parser) parse(data []byte) *Catalog {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add("", "", 0, "empty; want a mapping with providers, regions and tenants")
		} else {
			p.add("", "", 0, "%v", err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.add("", "", extra.Line, "want one YAML document, found more")
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		p.add("", "", root.Line, "want a mapping with providers, regions and tenants")
		return nil
	}

	sections := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		_, seen := sections[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode || (k.Value != "providers" && k.Value != "regions" && k.Value != "tenants"):
			p.add("", k.Value, k.Line, "unknown field (want providers, regions, tenants)")
		case seen:
			p.add("", k.Value, k.Line, "repeated key")
		case v.Kind != yaml.SequenceNode && v.ShortTag() != "!!null":
			p.add("", k.Value, v.Line, "want a list")
		default:
			sections[k.Value] = v
		}
	}

	providers := decodeSection(p, sections["providers"], "providers", "provider", router.ValidateProvider,
		func(n *yaml.Node) string { return scalarField(n, "id") })
	regions := decodeSection(p, sections["regions"], "regions", "region", router.ValidateRegion,
		func(n *yaml.Node) string { return scalarField(n, "provider") + "/" + scalarField(n, "id") })
	tenants := decodeSection(p, sections["tenants"], "tenants", "tenant", router.ValidateTenant,
		func(n *yaml.Node) string { return scalarField(n, "id") })

	// A region of a provider whose entry is broken is not blamed for it:
	// the provider's problems are already listed.
	knownProviders := map[string]bool{}
	if n := sections["providers"]; n != nil {
		for _, item := range n.Content {
			knownProviders[scalarField(item, "id")] = true
		}
	}
	checkUnique(p, providers, "provider.id", "provider", func(v *router.Provider) string { return v.ID })
	checkUnique(p, regions, "region.id", "region", func(v *router.Region) string { return v.Key() })
	checkUnique(p, tenants, "tenant.id", "tenant", func(v *router.Tenant) string { return v.ID })
	for _, r := range regions {
		if !knownProviders[r.v.Provider] {
			p.add(r.name, "region.provider", r.line, "unknown provider %q: list it under providers", r.v.Provider)
		}
	}
	if len(p.problems) > 0 {
		return nil
	}
	return &Catalog{Providers: values(providers), Regions: values(regions), Tenants: values(tenants)}
}

// decodeSection decodes and validates the items of one top-level list.
// noun prefixes field paths ("region"), as the validators do; key says
// what to call an item in errors ("aws/us-iso-east-1"). Items with
// problems are left out of the result.
func decodeSection[T any](p *parser, seq *yaml.Node, section, noun string, validate func(*T) error, key func(*yaml.Node) string) []entry[T] {
	if seq == nil {
		return nil
	}
	var out []entry[T]
	for i, item := range seq.Content {
		name := section + "[" + strconv.Itoa(i) + "]"
		if k := key(item); strings.Trim(k, "/") != "" {
			name += " (" + k + ")"
		}
		w := walker{lines: map[string]int{}}
		var v T
		w.checkNode(item, reflect.TypeOf(v), noun)
		for _, f := range w.faults {
			p.add(name, f.path, f.line, "%s", f.msg)
		}
		if len(w.faults) > 0 {
			continue
		}
		if err := item.Decode(&v); err != nil {
			p.add(name, "", item.Line, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			continue
		}
		if err := validate(&v); err != nil {
			var inv *router.InvalidError
			if !errors.As(err, &inv) {
				p.add(name, "", item.Line, "%v", err)
				continue
			}
			for _, fv := range inv.Violations {
				p.add(name, fv.Field, w.line(fv.Field, item.Line), "%s", fv.Description)
			}
			continue
		}
		out = append(out, entry[T]{name: name, line: item.Line, v: v})
	}
	return out
}

func checkUnique[T any](p *parser, es []entry[T], field, noun string, key func(*T) string) {
	first := map[string]string{}
	for i := range es {
		k := key(&es[i].v)
		if prev, dup := first[k]; dup {
			p.add(es[i].name, field, es[i].line, "duplicate %s %s (first at %s)", noun, k, prev)
			continue
		}
		first[k], _, _ = strings.Cut(es[i].name, " ")
	}
}

func values[T any](es []entry[T]) []T {
	out := make([]T, len(es))
	for i := range es {
		out[i] = es[i].v
	}
	return out
}

// scalarField returns the value of key in mapping n, or "" if it has none.
func scalarField(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == key && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

// walker checks a YAML node tree against a Go type before it is decoded.
type walker struct {
	faults []fault
	// lines maps each field path seen to its line, so that validator
	// violations can say where the field is.
	lines map[string]int
}

// line returns the line of the field at path, or of its nearest
// ancestor present in the document ("region.accreditation" when
// "region.accreditation.expires" is missing), or else def.
func (w *walker) line(path string, def int) int {
	for path != "" {
		if l, ok := w.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return def
}

type fault struct {
	path, msg string
	line      int
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	timeType        = reflect.TypeFor[time.Time]()
	yamlLineRE      = regexp.MustCompile(`^line \d+: `)
)

func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.faults = append(w.faults, fault{path: path, msg: fmt.Sprintf(format, args...), line: n.Line})
}

// checkNode checks n against type t at path: mappings for structs with
// only known keys, each once; sequences for slices; scalars that decode
// into t for everything else. Null is always accepted (the zero value);
// the validators decide whether it may be zero.
func (w *walker) checkNode(n *yaml.Node, t reflect.Type, path string) {
	w.lines[path] = n.Line
	if n.Kind == yaml.AliasNode {
		w.fail(n, path, "YAML aliases are not allowed in a catalogue")
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case reflect.PointerTo(t).Implements(textUnmarshaler) || (t.Kind() != reflect.Struct && t.Kind() != reflect.Slice):
		w.checkScalar(n, t, path)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "want a mapping, got %s", kindName(n))
			return
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := path + "." + k.Value
			f, ok := fields[k.Value]
			switch {
			case k.Kind != yaml.ScalarNode:
				w.fail(k, path, "want a field name, got %s", kindName(k))
			case !ok:
				w.fail(k, name, "unknown field")
			case seen[k.Value]:
				w.fail(k, name, "repeated key")
			default:
				seen[k.Value] = true
				w.checkNode(v, f.Type, name)
			}
		}
	default: // slice
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "want a list, got %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			w.checkNode(c, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	}
}

// checkScalar decodes the scalar n into a fresh value of type t and
// reports what yaml.v3 or the type's UnmarshalText says is wrong with it.
func (w *walker) checkScalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		w.fail(n, path, "want a single value, got %s", kindName(n))
		return
	}
	if k := t.Kind(); k >= reflect.Int && k <= reflect.Uint64 && n.ShortTag() == "!!float" {
		// yaml.v3 would truncate 1.5 to 1 without a word.
		w.fail(n, path, "want a whole number, got %s", n.Value)
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		if t == timeType {
			w.fail(n, path, "want an RFC 3339 date-time like 2028-09-30T00:00:00Z, got %q", n.Value)
			return
		}
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = yamlLineRE.ReplaceAllString(te.Errors[0], "")
		}
		w.fail(n, path, "%s", msg)
	}
}

// yamlFields maps the yaml keys of struct t to its fields, as yaml.v3
// names them: the tag's name, or the lowercased field name.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}
