package audit

import (
	"os/exec"
	"strings"
	"testing"
)

// forbiddenDeps are import path prefixes the audit package must never
// import, even indirectly: it defines and verifies the trail, and
// router/state stores it.
var forbiddenDeps = []string{
	"go.etcd.io",
	"github.com/hashicorp/go-memdb",
	"google.golang.org/grpc",
	"github.com/classroute/classroute/router/state",
}

// TestDeps fails when the audit package picks up a forbidden dependency
// (after Tailscale's tstest/deptest).
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/classroute/classroute/router/audit").Output()
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
				t.Errorf("router/audit depends on %s (forbidden: %s)", dep, bad)
			}
		}
	}
}
