package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/convert"
)

// A region is drained while the leading daemon re-routes its placements;
// the leader is killed (SIGKILL) part-way. The other daemon takes over
// the reconciler and finishes: every placement ends in the other region,
// none is lost, and usage matches the placements exactly.
func TestRerouteSurvivesLeaderKilledMidway(t *testing.T) {
	host, etcdAddr := startDaemon(t, "--catalog", "cmd/classroutectl/testdata/reroute-catalog.yaml", "--reconcile=false")
	a := start(t, "--etcd", etcdAddr, "--name", "a", "--move-every", "150ms")
	const n = 16
	for i := range n {
		p := host.Place("cmd/classroutectl/testdata/race-workload.yaml", "--request-id", fmt.Sprintf("r%d", i))
		if got := p.GetAssignments()[0].GetRegion(); got != "natgov/secret-a" {
			t.Fatalf("placed in %s; want natgov/secret-a (the cheaper)", got)
		}
	}
	// b joins after a, so a leads.
	b := start(t, "--etcd", etcdAddr, "--name", "b", "--move-every", "150ms")

	used := func(d *env, key string) int64 { return d.Regions()[key].GetUsed().GetMilliCpu() / 1000 }
	if r := host.Run("region", "drain", "natgov/secret-a"); r.Code != 0 {
		t.Fatalf("region drain: exit %d\n%s", r.Code, r.Stderr)
	}

	deadline := time.Now().Add(20 * time.Second)
	for used(host, "natgov/secret-b") < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no replica moved to secret-b within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.kill()
	if moved := used(host, "natgov/secret-b"); moved >= n {
		t.Fatalf("all %d moved before the leader was killed; the test proves nothing", moved)
	}

	deadline = time.Now().Add(30 * time.Second)
	for used(b, "natgov/secret-a") != 0 || used(b, "natgov/secret-b") != n {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: secret-a holds %d, secret-b %d; want 0 and %d", used(b, "natgov/secret-a"), used(b, "natgov/secret-b"), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var list pb.ListResponse
	b.OK(&list, "list", "--state", "placed", "--page-size", "100")
	if len(list.GetPlacements()) != n {
		t.Fatalf("%d placements placed; want %d", len(list.GetPlacements()), n)
	}
	for _, p := range list.GetPlacements() {
		if r := p.GetAssignments()[0].GetRegion(); r != "natgov/secret-b" {
			t.Errorf("%s in %s", p.GetId(), r)
		}
	}
}

// Revoking a region's accreditation takes two administrators: the
// proposer cannot approve it, PutRegion refuses it, and once a second
// administrator approves, the placements there are re-routed.
func TestTwoPersonRevokeReroutes(t *testing.T) {
	e := start(t, "--catalog", "cmd/classroutectl/testdata/reroute-catalog.yaml")
	p := e.Place("cmd/classroutectl/testdata/race-workload.yaml", "--request-id", "two-person-1")
	if got := p.GetAssignments()[0].GetRegion(); got != "natgov/secret-a" {
		t.Fatalf("placed in %s", got)
	}

	// Through PutRegion a revocation is refused outright.
	r := e.Run("region", "get", "natgov/secret-a", "-o", "yaml")
	if r.Code != 0 {
		t.Fatalf("region get: %s", r.Stderr)
	}
	yamlFile := filepath.Join(t.TempDir(), "r.yaml")
	revoked := strings.Replace(r.Stdout, "accreditation:\n", "accreditation:\n  revoked: true\n", 1)
	if err := os.WriteFile(yamlFile, []byte(revoked), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.Run("region", "put", "-f", yamlFile); r.Code != 1 || !strings.Contains(r.Stderr, "FailedPrecondition") || !strings.Contains(r.Stderr, "accreditation.revoked") {
		t.Fatalf("region put of a revocation: exit %d\n%s", r.Code, r.Stderr)
	}

	ch := e.Change("region", "revoke", "natgov/secret-a", "--as", "alice", "--reason", "ATO lapsed")
	if ch.GetState() != "pending" || ch.GetKind() != "revoke" || !strings.HasSuffix(ch.GetProposedBy(), "/alice") {
		t.Fatalf("proposal %v", ch)
	}
	if r := e.Run("change", "approve", ch.GetId(), "--as", "alice"); r.Code != 1 || !strings.Contains(r.Stderr, "PermissionDenied") {
		t.Fatalf("self-approval: exit %d\n%s", r.Code, r.Stderr)
	}
	if reg := e.Regions()["natgov/secret-a"]; reg.GetAccreditation().GetRevoked() {
		t.Fatal("revoked before approval")
	}
	done := e.Change("change", "approve", ch.GetId(), "--as", "bob")
	if done.GetState() != "applied" || !strings.HasSuffix(done.GetDecidedBy(), "/bob") {
		t.Fatalf("approval %v", done)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got pb.GetResponse
		e.OK(&got, "get", "two-person-1")
		if got.GetPlacement().GetAssignments()[0].GetRegion() == "natgov/secret-b" && len(got.GetPlacement().GetRetiring()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not re-routed after the revocation: %v", got.GetPlacement())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tenant get prints the tenant and its policy as YAML that tenant put
// takes back: the way an administrator grants a user a role.
func TestTenantGetPut(t *testing.T) {
	e := start(t)
	r := e.Run("tenant", "get", "ke-moh", "-o", "yaml")
	if r.Code != 0 || !strings.Contains(r.Stdout, "ceiling: CUI") {
		t.Fatalf("tenant get: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	file := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(file, []byte(r.Stdout+"members:\n  - name: amina\n    roles: [tenant-submitter]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.Run("tenant", "put", "-f", file); r.Code != 0 {
		t.Fatalf("tenant put: exit %d\n%s", r.Code, r.Stderr)
	}
	got := e.Run("tenant", "get", "ke-moh", "-o", "json")
	var doc convert.TenantDoc
	if err := json.Unmarshal([]byte(got.Stdout), &doc); err != nil {
		t.Fatalf("tenant get -o json: %v\n%s", err, got.Stdout)
	}
	if m := doc.Members; len(m) != 1 || m[0].Name != "amina" {
		t.Fatalf("members %v", m)
	}
	// A role the tenant may not grant is refused, naming the field.
	if err := os.WriteFile(file, []byte(r.Stdout+"members:\n  - name: amina\n    roles: [catalog-admin]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.Run("tenant", "put", "-f", file); r.Code != 1 || !strings.Contains(r.Stderr, "members") {
		t.Fatalf("tenant put with catalog-admin: exit %d\n%s", r.Code, r.Stderr)
	}
}
