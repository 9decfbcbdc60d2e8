package state_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/state"
)

// sha256Hex is the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// chainHash is the hash a chain record should hold, in hex.
func chainHash(r audit.ChainRecord) string {
	entry, _ := hex.DecodeString(r.EntrySHA256)
	prev, _ := hex.DecodeString(r.Prev)
	return hex.EncodeToString(audit.RecordHash(&r, entry, prev))
}

// chainedEnv is an env whose log holds n placements, a refusal and a
// region change, all chained and covered by a signed checkpoint, with
// the chainer stopped so that a test may tamper with etcd behind it.
func chainedEnv(t *testing.T, n int) (*env, ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	return chainedEnvWith(t, n, state.AuditChainConfig{})
}

// chainedEnvWith is chainedEnv with a chainer configured as cfg, less
// its key and checkpoint period.
func chainedEnvWith(t *testing.T, n int, cfg state.AuditChainConfig) (*env, ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "secret-east", big), commercialRegion("aws", "us-east-1")},
		[]router.Tenant{army()})
	cfg.Key, cfg.CheckpointEvery, cfg.CheckpointInterval = key, 3, 20*time.Millisecond
	stop := reconcile(t, e.store, state.ReconcilerConfig{Interval: 50 * time.Millisecond, Audit: cfg})
	ctx := context.Background()
	for i := range n {
		if _, err := e.store.Place(ctx, fmt.Sprintf("req-%d", i), secretWorkload(t, fmt.Sprintf("w%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	w := secretWorkload(t, "too-big")
	w.Resources.MilliCPU = 1 << 50
	if _, err := e.store.Place(ctx, "refused", w); err == nil {
		t.Fatal("a workload larger than every region placed")
	}
	e.putRegion(commercialRegion("aws", "us-east-2"))
	want := n + 2
	eventually(t, 10*time.Second, func() (bool, string) {
		rep, err := e.store.VerifyAudit(ctx, pub)
		if err != nil {
			return false, err.Error()
		}
		ok := rep.OK() && rep.Chained == want && rep.Unchained == 0 && rep.Checkpoint != nil && rep.Checkpoint.Seq == uint64(want)
		return ok, fmt.Sprintf("report %+v", rep)
	})
	stop()
	return e, pub, key
}

// chain reads the chain records straight from etcd, in order.
func (e *env) chain() ([]string, []audit.ChainRecord) {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), e.prefix+"audit-chain/", clientv3.WithPrefix())
	if err != nil {
		e.tb.Fatal(err)
	}
	var keys []string
	var recs []audit.ChainRecord
	for _, kv := range resp.Kvs {
		var r audit.ChainRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			e.tb.Fatal(err)
		}
		keys, recs = append(keys, string(kv.Key)), append(recs, r)
	}
	return keys, recs
}

func (e *env) get(key string) []byte {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		e.tb.Fatalf("get %s: %v, %d records", key, err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}

func (e *env) put(key string, val []byte) {
	e.tb.Helper()
	if _, err := e.other.Put(context.Background(), key, string(val)); err != nil {
		e.tb.Fatal(err)
	}
}

func (e *env) createRevision(key string) int64 {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		e.tb.Fatalf("get %s: %v", key, err)
	}
	return resp.Kvs[0].CreateRevision
}

func (e *env) del(key string) {
	e.tb.Helper()
	if resp, err := e.other.Delete(context.Background(), key); err != nil || resp.Deleted != 1 {
		e.tb.Fatalf("delete %s: %v, %d deleted", key, err, resp.Deleted)
	}
}

