package convert

import (
	"os/exec"
	"strings"
	"testing"
)

// forbiddenDeps are import path prefixes the convert package must never
// import, even indirectly: the CLI links it, and must link none of the
// daemon's store or edge.
var forbiddenDeps = []string{
	"go.etcd.io/",
	"github.com/hashicorp/go-memdb",
	"github.com/classroute/classroute/router/state",
	"github.com/classroute/classroute/router/server",
}

// TestDeps fails when the convert package picks up a forbidden
// dependency (after Tailscale's tstest/deptest).
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/classroute/classroute/router/convert").Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, msg)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	for _, dep := range deps {
		for _, bad := range forbiddenDeps {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("router/convert depends on %s (forbidden: %s)", dep, bad)
			}
		}
	}
}
