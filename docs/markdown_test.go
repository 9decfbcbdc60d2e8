package docs

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// page is one Markdown file as the checks see it: its lines, which of
// them lie inside fenced code blocks, and the problems found with its
// fences.
type page struct {
	path   string // slash-separated, relative to the repository root
	lines  []string
	code   []bool   // code[i]: line i is a fence or inside a fenced block
	faults []string // "line N: ..." problems with the fences
}

// fenceRe matches a line that opens or closes a fenced code block
// (CommonMark: up to three spaces of indent, then three or more
// backticks or tildes).
var fenceRe = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})(.*)$")

// parsePage splits text into lines and marks the fenced blocks. A fence
// must be closed before the end of the file, and inside a block a line
// that starts with at least as many of the fence's characters but
// carries text after them does not close it: such a line is reported,
// since it is almost always a closing fence run into the next sentence,
// which swallows everything after it (headings included) into the block.
func parsePage(path, text string) *page {
	p := &page{path: path, lines: strings.Split(text, "\n")}
	p.code = make([]bool, len(p.lines))
	open, openLine := "", 0 // the opening fence's run, and its line
	for i, line := range p.lines {
		m := fenceRe.FindStringSubmatch(line)
		if open == "" {
			if m == nil {
				continue
			}
			if m[1][0] == '`' && strings.Contains(m[2], "`") {
				continue // not a fence: an inline code span at the start of a line
			}
			open, openLine = m[1], i+1
			p.code[i] = true
			continue
		}
		p.code[i] = true
		if m == nil || m[1][0] != open[0] || len(m[1]) < len(open) {
			continue
		}
		if strings.TrimSpace(m[2]) == "" {
			open = ""
			continue
		}
		p.faults = append(p.faults, fmt.Sprintf("line %d: %q inside the code block opened at line %d does not close it (text after the fence)", i+1, line, openLine))
	}
	if open != "" {
		p.faults = append(p.faults, fmt.Sprintf("line %d: code fence %q is never closed", openLine, open))
	}
	return p
}

// headingRe matches an ATX heading; the text is group 2.
var headingRe = regexp.MustCompile(`^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$`)

// anchors returns the page's heading anchors as GitHub makes them: the
// heading's text (inline markup reduced to its text) in lower case,
// every character that is not a letter, a digit, a space, a hyphen or
// an underscore removed, spaces turned into hyphens; a repeated anchor
// gets -1, -2, ... appended in order.
func (p *page) anchors() map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for i, line := range p.lines {
		if p.code[i] {
			continue
		}
		m := headingRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := slug(m[2])
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// inlineLinkRe matches the text of a Markdown link or image, keeping
// the link text; used to reduce a heading to what GitHub renders.
var inlineLinkRe = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// slug is GitHub's anchor for a heading's text.
func slug(heading string) string {
	text := inlineLinkRe.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// link is one link target found on a page.
type link struct {
	line   int
	target string
}

var (
	// linkRe matches an inline link or image: [text](target) or
	// [text](target "title"); the target is group 1.
	linkRe = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// refDefRe matches a link reference definition: [name]: target.
	refDefRe = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	// codeSpanRe matches an inline code span, whose text is no link.
	codeSpanRe = regexp.MustCompile("`+[^`]*`+")
)

// links returns every link target outside code blocks and code spans.
func (p *page) links() []link {
	var out []link
	for i, line := range p.lines {
		if p.code[i] {
			continue
		}
		line = codeSpanRe.ReplaceAllString(line, "``")
		for _, m := range linkRe.FindAllStringSubmatch(line, -1) {
			out = append(out, link{i + 1, m[1]})
		}
		if m := refDefRe.FindStringSubmatch(line); m != nil {
			out = append(out, link{i + 1, m[1]})
		}
	}
	return out
}

// repo is the set of Markdown pages under a root, read once.
type repo struct {
	root  string
	pages map[string]*page // by slash path relative to root
}

// skipDir reports directories whose Markdown is not the repository's
// documentation: hidden ones (.git, .notes, .cluster, .ci), run-time
// data and build output.
func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || name == "classroute-data" || name == "bin" || name == "testdata"
}

// loadRepo reads every Markdown file under root.
func loadRepo(root string) (*repo, error) {
	r := &repo{root: root, pages: map[string]*page{}}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".md") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		r.pages[rel] = parsePage(rel, string(b))
		return nil
	})
	return r, err
}

// check returns every problem of one page: its fences, and each
// relative link that leaves the repository, names no file, or names a
// heading its page lacks. Links with a scheme (https:, mailto:) are not
// followed.
func (r *repo) check(p *page) []string {
	faults := append([]string(nil), p.faults...)
	for _, l := range p.links() {
		u, err := url.Parse(l.target)
		if err != nil {
			faults = append(faults, fmt.Sprintf("line %d: link %q does not parse: %v", l.line, l.target, err))
			continue
		}
		if u.Scheme != "" || u.Host != "" {
			continue
		}
		target := p
		if u.Path != "" {
			rel := filepath.ToSlash(filepath.Join(filepath.Dir(p.path), u.Path))
			if strings.HasPrefix(u.Path, "/") || rel == ".." || strings.HasPrefix(rel, "../") {
				faults = append(faults, fmt.Sprintf("line %d: link %q leaves the repository", l.line, l.target))
				continue
			}
			if _, err := os.Stat(filepath.Join(r.root, filepath.FromSlash(rel))); err != nil {
				faults = append(faults, fmt.Sprintf("line %d: link %q: no such file %s", l.line, l.target, rel))
				continue
			}
			target = r.pages[rel]
		}
		if u.Fragment == "" {
			continue
		}
		if target == nil {
			faults = append(faults, fmt.Sprintf("line %d: link %q: an anchor into a file that is not Markdown", l.line, l.target))
			continue
		}
		if !target.anchors()[u.Fragment] {
			faults = append(faults, fmt.Sprintf("line %d: link %q: %s has no heading with anchor #%s", l.line, l.target, target.path, u.Fragment))
		}
	}
	for i, line := range p.lines {
		if strings.Contains(line, "../shared/") || strings.Contains(line, "shared/DOMAIN.md") {
			faults = append(faults, fmt.Sprintf("line %d: refers to shared/DOMAIN.md, which is not part of the repository", i+1))
		}
	}
	return faults
}