// TestVerifyAuditTamper tampers with a chained log, straight in etcd, in
// each way an attacker with write access to etcd could, and checks that
// VerifyAudit names the first bad entry.
func TestVerifyAuditTamper(t *testing.T) {
	const n = 6 // placements; the log is 8 entries
	_, other, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// tamper changes the log: chain keys and records, by position 0..7.
		tamper func(e *env, keys []string, recs []audit.ChainRecord, key ed25519.PrivateKey)
		pub    func(pub ed25519.PublicKey) ed25519.PublicKey
		// seq and entry (an index into recs, or -1: none) name the first bad
		// entry; what is a fragment of its description.
		seq   uint64
		entry int
		what  string
	}{
		{name: "intact", tamper: func(*env, []string, []audit.ChainRecord, ed25519.PrivateKey) {}},
		{
			name: "flip a byte",
			tamper: func(e *env, _ []string, recs []audit.ChainRecord, _ ed25519.PrivateKey) {
				k := e.prefix + "audit/" + recs[2].Key
				v := e.get(k)
				v[len(v)/2] ^= 0x01
				e.put(k, v)
			},
			seq: 3, entry: 2, what: "entry altered",
		},
		{
			name: "rewrite with the same bytes",
			tamper: func(e *env, _ []string, recs []audit.ChainRecord, _ ed25519.PrivateKey) {
				k := e.prefix + "audit/" + recs[4].Key
				e.put(k, e.get(k))
			},
			seq: 5, entry: 4, what: "entry rewritten",
		},
		{
			name: "delete an entry",
			tamper: func(e *env, _ []string, recs []audit.ChainRecord, _ ed25519.PrivateKey) {
				e.del(e.prefix + "audit/" + recs[3].Key)
			},
			seq: 4, entry: 3, what: "entry deleted",
		},
		{
			name: "delete an entry and its chain record",
			tamper: func(e *env, keys []string, recs []audit.ChainRecord, _ ed25519.PrivateKey) {
				e.del(e.prefix + "audit/" + recs[3].Key)
				e.del(keys[3])
			},
			seq: 4, entry: -1, what: "missing",
		},
		{
			name: "swap two entries",
			tamper: func(e *env, _ []string, recs []audit.ChainRecord, _ ed25519.PrivateKey) {
				a, b := e.prefix+"audit/"+recs[1].Key, e.prefix+"audit/"+recs[4].Key
				va, vb := e.get(a), e.get(b)
				e.put(a, vb)
				e.put(b, va)
			},
			seq: 2, entry: 1, what: "entry altered",
		},
		{
			name: "swap two chain records",
			tamper: func(e *env, keys []string, _ []audit.ChainRecord, _ ed25519.PrivateKey) {
				va, vb := e.get(keys[1]), e.get(keys[4])
				e.put(keys[1], vb)
				e.put(keys[4], va)
			},
			seq: 2, entry: -1, what: "reordered",
		},
		{
			name: "replace the last entry and re-link the chain",
			// The attacker re-creates the entry (at version 1) and
			// recomputes its chain record: only the signed checkpoint
			// can tell.
			tamper: func(e *env, keys []string, recs []audit.ChainRecord, _ ed25519.PrivateKey) {
				r := recs[len(recs)-1]
				k := e.prefix + "audit/" + r.Key
				v := e.get(k)
				v[len(v)/2] ^= 0x01
				e.del(k)
				e.put(k, v)
				r.EntrySHA256, r.Rev = sha256Hex(v), e.createRevision(k)
				r.Hash = chainHash(r)
				b, _ := json.Marshal(r)
				e.put(keys[len(keys)-1], b)
			},
			seq: n + 2, entry: -1, what: "checkpoint #8 does not match",
		},
		{
			name: "delete an entry and re-link the chain",
			// Every later record renumbered and re-linked: the chain is
			// consistent but shorter than the latest checkpoint says.
			// (The earlier checkpoints go, so that the latest is the
			// one to tell.)
			tamper: func(e *env, keys []string, recs []audit.ChainRecord, _ ed25519.PrivateKey) {
				resp, err := e.other.Get(context.Background(), e.prefix+"audit-checkpoint/", clientv3.WithPrefix())
				if err != nil {
					t.Fatal(err)
				}
				for _, kv := range resp.Kvs[:len(resp.Kvs)-1] {
					e.del(string(kv.Key))
				}
				e.del(e.prefix + "audit/" + recs[5].Key)
				e.del(keys[len(keys)-1])
				prev := recs[4].Hash
				for i, r := range recs[6:] {
					r.Seq = uint64(6 + i)
					r.Prev = prev
					r.Hash = chainHash(r)
					prev = r.Hash
					b, _ := json.Marshal(r)
					e.put(keys[5+i], b)
				}
			},
			seq: n + 2, entry: -1, what: "log truncated",
		},
		{
			name: "truncate",
			tamper: func(e *env, keys []string, recs []audit.ChainRecord, _ ed25519.PrivateKey) {
				for i := 5; i < len(recs); i++ {
					e.del(e.prefix + "audit/" + recs[i].Key)
					e.del(keys[i])
				}
			},
			seq: 6, entry: -1, what: "log truncated",
		},
		{
			name: "forge a checkpoint signature",
			tamper: func(e *env, _ []string, _ []audit.ChainRecord, _ ed25519.PrivateKey) {
				k := fmt.Sprintf("%saudit-checkpoint/%020d", e.prefix, n+2)
				var cp audit.Checkpoint
				if err := json.Unmarshal(e.get(k), &cp); err != nil {
					t.Fatal(err)
				}
				cp.Signature[0] ^= 0x80
				b, _ := json.Marshal(cp)
				e.put(k, b)
			},
			seq: n + 2, entry: -1, what: "forged",
		},
		{
			name: "sign with another key",
			tamper: func(e *env, _ []string, _ []audit.ChainRecord, _ ed25519.PrivateKey) {
				k := fmt.Sprintf("%saudit-checkpoint/%020d", e.prefix, n+2)
				var cp audit.Checkpoint
				if err := json.Unmarshal(e.get(k), &cp); err != nil {
					t.Fatal(err)
				}
				cp.Sign(other)
				b, _ := json.Marshal(cp)
				e.put(k, b)
			},
			seq: n + 2, entry: -1, what: "another key",
		},
		{
			name:   "verify with the wrong key",
			tamper: func(*env, []string, []audit.ChainRecord, ed25519.PrivateKey) {},
			pub:    func(ed25519.PublicKey) ed25519.PublicKey { return other.Public().(ed25519.PublicKey) },
			seq:    0, entry: -1, what: "another key", // at the first checkpoint, wherever it is
		},
		{
			name: "the first of two faults",
			tamper: func(e *env, _ []string, recs []audit.ChainRecord, _ ed25519.PrivateKey) {
				e.del(e.prefix + "audit/" + recs[5].Key)
				k := e.prefix + "audit/" + recs[1].Key
				v := e.get(k)
				v[3] ^= 0x20
				e.put(k, v)
			},
			seq: 2, entry: 1, what: "entry altered",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, pub, key := chainedEnv(t, n)
			keys, recs := e.chain()
			if len(recs) != n+2 {
				t.Fatalf("%d chain records; want %d", len(recs), n+2)
			}
			tc.tamper(e, keys, recs, key)
			if tc.pub != nil {
				pub = tc.pub(pub)
			}
			rep, err := e.store.VerifyAudit(context.Background(), pub)
			if err != nil {
				t.Fatal(err)
			}
			if tc.what == "" {
				if !rep.OK() || rep.Chained != n+2 || rep.Unchained != 0 || len(rep.Warnings) != 0 {
					t.Errorf("report %+v; want a clean log of %d entries", rep, n+2)
				}
				return
			}
			if rep.OK() {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			got := rep.Problems[0]
			wantEntry := ""
			if tc.entry >= 0 {
				wantEntry = recs[tc.entry].Key
			}
			if tc.seq != 0 && got.Seq != tc.seq || got.Entry != wantEntry || !strings.Contains(got.What, tc.what) {
				t.Errorf("first problem %v; want #%d %s: ...%s... (all: %v)", got, tc.seq, wantEntry, tc.what, rep.Problems)
			}
		})
	}
}

