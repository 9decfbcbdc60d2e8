package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The habits operators bring from kubectl, etcdctl and nomad, against a
// running daemon: exit codes a pipeline can gate on, get | put that
// round-trips, read-modify-write that never undoes a concurrent edit,
// and a place whose outcome is unknown resumed by its request id.
func TestOperatorHabits(t *testing.T) {
	e := start(t)
	dir := t.TempDir()
	write := func(name, data string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}

	t.Run("plan --exit-code", func(t *testing.T) {
		if r := e.Run("plan", "--exit-code", "-f", "examples/kenya-health-records.yaml"); r.Code != 0 {
			t.Errorf("placeable: exit %d; want 0\n%s", r.Code, r.Stderr)
		}
		nowhere := write("nowhere.yaml", strings.ReplaceAll(string(must(os.ReadFile(filepath.Join(e.Root, "examples/kenya-health-records.yaml")))), "[KEN]", "[ATA]"))
		r := e.Run("plan", "--exit-code", "-f", nowhere)
		if r.Code != 1 || !strings.Contains(r.Stdout, "refused:") {
			t.Errorf("refused: exit %d; want 1 with the verdicts\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if r := e.Run("plan", "-f", nowhere); r.Code != 0 {
			t.Errorf("refused without --exit-code: exit %d; want 0 (a plan was made)", r.Code)
		}
		bad := write("bad.yaml", "name: x\ntenant: ke-moh\nlabel: SECRET//NOFORN/REL TO USA, CAN\nreplicas: 1\n")
		if r := e.Run("plan", "--exit-code", "-f", bad); r.Code != 2 || !strings.Contains(r.Stderr, "InvalidArgument") {
			t.Errorf("bad spec: exit %d; want 2 with the error\n%s", r.Code, r.Stderr)
		}
		unreachable := *e.CLI
		unreachable.Server = "127.0.0.1:1"
		if r := unreachable.Run("plan", "--exit-code", "-f", "examples/kenya-health-records.yaml", "--timeout", "2s"); r.Code != 2 {
			t.Errorf("daemon unreachable: exit %d; want 2", r.Code)
		}
	})

	t.Run("get | put round-trips", func(t *testing.T) {
		for _, rec := range []struct{ noun, id string }{
			{"region", "ke-gov/konza-1"}, {"tenant", "ke-moh"}, {"provider", "ke-gov"},
		} {
			for _, format := range []string{"yaml", "json"} {
				got := e.Run(rec.noun, "get", rec.id, "-o", format)
				if got.Code != 0 || !strings.Contains(got.Stdout, "etag") {
					t.Fatalf("%s get -o %s: exit %d, no etag?\n%s%s", rec.noun, format, got.Code, got.Stdout, got.Stderr)
				}
				f := write(rec.noun+"."+format, got.Stdout)
				if r := e.Run(rec.noun, "put", "-f", f); r.Code != 0 {
					t.Fatalf("%s put -f of what get -o %s printed: exit %d\n%s", rec.noun, format, r.Code, r.Stderr)
				}
				// Written back unchanged, the record is the same but for
				// its version.
				again := e.Run(rec.noun, "get", rec.id, "-o", format)
				etag := regexp.MustCompile(`"?etag"?: "?[0-9]+"?`)
				if etag.ReplaceAllString(again.Stdout, "") != etag.ReplaceAllString(got.Stdout, "") {
					t.Errorf("%s round trip -o %s changed the record:\n%s\nwas\n%s", rec.noun, format, again.Stdout, got.Stdout)
				}
				// The same file again: its etag is now stale.
				if r := e.Run(rec.noun, "put", "-f", f); r.Code != 1 || !strings.Contains(r.Stderr, "Aborted") || !strings.Contains(r.Stderr, "changed since it was read") {
					t.Errorf("%s put -f of a stale read: exit %d; want 1, Aborted\n%s", rec.noun, r.Code, r.Stderr)
				}
			}
		}
	})

	t.Run("drain never undoes a concurrent edit", func(t *testing.T) {
		// Alice reads the region to raise its cost; meanwhile Bob drains it.
		alice := write("alice.yaml", e.Run("region", "get", "aws/us-east-1", "-o", "yaml").Stdout)
		if r := e.Run("region", "drain", "aws/us-east-1"); r.Code != 0 {
			t.Fatalf("drain: exit %d\n%s", r.Code, r.Stderr)
		}
		edited := strings.Replace(string(must(os.ReadFile(alice))), "\ncost: ", "\ncost: 9", 1)
		alice = write("alice.yaml", edited)
		if r := e.Run("region", "put", "-f", alice); r.Code != 1 || !strings.Contains(r.Stderr, "ETAG_MISMATCH") && !strings.Contains(r.Stderr, "changed since it was read") {
			t.Fatalf("alice's put over bob's drain: exit %d; want 1 (the record changed)\n%s", r.Code, r.Stderr)
		}
		if got := e.Regions()["aws/us-east-1"].GetStatus().String(); got != "REGION_STATUS_DRAINING" {
			t.Fatalf("after alice's refused write the region is %s: bob's drain was undone", got)
		}
		if r := e.Run("region", "activate", "aws/us-east-1"); r.Code != 0 {
			t.Fatalf("activate: exit %d\n%s", r.Code, r.Stderr)
		}
	})

	t.Run("a place cut short is resumed by its request id", func(t *testing.T) {
		r := e.Run("place", "-f", "examples/nearline-storage.yaml", "--timeout", "1ms")
		if r.Code != 1 {
			t.Fatalf("place --timeout 1ms: exit %d; want 1 (cut short)\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		m := regexp.MustCompile(`(?m)^request-id: (req-[0-9a-f]+)$`).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("place did not print its request id first:\n%s", r.Stdout)
		}
		if !strings.Contains(r.Stderr, "--request-id "+m[1]) {
			t.Errorf("place cut short does not say how to resume:\n%s", r.Stderr)
		}
		p := e.Place("examples/nearline-storage.yaml", "--request-id", m[1])
		if p.GetId() != m[1] {
			t.Fatalf("resumed place: placement %s; want %s", p.GetId(), m[1])
		}
		if again := e.Place("examples/nearline-storage.yaml", "--request-id", m[1]); again.GetCreateTime().AsTime() != p.GetCreateTime().AsTime() {
			t.Errorf("placing the same request id twice made two placements")
		}
	})

	t.Run("placement spec is what place -f reads", func(t *testing.T) {
		p := e.Place("examples/kenya-health-records.yaml", "--request-id", "spec-rt-1")
		spec := e.Run("placement", "spec", p.GetId(), "--tenant", "ke-moh")
		if spec.Code != 0 {
			t.Fatalf("placement spec: exit %d\n%s", spec.Code, spec.Stderr)
		}
		f := write("spec.yaml", spec.Stdout)
		if r := e.Run("plan", "--exit-code", "-f", f); r.Code != 0 {
			t.Fatalf("plan -f of what placement spec printed: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("list --limit says where the rest begins", func(t *testing.T) {
		// Two placements at least: the resumed one and spec-rt-1.
		r := e.Run("placement", "list", "--limit", "1")
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if r.Code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[2], "next page: --page-token ") {
			t.Fatalf("list --limit 1 with more placements: exit %d\n%s%s; want a header, one row and the next page's token", r.Code, r.Stdout, r.Stderr)
		}
		rest := e.Run("placement", "list", "--page-token", strings.TrimPrefix(lines[2], "next page: --page-token "))
		if rest.Code != 0 || strings.Contains(rest.Stdout, strings.Fields(lines[1])[0]+" ") {
			t.Fatalf("the next page repeats the first row or fails: exit %d\n%s%s", rest.Code, rest.Stdout, rest.Stderr)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
