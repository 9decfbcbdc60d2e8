package docs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/cmd/cmdtest"
	"github.com/classroute/classroute/router/etcdtest"
)

// TestMain removes the binaries the tour test built.
func TestMain(m *testing.M) { cmdtest.Main(m) }

// tourStep is one fenced sh block of the tour and the text block after
// it, if any.
type tourStep struct {
	line       int      // of the block's opening fence in README.md
	commands   []string // one logical line each (continuations joined)
	background bool     // "# In a terminal of its own:"
	want       *string  // the text block after it, if any
}

// tourSteps reads the README's tour: its fenced blocks up to the next
// "## " heading, by the convention the comment at its top states.
func tourSteps(readme string) ([]tourStep, error) {
	start := strings.Index(readme, "\n## A five-minute tour\n")
	if start < 0 {
		return nil, fmt.Errorf(`README.md has no "## A five-minute tour" section`)
	}
	body := readme[start+1:]
	if end := strings.Index(body[3:], "\n## "); end >= 0 {
		body = body[:end+3]
	}
	firstLine := strings.Count(readme[:start+1], "\n") + 1
	lines := strings.Split(body, "\n")
	var steps []tourStep
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		lang := strings.TrimPrefix(fence, "```")
		var block []string
		j := i + 1
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
			block = append(block, lines[j])
		}
		if j == len(lines) {
			return nil, fmt.Errorf("README.md line %d: unclosed fence", firstLine+i)
		}
		switch lang {
		case "sh":
			st := tourStep{line: firstLine + i}
			var cur string
			for _, l := range block {
				if strings.HasPrefix(strings.TrimSpace(l), "#") {
					if strings.TrimSpace(l) == "# In a terminal of its own:" {
						st.background = true
					}
					continue
				}
				if strings.HasSuffix(l, `\`) {
					cur += strings.TrimSuffix(l, `\`) + " "
					continue
				}
				cur += l
				if strings.TrimSpace(cur) != "" {
					st.commands = append(st.commands, cur)
				}
				cur = ""
			}
			steps = append(steps, st)
		case "text":
			if len(steps) == 0 || steps[len(steps)-1].want != nil {
				return nil, fmt.Errorf("README.md line %d: a text block that follows no sh block", firstLine+i)
			}
			want := strings.Join(block, "\n")
			steps[len(steps)-1].want = &want
		default:
			return nil, fmt.Errorf("README.md line %d: a tour block is sh or text, not %q", firstLine+i, lang)
		}
		i = j
	}
	return steps, nil
}

// matchOutput reports whether got matches want: line by line, trailing
// spaces ignored; a want line "..." matches any lines (none too), and
// "…" within a line any text.
func matchOutput(want, got string) bool {
	norm := func(s string) []string {
		var out []string
		for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			out = append(out, strings.TrimRight(l, " \t"))
		}
		return out
	}
	w, g := norm(want), norm(got)
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if i == len(w) {
			return j == len(g)
		}
		if w[i] == "..." {
			for k := j; k <= len(g); k++ {
				if match(i+1, k) {
					return true
				}
			}
			return false
		}
		if j == len(g) || !lineMatches(w[i], g[j]) {
			return false
		}
		return match(i+1, j+1)
	}
	return match(0, 0)
}

func lineMatches(want, got string) bool {
	parts := strings.Split(want, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}

func freePort(t *testing.T) string { return etcdtest.FreeAddr(t) }

// The README's five-minute tour, run as a new user would paste it, in
// one bash session, against the built binaries: every command exits 0
// and prints what the README shows. Two things differ, and only in how
// the session is set up: `go run ./cmd/classrouted` and
// `go build -o bin/ ./cmd/...` run the binaries this test built (a
// shell function named go), and the daemon listens on free loopback
// ports, which CLASSROUTE_SERVER gives the CLI, so the tour never
// collides with another test or a daemon already running.
func TestREADMETour(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon and the CLI")
	}
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	root := cmdtest.RepoRoot()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := tourSteps(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 5 {
		t.Fatalf("the tour has %d steps: the parser found too few", len(steps))
	}
	dir, out := t.TempDir(), t.TempDir()
	if err := os.Symlink(filepath.Join(root, "examples"), filepath.Join(dir, "examples")); err != nil {
		t.Fatal(err)
	}
	server := freePort(t)
	var sh strings.Builder
	fmt.Fprintf(&sh, `set -m
export CLASSROUTE_SERVER=%q
BIN=%q
OUT=%q
go() {
  case "$*" in
  "run ./cmd/classrouted") "$BIN/classrouted" --listen %q --data-dir ./classroute-data \
      --embedded-etcd-client %q --embedded-etcd-peer %q --metrics-listen "" ;;
  "build -o bin/ ./cmd/...") mkdir -p bin && cp "$BIN"/classroute* bin/ ;;
  *) echo "tour test: 'go $*' is not one of the tour's" >&2; return 127 ;;
  esac
}
ready() {
  for _ in $(seq 600); do "$BIN/classroutectl" region list >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 1
}
`, server, bin, out, server, freePort(t), freePort(t))
	for i, st := range steps {
		if st.background {
			fmt.Fprintf(&sh, "{\n%s\n} >$OUT/%d.out 2>$OUT/%d.err &\necho $! >>$OUT/bg\nready\n", strings.Join(st.commands, "\n"), i, i)
			continue
		}
		for j, c := range st.commands {
			fmt.Fprintf(&sh, "{\n%s\n} >$OUT/%d.%d.out 2>$OUT/%d.%d.err </dev/null\necho $? >$OUT/%d.%d.rc\n", c, i, j, i, j, i, j)
		}
	}
	fmt.Fprintf(&sh, "sleep 1\nfor p in $(cat $OUT/bg); do kill -INT -- -$p 2>/dev/null; done\nwait\n")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", sh.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CLASSROUTE_TLS_CA=", "CLASSROUTE_TLS_CERT=", "CLASSROUTE_TLS_KEY=", "CLASSROUTE_AS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the tour's session: %v\n%s", err, stderr.String())
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(out, name))
		return string(b)
	}
	for i, st := range steps {
		var got string
		if st.background {
			got = read(fmt.Sprintf("%d.out", i)) + read(fmt.Sprintf("%d.err", i))
		} else {
			for j, c := range st.commands {
				rc, err := strconv.Atoi(strings.TrimSpace(read(fmt.Sprintf("%d.%d.rc", i, j))))
				if err != nil || rc != 0 {
					t.Fatalf("README.md line %d: %q exited %v (want 0)\nstdout:\n%s\nstderr:\n%s", st.line, c, strings.TrimSpace(read(fmt.Sprintf("%d.%d.rc", i, j))),
						read(fmt.Sprintf("%d.%d.out", i, j)), read(fmt.Sprintf("%d.%d.err", i, j)))
				}
			}
			last := len(st.commands) - 1
			got = read(fmt.Sprintf("%d.%d.out", i, last)) + read(fmt.Sprintf("%d.%d.err", i, last))
		}
		if st.want != nil && !matchOutput(*st.want, got) {
			t.Errorf("README.md line %d: %q printed\n%s\nwant (README):\n%s", st.line, st.commands[len(st.commands)-1], got, *st.want)
		}
	}
}

func TestMatchOutput(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"a\nb", "a\nb\n", true},
		{"a\n...\nd", "a\nb\nc\nd", true},
		{"a\n...\nd", "a\nd", true},
		{"a\n...", "a", true},
		{"a…c", "abbbc  ", true},
		{"a\nb", "a\nc", false},
		{"a\n...\nd", "a\nb", false},
		{"a…c", "abd", false},
		{"a.c", "abc", false}, // only … is a wildcard
	} {
		if got := matchOutput(tc.want, tc.got); got != tc.ok {
			t.Errorf("matchOutput(%q, %q) = %v; want %v", tc.want, tc.got, got, tc.ok)
		}
	}
}
