package router

import (
	"os/exec"
	"strings"
	"testing"
)

// forbiddenDeps are module path prefixes the pure decision engine must
// never import, even indirectly: it decides, others talk to the world.
var forbiddenDeps = []string{
	"google.golang.org/grpc",
	"go.etcd.io",
	"github.com/hashicorp",
	"cloud.google.com",
	"github.com/aws",
	"github.com/Azure",
}

// TestDeps fails when the router package picks up a forbidden dependency
// (after Tailscale's tstest/deptest).
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/classroute/classroute/router").Output()
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
			if strings.Contains(dep, bad) {
				t.Errorf("router depends on %s (forbidden: %s)", dep, bad)
			}
		}
	}
}
