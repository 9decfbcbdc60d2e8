package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from what the commands print now")

// TestGolden pins what commands that need no daemon print, and their exit
// status: help (per command, as --help and as help CMD), usage errors
// with suggestions, the output formats of label check, and version. Run
// with -update after an intended change and review the diff.
func TestGolden(t *testing.T) {
	for _, v := range []string{"CLASSROUTE_SERVER", "CLASSROUTE_TLS_CA", "CLASSROUTE_TLS_CERT", "CLASSROUTE_TLS_KEY", "CLASSROUTE_AS"} {
		t.Setenv(v, "") // help shows the built-in defaults
	}
	goVersion := regexp.MustCompile(`go1\.[0-9.]+`)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"help", []string{"--help"}, 0},
		{"help-place", []string{"place", "--help"}, 0},
		{"help-plan", []string{"help", "plan"}, 0},
		{"help-region-drain", []string{"help", "region", "drain"}, 0},
		{"help-region", []string{"region"}, 0},
		{"help-tenant-put", []string{"tenant", "put", "-h"}, 0},
		{"help-equivalence-propose", []string{"help", "equivalence", "propose"}, 0},
		{"typo", []string{"regoins"}, 2},
		{"typo-sub", []string{"region", "dran", "aws/x"}, 2},
		{"unknown-flag", []string{"place", "--colour", "red"}, 2},
		{"missing-file-flag", []string{"place"}, 2},
		{"bad-output", []string{"regions", "-o", "xml"}, 2},
		{"tls-pair", []string{"regions", "--tls-cert", "c.pem"}, 2},
		{"too-many-args", []string{"placement", "get", "a", "b"}, 2},
		{"label-table", []string{"label", "check", "SECRET//REL TO USA, FVEY"}, 0},
		{"label-wide-flag-first", []string{"-o", "wide", "label", "check", "TOP SECRET//SI/TK//NOFORN"}, 0},
		{"label-json", []string{"label", "check", "SECRET//NOFORN", "-o", "json"}, 0},
		{"label-yaml", []string{"label", "check", "--output=yaml", "SECRET//NOFORN"}, 0},
		{"label-invalid", []string{"label", "check", "SECRET//NOFORN/REL TO USA, CAN"}, 1},
		{"version", []string{"version"}, 0},
		{"version-flag", []string{"--version"}, 0},
		{"version-json", []string{"version", "-o", "json"}, 0},
		{"completion-bash-head", []string{"completion", "bash"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("classroutectl %s: exit %d; want %d\n%s%s", strings.Join(tc.args, " "), code, tc.code, stdout.String(), stderr.String())
			}
			got := "$ classroutectl " + strings.Join(tc.args, " ") + "\n" + stdout.String()
			if stderr.Len() > 0 {
				got += "--- stderr\n" + stderr.String()
			}
			got = goVersion.ReplaceAllString(got, "GOVERSION")
			if strings.HasPrefix(tc.name, "completion") {
				got = strings.Join(strings.SplitAfterN(got, "\n", 4)[:3], "") // the script's head: it is cobra's
			}
			file := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/classroutectl -run TestGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("classroutectl %s printed\n%s\nwant (%s):\n%s", strings.Join(tc.args, " "), got, file, want)
			}
		})
	}
}

// The CLI reference in docs/cli is what gen-docs writes from the command
// tree now: a command, flag or help text changed without regenerating it
// fails here.
func TestCLIReferenceCurrent(t *testing.T) {
	for _, v := range []string{"CLASSROUTE_SERVER", "CLASSROUTE_TLS_CA", "CLASSROUTE_TLS_CERT", "CLASSROUTE_TLS_KEY", "CLASSROUTE_AS"} {
		t.Setenv(v, "") // the defaults the reference shows are the built-in ones
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"gen-docs", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("gen-docs: exit %d\n%s", code, stderr.String())
	}
	committed := filepath.Join("..", "..", "docs", "cli")
	fresh, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	old, _ := filepath.Glob(filepath.Join(committed, "*.md"))
	if len(fresh) != len(old) {
		t.Errorf("docs/cli holds %d pages; the command tree makes %d: run go run ./cmd/classroutectl gen-docs docs/cli", len(old), len(fresh))
	}
	for _, f := range fresh {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(committed, filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("docs/cli/%s is out of date: run go run ./cmd/classroutectl gen-docs docs/cli", filepath.Base(f))
		}
	}
}
