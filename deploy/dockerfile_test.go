package deploy_test

import (
	"bufio"
	"go/version"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/classroute/classroute/cmd/cmdtest"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, COPY, USER...
	args []string
}

// stage is one FROM and what follows it.
type stage struct {
	image, name string
	body        []instruction
}

// dockerStages parses a Dockerfile into its stages.
func dockerStages(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var line string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || l == "" && line == "" {
			continue
		}
		if cont, ok := strings.CutSuffix(l, `\`); ok {
			line += cont + " "
			continue
		}
		line += l
		fields := strings.Fields(line)
		line = ""
		if len(fields) == 0 {
			continue
		}
		in := instruction{cmd: strings.ToUpper(fields[0]), args: fields[1:]}
		if in.cmd == "FROM" {
			s := stage{}
			for _, a := range in.args {
				if !strings.HasPrefix(a, "--") && s.image == "" {
					s.image = a
				}
			}
			if n := len(in.args); n >= 3 && strings.EqualFold(in.args[n-2], "AS") {
				s.name = in.args[n-1]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before the first FROM", path, in.cmd)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// dockerignore matches paths as `docker build` reads .dockerignore: a
// path is left out when it or one of its parent directories matches a
// pattern ("*" and "?" within one path element, "**" across any number),
// unless a later "!pattern" matches it again.
type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
}

func readDockerignore(t *testing.T, path string) dockerignore {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dockerignore
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		neg := strings.HasPrefix(l, "!")
		l = strings.TrimPrefix(filepath.Clean(strings.TrimPrefix(l, "!")), "/")
		var re strings.Builder
		for i := 0; i < len(l); i++ {
			switch {
			case strings.HasPrefix(l[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(l[i:], "**"):
				re.WriteString(".*")
				i++
			case l[i] == '*':
				re.WriteString("[^/]*")
			case l[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(l[i : i+1]))
			}
		}
		d = append(d, struct {
			re     *regexp.Regexp
			negate bool
		}{regexp.MustCompile("^" + re.String() + "$"), neg})
	}
	return d
}

// excluded reports whether path (slash-separated, relative to the
// context) stays out of the build context.
func (d dockerignore) excluded(path string) bool {
	out := false
	for _, p := range d {
		for dir := path; dir != "."; dir = filepath.Dir(dir) {
			if p.re.MatchString(dir) {
				out = !p.negate
				break
			}
		}
	}
	return out
}

// The image builds with go.mod's Go, from base images pinned by tag, and
// runs as a non-root user on distroless; the build context holds what
// the build needs and nothing that must not leave the machine.
func TestDockerfile(t *testing.T) {
	root := cmdtest.RepoRoot()
	stages := dockerStages(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages; want a build stage and a final one", len(stages))
	}
	names := map[string]bool{}
	for _, s := range stages {
		if !names[s.image] {
			ref := s.image
			if i := strings.LastIndex(ref, "/"); i >= 0 {
				ref = ref[i+1:]
			}
			_, tag, ok := strings.Cut(ref, ":")
			if !ok && !strings.Contains(s.image, "@sha256:") || tag == "latest" {
				t.Errorf("FROM %s: pin the base image by tag (or digest)", s.image)
			}
		}
		names[s.name] = true
	}

	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	builder := stages[0].image
	tag, ok := strings.CutPrefix(builder, "golang:")
	if !ok {
		t.Fatalf("the build stage is FROM %s; want golang", builder)
	}
	tag, _, _ = strings.Cut(tag, "-") // golang:1.26.8-bookworm
	if version.Compare("go"+tag, "go"+string(goLine[1])) < 0 {
		t.Errorf("FROM %s builds with Go %s; go.mod asks for %s", builder, tag, goLine[1])
	}

	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.image, "gcr.io/distroless/") {
		t.Errorf("the final stage is FROM %s; want distroless", final.image)
	}
	var user string
	for _, in := range final.body {
		switch in.cmd {
		case "USER":
			user = strings.Join(in.args, " ")
		case "COPY", "ADD":
			if !strings.HasPrefix(in.args[0], "--from=") {
				t.Errorf("the final stage copies %v from the build context; only built binaries belong in the image", in.args)
			}
		case "RUN":
			t.Errorf("the final stage RUNs %v: distroless has no shell", in.args)
		}
	}
	uid, gid, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("the final stage's USER is %q; want a numeric non-root uid (the manifests' runAsNonRoot needs a number)", user)
	} else if n != 65532 || gid != "65532" {
		t.Errorf("USER %s; the manifests run as 65532:65532", user)
	}

	ignore := readDockerignore(t, filepath.Join(root, ".dockerignore"))
	for _, s := range stages {
		for _, in := range s.body {
			if in.cmd != "COPY" && in.cmd != "ADD" || strings.HasPrefix(in.args[0], "--from=") {
				continue
			}
			for _, src := range in.args[:len(in.args)-1] {
				if src != "." && ignore.excluded(filepath.Clean(src)) {
					t.Errorf("%s %s: .dockerignore leaves it out of the context", in.cmd, src)
				}
			}
		}
	}
	for _, p := range []string{
		".git/HEAD", ".notes/BRIEF.md", ".ci/bin/buf", ".cluster/bin/classrouted", ".cluster/etcd/m1/member/wal/0.wal",
		"classroute", "classrouted", "classroutectl", "classroute-etcd", "bin/classrouted",
		"router/state/state.test", "deploy/deploy.test", "cpu.out", "classroute-data/etcd/member/snap/db",
		"deploy/k8s/audit.key", "deploy/k8s/audit.key.pub", "ca/ca-key.pem", "docs/operations.md",
	} {
		if !ignore.excluded(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
	// What the build reads stays in: go.mod, go.sum, and every file of
	// the commands' source trees but tests.
	needed := []string{"go.mod", "go.sum"}
	for _, dir := range []string{"cmd", "router", "proto", "providers"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if e.IsDir() && e.Name() == "testdata" {
				return filepath.SkipDir
			}
			if !e.IsDir() && !strings.HasSuffix(path, "_test.go") {
				needed = append(needed, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range needed {
		if ignore.excluded(p) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", p)
		}
	}
	if len(needed) < 50 {
		t.Errorf("only %d files found to build from: %v", len(needed), needed)
	}
}
