// Package cmdtest builds classroute's commands once per test binary and
// runs the CLI against a daemon: the harness of the tests that drive the
// real binaries (cmd/classroutectl's end-to-end tests, deploy's cluster
// and fault tests). Only _test.go files import it (router/etcdtest's
// TestOnlyTestsImportTheHarness); it drives the binaries and links no
// etcd, go-memdb, state or server (router/deps_test.go).
package cmdtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/convert"
)

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// commands are the packages Binaries builds.
var commands = []string{"./cmd/classrouted", "./cmd/classroutectl", "./cmd/classroute-etcd"}

// Binaries builds the daemon, the CLI and the etcd member once per test
// binary and returns the directory that holds them; Main removes it.
var Binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "classroute-e2e-bin")
	if err != nil {
		return "", err
	}
	for _, pkg := range commands {
		cmd := exec.Command("go", "build", "-o", dir, pkg)
		cmd.Dir = RepoRoot()
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return dir, nil
})

// Main runs the tests and removes the binaries they built: call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if dir, err := Binaries(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// Tail is the last n lines of s, for failure messages.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CLI runs classroutectl against one daemon.
type CLI struct {
	T      testing.TB
	Ctl    string // the classroutectl binary
	Server string // the daemon's address
	Root   string // the working directory: the repository root
}

// Result is how a run of the CLI ended.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs the CLI with args and --server; it fails the test only if the
// CLI could not be run.
func (c *CLI) Run(args ...string) Result {
	c.T.Helper()
	args = append(args, "--server", c.Server)
	cmd := exec.Command(c.Ctl, args...)
	cmd.Dir = c.Root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.T.Fatalf("run classroutectl %v: %v", args, err)
	}
	return Result{code, out.String(), errb.String()}
}

// OK runs the CLI, requires exit 0, and decodes -o json output into m.
func (c *CLI) OK(m proto.Message, args ...string) {
	c.T.Helper()
	r := c.Run(append(args, "-o", "json")...)
	if r.Code != 0 {
		c.T.Fatalf("classroutectl %v: exit %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
	}
	if err := protojson.Unmarshal([]byte(r.Stdout), m); err != nil {
		c.T.Fatalf("classroutectl %v: decoding output: %v\n%s", args, err, r.Stdout)
	}
}

// Change runs a command that prints one two-person change (region
// revoke, change get|approve|reject), requires exit 0, and returns it.
func (c *CLI) Change(args ...string) *pb.RegionChange {
	c.T.Helper()
	r := c.Run(append(args, "-o", "json")...)
	if r.Code != 0 {
		c.T.Fatalf("classroutectl %v: exit %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
	}
	var d convert.ChangeDoc
	if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
		c.T.Fatalf("classroutectl %v -o json: %v\n%s", args, err, r.Stdout)
	}
	return d.Proto()
}

// Regions lists the catalogue's regions by key; an empty catalogue fails
// the test.
func (c *CLI) Regions() map[string]*pb.Region {
	c.T.Helper()
	r := c.Run("region", "list", "-o", "json")
	if r.Code != 0 {
		c.T.Fatalf("classroutectl region list: exit %d\n%s", r.Code, r.Stderr)
	}
	var docs []convert.RegionDoc
	if err := json.Unmarshal([]byte(r.Stdout), &docs); err != nil {
		c.T.Fatalf("classroutectl region list -o json: %v\n%s", err, r.Stdout)
	}
	m := make(map[string]*pb.Region)
	for _, d := range docs {
		m[d.Key()] = d.Proto()
	}
	if len(m) == 0 {
		c.T.Fatal("catalogue is empty")
	}
	return m
}

// Place places the workload of the spec file and requires it PLACED.
func (c *CLI) Place(spec string, extra ...string) *pb.Placement {
	c.T.Helper()
	var resp pb.PlaceResponse
	c.OK(&resp, append([]string{"place", "-f", spec}, extra...)...)
	p := resp.GetPlacement()
	if p.GetState() != pb.PlacementState_PLACEMENT_STATE_PLACED {
		c.T.Fatalf("placement state %v; want PLACED", p.GetState())
	}
	return p
}
