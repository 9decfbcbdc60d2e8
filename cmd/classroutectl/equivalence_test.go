package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An equivalence entry is read by anyone and changed by two catalogue
// administrators, through the CLI: get -o yaml, edit, propose -f, and
// change approve by another.
func TestEquivalenceTwoPersonCLI(t *testing.T) {
	e := start(t)
	if r := e.Run("equivalence", "list"); r.Code != 0 || !strings.Contains(lineWith(r.Stdout, "GBR"), "SECRET→SECRET") {
		t.Fatalf("equivalence list: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r := e.Run("equivalence", "get", "GBR", "US", "-o", "yaml")
	if r.Code != 0 || !strings.Contains(r.Stdout, "version: 1\n") {
		t.Fatalf("equivalence get -o yaml: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// The next version: TOP SECRET no longer held.
	doc := strings.Replace(r.Stdout, "version: 1\n", "version: 2\n", 1)
	doc = strings.Replace(doc, "to: TOP SECRET", "none: true", 1)
	file := filepath.Join(t.TempDir(), "gbr-us.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := e.Change("equivalence", "propose", "-f", file, "--reason", "annex suspended", "--as", "alice")
	if ch.GetState() != "pending" || ch.GetKind() != "lower" || ch.GetEquivalence().GetVersion() != 2 {
		t.Fatalf("proposal %v", ch)
	}
	if r := e.Run("change", "approve", ch.GetId(), "--as", "alice"); r.Code != 1 || !strings.Contains(r.Stderr, "PermissionDenied") {
		t.Fatalf("self-approval: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := e.Run("change", "list"); r.Code != 0 || !strings.Contains(r.Stdout, "equivalence GBR→US v2") {
		t.Fatalf("change list: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	done := e.Change("change", "approve", ch.GetId(), "--as", "bob")
	if done.GetState() != "applied" || !strings.HasSuffix(done.GetDecidedBy(), "/bob") {
		t.Fatalf("approval %v", done)
	}
	r = e.Run("equivalence", "get", "GBR", "US")
	if r.Code != 0 || !strings.Contains(r.Stdout, "GBR→US v2") || !strings.Contains(lineWith(r.Stdout, "TOP SECRET"), "none (no equivalent)") ||
		!strings.Contains(lineWith(r.Stdout, ch.GetId()), "/bob") {
		t.Fatalf("equivalence get after approval: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// Refused, naming the field; nothing stored.
	bad := strings.Replace(doc, "version: 2\n", "version: 7\n", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.Run("equivalence", "propose", "-f", file, "--as", "alice"); r.Code != 1 || !strings.Contains(r.Stderr, "equivalence.version") {
		t.Fatalf("propose of a wrong version: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// Withdrawn.
	wd := e.Change("equivalence", "withdraw", "GBR", "US", "--as", "bob", "--reason", "agreement lapsed")
	if wd.GetKind() != "withdraw" || wd.GetEquivalence().GetVersion() != 3 {
		t.Fatalf("withdrawal %v", wd)
	}
	e.Change("change", "approve", wd.GetId(), "--as", "alice")
	if r := e.Run("equivalence", "get", "GBR", "US"); r.Code != 0 || !strings.Contains(lineWith(r.Stdout, "in force:"), "no (withdrawn)") {
		t.Fatalf("after withdrawal: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
