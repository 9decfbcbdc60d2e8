package main

import (
	"fmt"
	"strings"
	"unicode"
)

// This file is a small parser of the proto3 files of this module: the
// declarations a reference needs (services and their methods, messages
// and their fields, oneofs and maps, enums and their values) with the
// comments that lead them. Options, reserved ranges and extensions are
// read past. It attaches comments as protoc's source info does: a
// comment block ending on the line before a declaration leads it; blocks
// separated from it by a blank line are detached; a comment on the line
// a declaration ends trails it.

// file is one parsed .proto file.
type file struct {
	name     string // base name, "placement.proto"
	pkg      string
	services []*service
	messages []*message // top level, in order
	enums    []*enum    // top level, in order
}

type service struct {
	name, doc string
	methods   []*method
}

type method struct {
	name, doc                      string
	in, out                        string
	clientStreaming, serverStreams bool
}

type message struct {
	fullName, name, doc string
	fields              []*field
	messages            []*message
	enums               []*enum
}

type field struct {
	name, doc  string
	typ        string // as written: "string", "Resources", "google.protobuf.Timestamp"
	mapKey     string // set for a map field; typ is then its value type
	label      string // "repeated", "optional" or ""
	number     string
	oneof      string // the oneof holding the field, if any
	deprecated bool
	scope      string // full name of the message declaring it, for resolving typ
}

type enum struct {
	fullName, name, doc string
	values              []*enumValue
}

type enumValue struct {
	name, doc, number string
	deprecated        bool
}

// token is one lexical token; comments are tokens too.
type token struct {
	text    string
	line    int  // line where it starts, from 1
	endLine int  // line where it ends
	comment bool // a // or /* */ comment
	ownLine bool // a comment with nothing but space before it on its line
}

// lex splits src into tokens.
func lex(src string) ([]token, error) {
	var toks []token
	line := 1
	lineHasCode := false
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			lineHasCode = false
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "//"):
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = len(src) - i
			}
			toks = append(toks, token{text: src[i : i+j], line: line, endLine: line, comment: true, ownLine: !lineHasCode})
			i += j
		case strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			text := src[i : i+2+j+2]
			n := strings.Count(text, "\n")
			toks = append(toks, token{text: text, line: line, endLine: line + n, comment: true, ownLine: !lineHasCode})
			line += n
			i += len(text)
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				if j < len(src) && src[j] == '\n' {
					return nil, fmt.Errorf("line %d: newline in string", line)
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			toks = append(toks, token{text: src[i : j+1], line: line, endLine: line})
			lineHasCode = true
			i = j + 1
		case isWord(rune(c)):
			j := i
			for j < len(src) && (isWord(rune(src[j])) || src[j] == '.') {
				j++
			}
			toks = append(toks, token{text: src[i:j], line: line, endLine: line})
			lineHasCode = true
			i = j
		case strings.ContainsRune("{}()[]<>;=,.-+:/", rune(c)):
			toks = append(toks, token{text: string(c), line: line, endLine: line})
			lineHasCode = true
			i++
		default:
			return nil, fmt.Errorf("line %d: unexpected character %q", line, c)
		}
	}
	return toks, nil
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// parser walks the tokens of one file.
type parser struct {
	toks []token // without comments
	// comments[i] are the comment tokens between toks[i-1] and toks[i];
	// comments[len(toks)] those after the last token.
	comments [][]token
	pos      int
	file     *file
	// trail receives the comment that trails the declaration just ended.
	trail *string
}

