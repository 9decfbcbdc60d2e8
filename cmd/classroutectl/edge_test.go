package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An edge and a catalogue service are changed by two catalogue
// administrators through the CLI and the built daemon: propose -f,
// change approve by another, list; an edge revoked the same way.
func TestEdgeTwoPersonCLI(t *testing.T) {
	e := start(t)
	if r := e.Run("edge", "list"); r.Code != 0 || !strings.Contains(lineWith(r.Stdout, "aoai-gov-to-commercial"), "connected-service") {
		t.Fatalf("edge list: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := e.Run("service", "list"); r.Code != 0 || !strings.Contains(lineWith(r.Stdout, "azure-openai-gov"), "azure/usgovvirginia") {
		t.Fatalf("service list: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	dir := t.TempDir()
	guard := filepath.Join(dir, "guard.yaml")
	if err := os.WriteFile(guard, []byte(`id: sipr-guard-1
kind: guard
from: siprnet
to: internet
direction: write
range: {scheme: US, low: UNCLASSIFIED, high: SECRET}
authority: NCDSMO
expires: 2030-06-30T00:00:00Z
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := e.Change("edge", "propose", "-f", guard, "--reason", "guard accredited", "--as", "alice")
	if ch.GetState() != "pending" || ch.GetKind() != "add" || ch.GetEdge().GetId() != "sipr-guard-1" {
		t.Fatalf("proposal %v", ch)
	}
	if r := e.Run("change", "approve", ch.GetId(), "--as", "alice"); r.Code != 1 || !strings.Contains(r.Stderr, "PermissionDenied") {
		t.Fatalf("self-approval: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := e.Run("change", "list"); r.Code != 0 || !strings.Contains(r.Stdout, "edge sipr-guard-1") {
		t.Fatalf("change list: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if done := e.Change("change", "approve", ch.GetId(), "--as", "bob"); done.GetState() != "applied" {
		t.Fatalf("approval %v", done)
	}
	if r := e.Run("edge", "list"); r.Code != 0 || !strings.Contains(lineWith(r.Stdout, "sipr-guard-1"), "yes") {
		t.Fatalf("edge list after approval: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// Refused, naming the field; nothing stored.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("id: bad-guard\nkind: guard\nfrom: siprnet\nto: internet\ndirection: write\nrange: {scheme: US, low: UNCLASSIFIED, high: SECRET}\nexpires: 2030-06-30T00:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.Run("edge", "propose", "-f", bad, "--as", "alice"); r.Code != 1 || !strings.Contains(r.Stderr, "authority: required") {
		t.Fatalf("propose of an edge without authority: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// Revoked by two people.
	rv := e.Change("edge", "revoke", "sipr-guard-1", "--as", "bob", "--reason", "suspended")
	if rv.GetKind() != "revoke" || !rv.GetEdge().GetRevoked() {
		t.Fatalf("revocation %v", rv)
	}
	e.Change("change", "approve", rv.GetId(), "--as", "alice")
	if r := e.Run("edge", "get", "sipr-guard-1"); r.Code != 0 || !strings.Contains(lineWith(r.Stdout, "in force:"), "no (revoked)") {
		t.Fatalf("after revocation: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// A service proposed from its own document, edited.
	r := e.Run("service", "get", "azure-openai-gov", "-o", "yaml")
	if r.Code != 0 || !strings.Contains(r.Stdout, "name: azure-openai-gov") {
		t.Fatalf("service get -o yaml: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	svc := filepath.Join(dir, "svc.yaml")
	if err := os.WriteFile(svc, []byte(strings.Replace(r.Stdout, "name: azure-openai-gov", "name: azure-openai-gov-2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := e.Change("service", "propose", "-f", svc, "--as", "alice")
	if sc.GetKind() != "add" || sc.GetService().GetName() != "azure-openai-gov-2" {
		t.Fatalf("service proposal %v", sc)
	}
	e.Change("change", "approve", sc.GetId(), "--as", "bob")
	if r := e.Run("service", "list"); r.Code != 0 || !strings.Contains(r.Stdout, "azure-openai-gov-2") {
		t.Fatalf("service list after approval: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
