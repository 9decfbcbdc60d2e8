package etcdtest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// testOnly are the harness packages: no package of the module may import
// them outside its tests.
var testOnly = []string{
	"github.com/classroute/classroute/router/etcdtest",
	"github.com/classroute/classroute/cmd/cmdtest",
}

// TestOnlyTestsImportTheHarness fails when a package's non-test files
// import a test harness (after Tailscale's tstest/deptest).
func TestOnlyTestsImportTheHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "github.com/classroute/classroute/...").Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list: %v\n%s", err, msg)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list listed only %d packages", len(lines))
	}
	for _, line := range lines {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, imp := range strings.Fields(imports) {
			for _, h := range testOnly {
				if imp == h {
					t.Errorf("%s imports %s outside its tests", pkg, h)
				}
			}
		}
	}
}
