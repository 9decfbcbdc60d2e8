// Command gendoc writes the API reference, docs/api.md, from the comments
// of the protos in proto/classroute/v1: run it from the repository's
// root as
//
//	go run ./proto/gendoc > docs/api.md
//
// The generated *.pb.go files embed the descriptors without comments, so
// gendoc reads the .proto files themselves (parse.go). A test fails when
// docs/api.md differs from what gendoc writes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Command is how the reference is regenerated; the test's failure says it.
const Command = "go run ./proto/gendoc > docs/api.md"

func main() {
	dir := flag.String("dir", "proto/classroute/v1", "directory of the .proto files")
	flag.Parse()
	out, err := generate(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

// generate reads every .proto file of dir and returns the reference.
func generate(dir string) ([]byte, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.proto"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no .proto files in %s", dir)
	}
	slices.Sort(paths)
	var files []*file
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		f, err := parse(filepath.Base(path), string(src))
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return render(files), nil
}

// fileOrder puts the files with services first, as a reader looks for
// the calls before the types; then by name.
func fileOrder(files []*file) []*file {
	out := slices.Clone(files)
	slices.SortStableFunc(out, func(a, b *file) int {
		ha, hb := len(a.services) > 0, len(b.services) > 0
		switch {
		case ha && !hb:
			return -1
		case hb && !ha:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// renderer writes the reference; known maps every message and enum's
// full name to its heading anchor.
type renderer struct {
	b     bytes.Buffer
	known map[string]bool
}

func render(files []*file) []byte {
	r := &renderer{known: map[string]bool{}}
	var walk func(ms []*message, es []*enum)
	walk = func(ms []*message, es []*enum) {
		for _, e := range es {
			r.known[e.fullName] = true
		}
		for _, m := range ms {
			r.known[m.fullName] = true
			walk(m.messages, m.enums)
		}
	}
	for _, f := range files {
		walk(f.messages, f.enums)
	}
	files = fileOrder(files)

	r.printf("# API reference\n\n")
	r.printf("<!-- Generated from proto/classroute/v1/*.proto by `%s`; do not edit. -->\n\n", Command)
	r.printf("The gRPC API of classroute, package `%s`, from the comments of its\n", files[0].pkg)
	r.printf("protos (`proto/classroute/v1/`). Errors and their details are listed in\n")
	r.printf("[Errors](operations.md#errors); who may call each method, in\n")
	r.printf("[Who may do what](security.md#who-may-do-what).\n\n")
	for _, f := range files {
		r.printf("- [`%s`](#%s):", f.name, slug(f.name))
		var names []string
		for _, s := range f.services {
			names = append(names, fmt.Sprintf(" [`%s`](#%s)", s.name, slug(f.pkg+"."+s.name)))
		}
		if len(names) == 0 {
			names = append(names, " the shared types")
		}
		r.printf("%s\n", strings.Join(names, ","))
	}
	for _, f := range files {
		r.printf("\n## %s\n", "`"+f.name+"`")
		for _, s := range f.services {
			r.service(f.pkg, s)
		}
		for _, m := range f.messages {
			r.message(m)
		}
		for _, e := range f.enums {
			r.enum(e)
		}
	}
	return r.b.Bytes()
}

func (r *renderer) printf(format string, args ...any) { fmt.Fprintf(&r.b, format, args...) }

// para writes a comment as Markdown paragraphs.
func (r *renderer) para(doc string) {
	if doc = strings.TrimSpace(doc); doc != "" {
		r.printf("\n%s\n", doc)
	}
}

func (r *renderer) service(pkg string, s *service) {
	r.printf("\n### `%s.%s`\n", pkg, s.name)
	r.para(s.doc)
	r.printf("\n| method | request | response |\n|---|---|---|\n")
	for _, m := range s.methods {
		r.printf("| [`%s`](#%s) | %s | %s |\n", m.name, slug(s.name+"."+m.name),
			r.streamType(m.clientStreaming, m.in, pkg), r.streamType(m.serverStreams, m.out, pkg))
	}
	for _, m := range s.methods {
		in, out := m.in, m.out
		if m.clientStreaming {
			in = "stream " + in
		}
		if m.serverStreams {
			out = "stream " + out
		}
		r.printf("\n#### `%s.%s`\n\n`rpc %s(%s) returns (%s)`\n", s.name, m.name, m.name, in, out)
		r.para(m.doc)
	}
}

func (r *renderer) streamType(stream bool, typ, scope string) string {
	t := r.typeRef(typ, scope)
	if stream {
		return "stream " + t
	}
	return t
}

func (r *renderer) message(m *message) {
	r.printf("\n### `%s`\n", m.fullName)
	r.para(m.doc)
	if len(m.fields) == 0 {
		r.printf("\nNo fields.\n")
	} else {
		r.printf("\n| field | type | description |\n|---|---|---|\n")
		for _, f := range m.fields {
			desc := cell(f.doc)
			if f.oneof != "" {
				desc = strings.TrimSpace(fmt.Sprintf("One of `%s`. %s", f.oneof, desc))
			}
			desc = deprecated(f.deprecated, desc)
			r.printf("| `%s` = %s | %s | %s |\n", f.name, f.number, r.fieldType(f), desc)
		}
	}
	for _, n := range m.messages {
		r.message(n)
	}
	for _, e := range m.enums {
		r.enum(e)
	}
}

// deprecated marks the description of a deprecated field or value,
// unless its comment already says so.
func deprecated(is bool, desc string) string {
	if !is || strings.HasPrefix(desc, "Deprecated") {
		return desc
	}
	return strings.TrimSpace("Deprecated. " + desc)
}

func (r *renderer) fieldType(f *field) string {
	t := r.typeRef(f.typ, f.scope)
	switch {
	case f.mapKey != "":
		return fmt.Sprintf("map<`%s`, %s>", f.mapKey, t)
	case f.label != "":
		return f.label + " " + t
	}
	return t
}

func (r *renderer) enum(e *enum) {
	r.printf("\n### `%s`\n", e.fullName)
	r.para(e.doc)
	r.printf("\n| value | number | description |\n|---|---|---|\n")
	for _, v := range e.values {
		desc := cell(v.doc)
		desc = deprecated(v.deprecated, desc)
		r.printf("| `%s` | %s | %s |\n", v.name, v.number, desc)
	}
}

// typeRef writes a type, linked to its section when it is one of ours.
// A name is resolved as protoc does: in the scope where it is used, then
// in each enclosing scope.
func (r *renderer) typeRef(name, scope string) string {
	if strings.HasPrefix(name, ".") {
		return r.typeRef(name[1:], "")
	}
	for s := scope; s != ""; {
		if full := s + "." + name; r.known[full] {
			return fmt.Sprintf("[`%s`](#%s)", name, slug(full))
		}
		i := strings.LastIndexByte(s, '.')
		if i < 0 {
			break
		}
		s = s[:i]
	}
	if r.known[name] {
		return fmt.Sprintf("[`%s`](#%s)", shortName(name), slug(name))
	}
	if strings.HasPrefix(name, "google.protobuf.") {
		return fmt.Sprintf("[`%s`](%s#%s)", name, wellKnownTypes, strings.ToLower(shortName(name)))
	}
	return "`" + name + "`"
}

// wellKnownTypes documents google.protobuf's messages, one anchor each.
const wellKnownTypes = "https://protobuf.dev/reference/protobuf/google.protobuf/"

func shortName(full string) string { return full[strings.LastIndexByte(full, '.')+1:] }

// cell makes a comment fit a table cell: one line, pipes escaped.
func cell(doc string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(doc), " "), "|", `\|`)
}

// slug is GitHub's anchor of a heading whose text is s: lower case, with
// every character but letters, digits, '-' and '_' dropped.
func slug(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c == ' ':
			b.WriteByte('-')
		case c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteRune(c)
		}
	}
	return b.String()
}
