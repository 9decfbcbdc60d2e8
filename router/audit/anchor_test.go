package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// signed is cp signed with key.
func signed(cp Checkpoint, key ed25519.PrivateKey) Checkpoint {
	cp.Sign(key)
	return cp
}

// TestAnchorDir checks the anchor's files: written once, never replaced,
// read back by seq, and a torn or misnamed one refused.
func TestAnchorDir(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cp := func(seq uint64, hash string) Checkpoint {
		return signed(Checkpoint{Seq: seq, Hash: hash, Time: time.Now().UTC()}, key)
	}
	h1, h2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	dir := AnchorDir(t.TempDir())
	if a, err := dir.Newest(); err != nil || a != nil {
		t.Fatalf("Newest of an empty anchor = %v, %v", a, err)
	}
	for _, c := range []Checkpoint{cp(12, h1), cp(3, h1), cp(12, h1)} {
		if err := dir.Write(c); err != nil {
			t.Fatalf("Write #%d: %v", c.Seq, err)
		}
	}
	name := filepath.Join(string(dir), fmt.Sprintf("checkpoint-%020d.json", 12))
	before, _ := os.ReadFile(name)
	if err := dir.Write(cp(12, h2)); !errors.Is(err, ErrAnchorMismatch) {
		t.Errorf("Write of another head at #12: %v; want ErrAnchorMismatch", err)
	}
	if after, _ := os.ReadFile(name); string(after) != string(before) {
		t.Error("anchor #12 rewritten")
	}
	if err := os.WriteFile(filepath.Join(string(dir), ".checkpoint-123.tmp"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	all, err := dir.Read()
	if err != nil || len(all) != 2 || all[0].Seq != 3 || all[1].Seq != 12 {
		t.Fatalf("Read = %v, %v; want #3 and #12", all, err)
	}
	if a, err := dir.Newest(); err != nil || a.Seq != 12 || a.Hash != h1 {
		t.Errorf("Newest = %v, %v; want #12", a, err)
	}
	for _, tc := range []struct{ name, body string }{
		{"torn", `{"seq":20,"ha`},
		{"misnamed", `{"seq":21}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := AnchorDir(t.TempDir())
			if err := os.WriteFile(filepath.Join(string(d), fmt.Sprintf("checkpoint-%020d.json", 20)), []byte(tc.body), 0o444); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Read(); err == nil {
				t.Errorf("Read of a %s anchor succeeded", tc.name)
			}
		})
	}
}
