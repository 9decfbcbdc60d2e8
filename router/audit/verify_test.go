package audit

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testLog is a genuine log of n placements, chained, with a checkpoint
// signed by key at its head; now is a verifier's clock just after it.
func testLog(tb testing.TB, n int, key ed25519.PrivateKey) (log *Log, now time.Time) {
	tb.Helper()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ids := &IDs{Node: "0123abcd"}
	log = &Log{}
	prev := make([]byte, 32)
	for i := 1; i <= n; i++ {
		e := Entry{Time: base.Add(time.Duration(i) * time.Millisecond), Op: OpPlace, Actor: "spiffe://td/user/a",
			RequestID: fmt.Sprintf("r%d", i), Tenant: "t", Workload: "w", Label: "SECRET", Revision: int64(10 + i - 1)}
		val, err := Encode(e)
		if err != nil {
			tb.Fatal(err)
		}
		id := ids.Next(e.Time)
		rev := int64(10 + i)
		log.Entries = append(log.Entries, StoredEntry{ID: id, Value: val, CreateRevision: rev, ModRevision: rev, Version: 1})
		var r ChainRecord
		r, prev = Link(uint64(i), id, rev, val, prev, e.Time, "")
		log.Chain = append(log.Chain, record(tb, "c/", uint64(i), r))
	}
	cp := Checkpoint{Seq: uint64(n), Hash: hex.EncodeToString(prev), Time: base.Add(time.Second)}
	cp.Sign(key)
	log.Checkpoints = append(log.Checkpoints, record(tb, "cp/", cp.Seq, cp))
	return log, base.Add(2 * time.Second)
}

// record is v stored at seq under dir.
func record(tb testing.TB, dir string, seq uint64, v any) StoredRecord {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return StoredRecord{Key: fmt.Sprintf("%s%020d", dir, seq), Seq: seq, Named: true, Value: b}
}

// rewrite decodes the record held by r into a value of type T, changes it
// with f, and stores it back, without re-hashing it.
func rewrite[T any](tb testing.TB, r *StoredRecord, f func(*T)) {
	tb.Helper()
	var v T
	if err := json.Unmarshal(r.Value, &v); err != nil {
		tb.Fatal(err)
	}
	f(&v)
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	r.Value = b
}