func parse(name, src string) (*file, error) {
	all, err := lex(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	p := &parser{file: &file{name: name}}
	var pending []token
	for _, t := range all {
		if t.comment {
			pending = append(pending, t)
			continue
		}
		p.comments = append(p.comments, pending)
		p.toks = append(p.toks, t)
		pending = nil
	}
	p.comments = append(p.comments, pending)
	if err := p.parseFile(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return p.file, nil
}

func (p *parser) peek() string {
	if p.pos >= len(p.toks) {
		return ""
	}
	return p.toks[p.pos].text
}

func (p *parser) line() int {
	if p.pos >= len(p.toks) {
		return 0
	}
	return p.toks[p.pos].line
}

func (p *parser) next() (string, error) {
	if p.pos >= len(p.toks) {
		return "", fmt.Errorf("unexpected end of file")
	}
	t := p.toks[p.pos].text
	p.pos++
	return t, nil
}

func (p *parser) expect(want string) error {
	line := p.line()
	got, err := p.next()
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("line %d: got %q; want %q", line, got, want)
	}
	return nil
}

// ident reads a name (or a dotted type name, with an optional leading dot).
func (p *parser) ident() (string, error) {
	line := p.line()
	t, err := p.next()
	if err != nil {
		return "", err
	}
	if t == "." {
		rest, err := p.ident()
		return "." + rest, err
	}
	if !isWord(rune(t[0])) {
		return "", fmt.Errorf("line %d: got %q; want a name", line, t)
	}
	return t, nil
}

// doc returns the comments that lead the declaration starting at the
// current token: the detached blocks first, then the leading block, as
// paragraphs. It also hands a comment on the previous token's line to
// the declaration that ended there.
func (p *parser) doc() string {
	cs := p.comments[p.pos]
	if p.pos > 0 && len(cs) > 0 && !cs[0].ownLine && cs[0].line == p.toks[p.pos-1].endLine {
		if p.trail != nil {
			*p.trail = joinDoc(*p.trail, commentText(cs[0].text))
		}
		cs = cs[1:]
	}
	p.trail = nil
	var blocks []string
	var cur []string
	last := -1
	for _, c := range cs {
		if last >= 0 && c.line > last+1 {
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur = nil
		}
		cur = append(cur, commentText(c.text))
		last = c.endLine
	}
	if len(cur) > 0 {
		blocks = append(blocks, strings.Join(cur, "\n"))
	}
	return strings.Join(blocks, "\n\n")
}

// ended records where the comment trailing the declaration just read goes.
func (p *parser) ended(doc *string) { p.trail = doc }

func joinDoc(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "\n\n" + b
}

// commentText strips the comment markers: "// " from a line comment;
// "/*", "*/" and a leading "*" on each line from a block comment.
func commentText(c string) string {
	if strings.HasPrefix(c, "//") {
		return strings.TrimRight(strings.TrimPrefix(strings.TrimPrefix(c, "//"), " "), " \t\r")
	}
	c = strings.TrimSuffix(strings.TrimPrefix(c, "/*"), "*/")
	var lines []string
	for _, l := range strings.Split(c, "\n") {
		l = strings.TrimSpace(l)
		l = strings.TrimSpace(strings.TrimPrefix(l, "*"))
		lines = append(lines, l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// skipStatement reads past everything up to and including the ';' that
// ends the statement, and any balanced braces or brackets on the way.
func (p *parser) skipStatement() error {
	depth := 0
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch t {
		case "{", "[", "(":
			depth++
		case "}", "]", ")":
			depth--
		case ";":
			if depth == 0 {
				return nil
			}
		}
	}
}

// skipBlock reads a balanced { ... } block; the '{' is next.
func (p *parser) skipBlock() error {
	if err := p.expect("{"); err != nil {
		return err
	}
	for depth := 1; depth > 0; {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch t {
		case "{":
			depth++
		case "}":
			depth--
		}
	}
	return nil
}

func (p *parser) parseFile() error {
	for p.pos < len(p.toks) {
		doc := p.doc()
		switch kw := p.peek(); kw {
		case ";":
			p.pos++
		case "syntax", "edition":
			line := p.line()
			if err := p.skipStatement(); err != nil {
				return err
			}
			if kw == "edition" {
				return fmt.Errorf("line %d: editions are not supported", line)
			}
		case "package":
			p.pos++
			name, err := p.ident()
			if err != nil {
				return err
			}
			p.file.pkg = name
			if err := p.expect(";"); err != nil {
				return err
			}
		case "import", "option":
			if err := p.skipStatement(); err != nil {
				return err
			}
		case "message":
			m, err := p.parseMessage(p.file.pkg, doc)
			if err != nil {
				return err
			}
			p.file.messages = append(p.file.messages, m)
		case "enum":
			e, err := p.parseEnum(p.file.pkg, doc)
			if err != nil {
				return err
			}
			p.file.enums = append(p.file.enums, e)
		case "service":
			s, err := p.parseService(doc)
			if err != nil {
				return err
			}
			p.file.services = append(p.file.services, s)
		case "extend":
			p.pos++
			if _, err := p.ident(); err != nil {
				return err
			}
			if err := p.skipBlock(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("line %d: unexpected %q at top level", p.line(), kw)
		}
	}
	return nil
}

func (p *parser) parseMessage(scope, doc string) (*message, error) {
	p.pos++ // "message"
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	m := &message{name: name, fullName: scope + "." + name, doc: doc}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	if err := p.parseBody(m, ""); err != nil {
		return nil, err
	}
	p.ended(&m.doc)
	return m, nil
}

// parseBody reads the declarations of a message, or of a oneof in it,
// up to and including the closing '}'.
func (p *parser) parseBody(m *message, oneof string) error {
	for {
		doc := p.doc()
		switch kw := p.peek(); kw {
		case "":
			return fmt.Errorf("unexpected end of file in message %s", m.name)
		case "}":
			p.pos++
			return nil
		case ";":
			p.pos++
		case "option", "reserved", "extensions":
			if err := p.skipStatement(); err != nil {
				return err
			}
		case "message":
			if oneof != "" {
				return fmt.Errorf("line %d: message in oneof %s", p.line(), oneof)
			}
			n, err := p.parseMessage(m.fullName, doc)
			if err != nil {
				return err
			}
			m.messages = append(m.messages, n)
		case "enum":
			e, err := p.parseEnum(m.fullName, doc)
			if err != nil {
				return err
			}
			m.enums = append(m.enums, e)
		case "extend":
			p.pos++
			if _, err := p.ident(); err != nil {
				return err
			}
			if err := p.skipBlock(); err != nil {
				return err
			}
		case "oneof":
			p.pos++
			name, err := p.ident()
			if err != nil {
				return err
			}
			if err := p.expect("{"); err != nil {
				return err
			}
			if err := p.parseBody(m, name); err != nil {
				return err
			}
		default:
			f, err := p.parseField(m.fullName, doc)
			if err != nil {
				return err
			}
			f.oneof = oneof
			m.fields = append(m.fields, f)
		}
	}
}

func (p *parser) parseField(scope, doc string) (*field, error) {
	f := &field{doc: doc, scope: scope}
	switch p.peek() {
	case "repeated", "optional", "required":
		f.label = p.peek()
		p.pos++
	}
	if p.peek() == "map" && p.pos+1 < len(p.toks) && p.toks[p.pos+1].text == "<" {
		p.pos += 2
		k, err := p.ident()
		if err != nil {
			return nil, err
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
		v, err := p.ident()
		if err != nil {
			return nil, err
		}
		if err := p.expect(">"); err != nil {
			return nil, err
		}
		f.mapKey, f.typ = k, v
	} else {
		t, err := p.ident()
		if err != nil {
			return nil, err
		}
		f.typ = t
	}
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	f.name = name
	if err := p.expect("="); err != nil {
		return nil, err
	}
	if f.number, err = p.ident(); err != nil {
		return nil, err
	}
	if f.deprecated, err = p.fieldOptions(); err != nil {
		return nil, err
	}
	if err := p.expect(";"); err != nil {
		return nil, err
	}
	p.ended(&f.doc)
	return f, nil
}

// fieldOptions reads an optional [ ... ] list of options and reports
// whether it holds deprecated = true.
func (p *parser) fieldOptions() (deprecated bool, err error) {
	if p.peek() != "[" {
		return false, nil
	}
	var opts []string
	for depth := 0; ; {
		t, err := p.next()
		if err != nil {
			return false, err
		}
		opts = append(opts, t)
		switch t {
		case "[", "{":
			depth++
		case "]", "}":
			depth--
		}
		if depth == 0 {
			break
		}
	}
	s := strings.Join(opts, " ")
	return strings.Contains(s, "deprecated = true"), nil
}

func (p *parser) parseEnum(scope, doc string) (*enum, error) {
	p.pos++ // "enum"
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	e := &enum{name: name, fullName: scope + "." + name, doc: doc}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	for {
		doc := p.doc()
		switch p.peek() {
		case "":
			return nil, fmt.Errorf("unexpected end of file in enum %s", name)
		case "}":
			p.pos++
			p.ended(&e.doc)
			return e, nil
		case ";":
			p.pos++
		case "option", "reserved":
			if err := p.skipStatement(); err != nil {
				return nil, err
			}
		default:
			v := &enumValue{doc: doc}
			if v.name, err = p.ident(); err != nil {
				return nil, err
			}
			if err := p.expect("="); err != nil {
				return nil, err
			}
			if p.peek() == "-" {
				p.pos++
				v.number = "-"
			}
			n, err := p.ident()
			if err != nil {
				return nil, err
			}
			v.number += n
			if v.deprecated, err = p.fieldOptions(); err != nil {
				return nil, err
			}
			if err := p.expect(";"); err != nil {
				return nil, err
			}
			p.ended(&v.doc)
			e.values = append(e.values, v)
		}
	}
}

func (p *parser) parseService(doc string) (*service, error) {
	p.pos++ // "service"
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	s := &service{name: name, doc: doc}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	for {
		doc := p.doc()
		switch kw := p.peek(); kw {
		case "":
			return nil, fmt.Errorf("unexpected end of file in service %s", name)
		case "}":
			p.pos++
			p.ended(&s.doc)
			return s, nil
		case ";":
			p.pos++
		case "option":
			if err := p.skipStatement(); err != nil {
				return nil, err
			}
		case "rpc":
			m, err := p.parseMethod(doc)
			if err != nil {
				return nil, err
			}
			s.methods = append(s.methods, m)
		default:
			return nil, fmt.Errorf("line %d: unexpected %q in service %s", p.line(), kw, name)
		}
	}
}

func (p *parser) parseMethod(doc string) (*method, error) {
	p.pos++ // "rpc"
	m := &method{doc: doc}
	var err error
	if m.name, err = p.ident(); err != nil {
		return nil, err
	}
	arg := func() (string, bool, error) {
		if err := p.expect("("); err != nil {
			return "", false, err
		}
		stream := false
		if p.peek() == "stream" && p.pos+1 < len(p.toks) && p.toks[p.pos+1].text != ")" {
			stream = true
			p.pos++
		}
		t, err := p.ident()
		if err != nil {
			return "", false, err
		}
		return t, stream, p.expect(")")
	}
	if m.in, m.clientStreaming, err = arg(); err != nil {
		return nil, err
	}
	if err := p.expect("returns"); err != nil {
		return nil, err
	}
	if m.out, m.serverStreams, err = arg(); err != nil {
		return nil, err
	}
	if p.peek() == "{" {
		if err := p.skipBlock(); err != nil {
			return nil, err
		}
	} else if err := p.expect(";"); err != nil {
		return nil, err
	}
	p.ended(&m.doc)
	return m, nil
}
