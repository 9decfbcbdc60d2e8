package router

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/classroute/classroute/"

// importRules are the module's layering: for each package, the import
// paths it must never depend on, even indirectly (a dependency containing
// one is refused). Each package's doc comment says the same in words;
// router/README.md draws the whole.
var importRules = []struct {
	pkg, why  string
	forbidden []string
}{
	{"router", "the pure decision engine: it decides, others talk to the world",
		[]string{"google.golang.org/grpc", "go.etcd.io", "github.com/hashicorp", "cloud.google.com", "github.com/aws", "github.com/Azure"}},
	{"router/label", "the banner grammar: pure, and below everything else of the module",
		[]string{module, "google.golang.org/grpc", "go.etcd.io", "github.com/hashicorp"}},
	{"router/equiv", "equivalence between schemes is data and a pure lookup: the store keeps the entries",
		[]string{"google.golang.org/grpc", "go.etcd.io", "github.com/hashicorp", module + "router/state", module + "router/server", module + "proto/"}},
	{"router/marking", "labels of every scheme: pure, above router/label only",
		[]string{"google.golang.org/grpc", "go.etcd.io", "github.com/hashicorp", "cloud.google.com", "github.com/aws", "github.com/Azure",
			"net", "os/exec", "crypto/tls", module + "proto/", module + "providers", module + "cmd/",
			module + "router/audit", module + "router/authz", module + "router/client", module + "router/convert",
			module + "router/devca", module + "router/etcd", module + "router/feed", module + "router/metrics",
			module + "router/server", module + "router/spec", module + "router/state", module + "router/version"}},
	{"router/flow", "dependencies and cross-domain edges: a pure decision below router (router/authz stands for router, which links it)", []string{"google.golang.org/grpc", "go.etcd.io", "github.com/hashicorp", "cloud.google.com", "github.com/aws", "github.com/Azure", "net", "os/exec", "crypto/tls", module + "proto/", module + "providers", module + "cmd/", module + "router/authz", module + "router/state", module + "router/server"}},
	{"router/authz", "who a caller is and what it may do: pure",
		[]string{"google.golang.org/grpc", "go.etcd.io", "github.com/hashicorp", "crypto/tls"}},
	{"router/audit", "the trail's format and its proof: router/state stores it",
		[]string{"go.etcd.io", "github.com/hashicorp/go-memdb", "google.golang.org/grpc", module + "router/state"}},
	{"router/feed", "the Watch feed reads the store through its Source only",
		[]string{"github.com/hashicorp/go-memdb", module + "router/state", module + "router/server"}},
	{"router/tlsfiles", "certificate files for any TLS: the standard library's alone",
		[]string{module, "google.golang.org/grpc", "go.etcd.io"}},
	{"router/etcdlocal", "an etcd member knows nothing of classroute's records",
		[]string{module}},
	{"router/etcdtest", "the tests' etcd knows nothing of classroute's records",
		[]string{module + "router/state", module + "router/server", module + "router/feed", "github.com/hashicorp"}},
	{"cmd/cmdtest", "the commands' harness runs the built binaries and links no store",
		[]string{"go.etcd.io", "github.com/hashicorp", module + "router/state", module + "router/server"}},
	{"router/spec", "the CLI's spec files: nothing that talks to the world",
		[]string{"go.etcd.io", "github.com/hashicorp/go-memdb", "google.golang.org/grpc"}},
	{"router/client", "the Go client library: services link it to request placements, and must link none of the daemon",
		[]string{"go.etcd.io", "github.com/hashicorp", module + "router/state", module + "router/server", module + "router/etcdlocal"}},
	{"router/convert", "API ↔ domain conversion: the CLI links it, and must link none of the daemon",
		[]string{"go.etcd.io", "github.com/hashicorp/go-memdb", module + "router/state", module + "router/server"}},
	{"router/state", "the store serves the edge, never the reverse",
		[]string{module + "router/server", module + "proto/"}},
	{"providers", "the catalogue's file format: nothing that talks to the world",
		[]string{"go.etcd.io", "github.com/hashicorp/go-memdb", "google.golang.org/grpc"}},
	{"providers/sim", "a simulated agent is a client of the API only",
		[]string{module + "router/state", module + "router/server", "github.com/hashicorp/go-memdb"}},
	{"cmd/classroutectl", "the CLI talks to the daemon through the API alone: no etcd, no cache, no store, no edge",
		[]string{"go.etcd.io", "github.com/hashicorp/go-memdb", module + "router/state", module + "router/server"}},
	{"cmd/classrouted", "the daemon trusts no development CA",
		[]string{module + "router/devca"}},
}

// TestDeps fails when a package picks up a dependency its layer forbids
// (after Tailscale's tstest/deptest).
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	args := []string{"list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}"}
	for _, r := range importRules {
		args = append(args, module+r.pkg)
	}
	out, err := exec.Command(goCmd, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list: %v\n%s", err, msg)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			deps[f[0]] = f[1:]
		}
	}
	for _, r := range importRules {
		ds := deps[module+r.pkg]
		if len(ds) == 0 {
			t.Errorf("go list listed no dependencies of %s", r.pkg)
			continue
		}
		for _, dep := range ds {
			for _, bad := range r.forbidden {
				if strings.Contains(dep, bad) {
					t.Errorf("%s depends on %s (forbidden: %s; %s)", r.pkg, dep, bad, r.why)
				}
			}
		}
	}
}