// TestVerify mutates a genuine log in each way Verify must catch, and
// checks the first problem it reports.
func TestVerify(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	const n = 6
	for _, tc := range []struct {
		name    string
		mutate  func(log *Log) []VerifyOption
		seq     uint64 // of the first problem; 0 for none
		want    string // a fragment of its description
		entries int    // Unchained, when not 0
	}{
		{name: "genuine", mutate: func(*Log) []VerifyOption { return nil }},
		{name: "anchored", mutate: func(log *Log) []VerifyOption {
			var cp Checkpoint
			_ = json.Unmarshal(log.Checkpoints[0].Value, &cp)
			return []VerifyOption{VerifyAnchors([]Checkpoint{cp})}
		}},
		{name: "entry altered", seq: 3, want: "entry altered", mutate: func(log *Log) []VerifyOption {
			log.Entries[2].Value = []byte(strings.Replace(string(log.Entries[2].Value), `"r3"`, `"r9"`, 1))
			return nil
		}},
		{name: "entry deleted", seq: 3, want: "entry deleted", mutate: func(log *Log) []VerifyOption {
			log.Entries = append(log.Entries[:2], log.Entries[3:]...)
			return nil
		}},
		{name: "entry rewritten", seq: 3, want: "entry rewritten after it was chained", mutate: func(log *Log) []VerifyOption {
			log.Entries[2].ModRevision, log.Entries[2].Version = 40, 2
			return nil
		}},
		{name: "entry inserted", seq: n + 1, want: "inserted", mutate: func(log *Log) []VerifyOption {
			e := log.Entries[1]
			e.ID = strings.Replace(e.ID, "0123abcd", "0123abce", 1)
			log.Entries = append(log.Entries, e)
			return nil
		}},
		{name: "chain record altered", seq: 2, want: "its hash does not match its contents", mutate: func(log *Log) []VerifyOption {
			rewrite(t, &log.Chain[1], func(r *ChainRecord) { r.Tamper = "x" })
			return nil
		}},
		{name: "chain records deleted", seq: 2, want: "#2 to #2 missing: deleted", mutate: func(log *Log) []VerifyOption {
			log.Chain = append(log.Chain[:1], log.Chain[2:]...)
			return nil
		}},
		{name: "a stray key among the chain records", seq: n + 1, want: "unexpected key c/x", mutate: func(log *Log) []VerifyOption {
			log.Chain = append(log.Chain, StoredRecord{Key: "c/x", Value: []byte("{}")})
			return nil
		}},
		{name: "truncated", seq: n, want: "log truncated", mutate: func(log *Log) []VerifyOption {
			log.Chain, log.Entries = log.Chain[:n-1], log.Entries[:n-1]
			return nil
		}},
		{name: "checkpoint forged", seq: n, want: "signature does not verify: forged", mutate: func(log *Log) []VerifyOption {
			rewrite(t, &log.Checkpoints[0], func(cp *Checkpoint) { cp.Signature[0] ^= 0x80 })
			return nil
		}},
		{name: "checkpoint signed by another key", seq: n, want: "signed by another key", mutate: func(log *Log) []VerifyOption {
			rewrite(t, &log.Checkpoints[0], func(cp *Checkpoint) { cp.Sign(other) })
			return nil
		}},
		{name: "checkpoint under another seq's key", seq: n, want: "forged", mutate: func(log *Log) []VerifyOption {
			log.Checkpoints[0].Seq = n - 1
			return nil
		}},
		{name: "anchor of another head", seq: 2, want: "the log was rewritten", mutate: func(log *Log) []VerifyOption {
			cp := Checkpoint{Seq: 2, Hash: strings.Repeat("0", 64), Time: time.Now()}
			cp.Sign(key)
			return []VerifyOption{VerifyAnchors([]Checkpoint{cp})}
		}},
		{name: "an unchained entry from the future", seq: n + 1, want: "(not yet chained)", entries: 1, mutate: func(log *Log) []VerifyOption {
			tm := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			val, _ := Encode(Entry{Time: tm, Op: OpPlace, Revision: 99})
			log.Entries = append(log.Entries, StoredEntry{ID: (&IDs{Node: "0123abcd"}).Next(tm), Value: val, CreateRevision: 100, ModRevision: 100, Version: 1})
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, now := testLog(t, n, key)
			opts := tc.mutate(log)
			rep := Verify(log, pub, now, opts...)
			if rep.Unchained != tc.entries {
				t.Errorf("Unchained = %d; want %d", rep.Unchained, tc.entries)
			}
			if tc.want == "" {
				if !rep.OK() || rep.Chained != n || rep.Checkpoint == nil || len(rep.Warnings) > 0 {
					t.Errorf("Verify = %+v; want a clean log of %d, checkpointed", rep, n)
				}
				return
			}
			if rep.OK() {
				t.Fatalf("Verify found nothing; want #%d ...%s...", tc.seq, tc.want)
			}
			if p := rep.Problems[0]; p.Seq != tc.seq || !strings.Contains(p.What, tc.want) {
				t.Errorf("first problem %v; want #%d ...%s...", p, tc.seq, tc.want)
			}
		})
	}
}

// TestVerifyWarnings checks what Verify says it could not check.
func TestVerifyWarnings(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	log, now := testLog(t, 3, key)
	if rep := Verify(log, nil, now); !rep.OK() || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "no public key given") {
		t.Errorf("Verify without a key = %+v; want a warning", rep)
	}
	log.Checkpoints = nil
	if rep := Verify(log, key.Public().(ed25519.PublicKey), now); !rep.OK() || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "no signed checkpoint") {
		t.Errorf("Verify without a checkpoint = %+v; want a warning", rep)
	}
}
