package docs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRepositoryMarkdown checks every Markdown page of the repository
// (README.md, CHANGELOG.md, docs/, router/README.md, deploy/README.md;
// not the hidden directories such as .notes): every code fence is
// closed, and every relative link names a file of the repository and,
// with a #fragment, a heading of that page.
func TestRepositoryMarkdown(t *testing.T) {
	r, err := loadRepo("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"README.md", "router/README.md", "deploy/README.md"} {
		if r.pages[want] == nil {
			t.Errorf("%s not found: the walk missed it", want)
		}
	}
	paths := make([]string, 0, len(r.pages))
	for p := range r.pages {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, path := range paths {
		for _, f := range r.check(r.pages[path]) {
			t.Errorf("%s: %s", path, f)
		}
	}
}

// TestMarkdownChecks runs the checks on a small known-good repository,
// and on mutations of it that each must be reported.
func TestMarkdownChecks(t *testing.T) {
	good := map[string]string{
		"README.md": "# Project\n\nSee [operations](docs/operations.md#running-a-cluster),\n" +
			"[the API](docs/api.md#service-placementservice), [a dir](docs/) and [this](#the-tour).\n\n" +
			"## The tour\n\n```sh\nx --flag\n```\n\n```text\n# not a heading\n[not](a/link.md)\n```\n\n" +
			"`[not](a/link.md)` and [web](https://example.com/x#y).\n",
		"docs/operations.md": "# Operations\n\n## Running a cluster\n\n````md\n```sh\nnested\n```\n````\n\n[Back](../README.md#project)\n\n[ref]: ../README.md#the-tour\n",
		"docs/api.md":        "# API\n\n## Service `PlacementService`\n\n## Service `PlacementService`\n\n[Second](#service-placementservice-1)\n",
	}
	for _, tc := range []struct {
		name    string
		file    string
		replace [2]string // in good[file], replace [0] by [1]
		want    string    // a fault containing this; "" for none
	}{
		{"good", "", [2]string{}, ""},
		{"unclosed fence", "README.md", [2]string{"[not](a/link.md)\n```\n", "[not](a/link.md)\n"}, "never closed"},
		{"fence run into text", "README.md", [2]string{"x --flag\n```\n", "x --flag\n``` Then\n"}, "does not close it"},
		{"missing file", "README.md", [2]string{"docs/operations.md#running", "docs/ops.md#running"}, "no such file docs/ops.md"},
		{"missing anchor", "README.md", [2]string{"#running-a-cluster", "#running-clusters"}, "no heading with anchor #running-clusters"},
		{"missing local anchor", "README.md", [2]string{"(#the-tour)", "(#tour)"}, "README.md has no heading with anchor #tour"},
		{"reference definition", "docs/operations.md", [2]string{"README.md#the-tour", "README.md#a-tour"}, "#a-tour"},
		{"duplicate heading's anchor", "docs/api.md", [2]string{"-1)", "-2)"}, "#service-placementservice-2"},
		{"outside the repository", "docs/operations.md", [2]string{"(../README.md#project)", "(../../shared/x.md)"}, "leaves the repository"},
		{"shared mention", "README.md", [2]string{"# Project\n", "# Project\n\nSee `../shared/DOMAIN.md`.\n"}, "not part of the repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, text := range good {
				if name == tc.file {
					if !strings.Contains(text, tc.replace[0]) {
						t.Fatalf("%s lacks %q", name, tc.replace[0])
					}
					text = strings.Replace(text, tc.replace[0], tc.replace[1], 1)
				}
				path := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := loadRepo(root)
			if err != nil {
				t.Fatal(err)
			}
			var faults []string
			for path, p := range r.pages {
				for _, f := range r.check(p) {
					faults = append(faults, path+": "+f)
				}
			}
			if tc.want == "" {
				if len(faults) > 0 {
					t.Fatalf("faults in the good repository:\n%s", strings.Join(faults, "\n"))
				}
				return
			}
			for _, f := range faults {
				if strings.Contains(f, tc.want) {
					return
				}
			}
			t.Fatalf("no fault contains %q; got:\n%s", tc.want, strings.Join(faults, "\n"))
		})
	}
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Running a cluster", "running-a-cluster"},
		{"Seed scenarios, with the CLI", "seed-scenarios-with-the-cli"},
		{"Set-up: two commands", "set-up-two-commands"},
		{"Service `PlacementService`", "service-placementservice"},
		{"Who may do what", "who-may-do-what"},
		{"1.2 Banner grammar", "12-banner-grammar"},
		{"[Link](x.md) text_with_underscore", "link-text_with_underscore"},
		{"Live regions and re-routing", "live-regions-and-re-routing"},
	} {
		if got := slug(tc.in); got != tc.want {
			t.Errorf("slug(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