// TestAuditChainTail checks that entries written after the chain head
// are reported as not yet chained, not as tampering, and that a new term
// of the chainer picks them up.
func TestAuditChainTail(t *testing.T) {
	e, pub, key := chainedEnv(t, 2)
	ctx := context.Background()
	if _, err := e.store.Place(ctx, "late", secretWorkload(t, "late")); err != nil {
		t.Fatal(err)
	}
	rep, err := e.store.VerifyAudit(ctx, pub)
	if err != nil || !rep.OK() || rep.Unchained != 1 || rep.Chained != 4 {
		t.Fatalf("VerifyAudit = %+v, %v; want 4 chained and 1 not yet chained", rep, err)
	}
	reconcile(t, e.store, state.ReconcilerConfig{Interval: 50 * time.Millisecond,
		Audit: state.AuditChainConfig{Key: key, CheckpointInterval: 20 * time.Millisecond}})
	eventually(t, 10*time.Second, func() (bool, string) {
		rep, err := e.store.VerifyAudit(ctx, pub)
		return err == nil && rep.OK() && rep.Chained == 5 && rep.Unchained == 0 && rep.Checkpoint.Seq == 5, fmt.Sprintf("%+v, %v", rep, err)
	})
}

// TestAuditCatalogue checks that catalogue changes are audited in their
// transactions, regions with their accreditation before and after.
func TestAuditCatalogue(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
	ctx := context.Background()
	r := secretRegion("aws", "secret-east", big)
	r.Accreditation.Revoked = true
	e.putRegion(r)
	if err := e.store.DeleteRegion(ctx, "aws/secret-east"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutProvider(ctx, &router.Provider{ID: "gcp", Name: "GCP", Jurisdiction: "USA"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteProvider(ctx, "gcp"); err != nil {
		t.Fatal(err)
	}
	tn := army()
	tn.ID = "navy"
	if err := e.store.PutTenant(ctx, &tn); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteTenant(ctx, "navy"); err != nil {
		t.Fatal(err)
	}
	recs, _, err := e.store.FindAudit(ctx, state.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, r := range recs {
		ops = append(ops, r.Entry.Op)
	}
	want := []string{audit.OpRegionPut, audit.OpRegionDelete, audit.OpProviderPut, audit.OpProviderDelete, audit.OpTenantPut, audit.OpTenantDelete}
	if !slices.Equal(ops, want) {
		t.Fatalf("ops %v; want %v", ops, want)
	}
	put := recs[0].Entry
	if put.Actor != "system" || !slices.Equal(put.Regions, []string{"aws/secret-east"}) ||
		strings.Contains(put.Before, "revoked") || !strings.HasSuffix(put.After, " revoked") || !strings.HasPrefix(put.Before, "SECRET il=6 expires=") {
		t.Errorf("region-put %+v", put)
	}
	if recs[2].Entry.Provider != "gcp" || recs[5].Entry.Tenant != "navy" {
		t.Errorf("provider-put %+v, tenant-delete %+v", recs[2].Entry, recs[5].Entry)
	}
	// A refused change is not audited.
	if err := e.store.DeleteProvider(ctx, "gcp"); err == nil {
		t.Error("deleting a deleted provider succeeded")
	}
	if recs, _, _ := e.store.FindAudit(ctx, state.AuditFilter{}); len(recs) != len(want) {
		t.Errorf("%d records after a refused change; want %d", len(recs), len(want))
	}
}

// TestFindAudit checks each filter and the paging.
func TestFindAudit(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "a", big), secretRegion("aws", "b", big)},
		[]router.Tenant{army()})
	ctx := context.Background()
	for i := range 5 {
		if _, err := e.store.Place(ctx, fmt.Sprintf("r%d", i), secretWorkload(t, fmt.Sprintf("w%d", i%2))); err != nil {
			t.Fatal(err)
		}
	}
	mid := time.Now()
	time.Sleep(2 * time.Millisecond)
	if _, err := e.store.Release(ctx, "us-army", "r0"); err != nil {
		t.Fatal(err)
	}
	all, _, err := e.store.FindAudit(ctx, state.AuditFilter{})
	if err != nil || len(all) != 6 {
		t.Fatalf("FindAudit = %d records, %v; want 6", len(all), err)
	}
	ids := func(recs []audit.Record) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.Entry.RequestID+":"+r.Entry.Op)
		}
		return out
	}
	region := all[0].Entry.Regions[0]
	var inRegion []string
	for _, r := range all {
		if slices.Contains(r.Entry.Regions, region) {
			inRegion = append(inRegion, r.Entry.RequestID+":"+r.Entry.Op)
		}
	}
	for _, tc := range []struct {
		name string
		f    state.AuditFilter
		want []string
	}{
		{"workload", state.AuditFilter{Workload: "w1"}, []string{"r1:place", "r3:place"}},
		{"tenant", state.AuditFilter{Tenant: "us-army", Op: "release"}, []string{"r0:release"}},
		{"other tenant", state.AuditFilter{Tenant: "navy"}, nil},
		{"since", state.AuditFilter{Since: mid}, []string{"r0:release"}},
		{"until", state.AuditFilter{Until: mid, Workload: "w0"}, []string{"r0:place", "r2:place", "r4:place"}},
		{"region", state.AuditFilter{Region: region}, inRegion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := e.store.FindAudit(ctx, tc.f)
			if err != nil || next != "" || !slices.Equal(ids(got), tc.want) {
				t.Errorf("FindAudit = %v, %q, %v; want %v", ids(got), next, err, tc.want)
			}
		})
	}
	var paged []audit.Record
	f := state.AuditFilter{Limit: 4}
	for range 3 {
		page, next, err := e.store.FindAudit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if next == "" {
			break
		}
		f.After = next
	}
	if !slices.Equal(ids(paged), ids(all)) {
		t.Errorf("paged %v; want %v", ids(paged), ids(all))
	}
}
