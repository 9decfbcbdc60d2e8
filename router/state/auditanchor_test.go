package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/state"
)

// checkpoints reads the checkpoints straight from etcd, by seq.
func (e *env) checkpoints() []audit.Checkpoint {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), e.prefix+"audit-checkpoint/", clientv3.WithPrefix())
	if err != nil {
		e.tb.Fatal(err)
	}
	var out []audit.Checkpoint
	for _, kv := range resp.Kvs {
		var cp audit.Checkpoint
		if err := json.Unmarshal(kv.Value, &cp); err != nil {
			e.tb.Fatal(err)
		}
		out = append(out, cp)
	}
	return out
}

// chainLen is how many chain records there are.
func (e *env) chainLen() int {
	e.tb.Helper()
	_, recs := e.chain()
	return len(recs)
}

// TestAuditAnchorCatchesTruncation anchors every checkpoint in a
// directory, cuts the log short in etcd together with every checkpoint
// past the cut (which etcd alone cannot tell from a shorter log), and
// checks that the anchors tell: VerifyAudit with them, the chainer when
// its next term starts, and the chainer again when the log grows back
// over an anchored checkpoint.
func TestAuditAnchorCatchesTruncation(t *testing.T) {
	const n = 6 // placements; the log is 8 entries
	dir := audit.AnchorDir(t.TempDir())
	obs := newCountingObserver()
	e, pub, key := chainedEnvWith(t, n, state.AuditChainConfig{Anchor: dir, Observer: obs})
	ctx := context.Background()

	// Every checkpoint in etcd is anchored, read-only.
	cps := e.checkpoints()
	anchors, err := dir.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) == 0 || !slices.EqualFunc(cps, anchors, func(a, b audit.Checkpoint) bool { return a.Seq == b.Seq && a.Hash == b.Hash }) {
		t.Fatalf("anchored %v; want the checkpoints in etcd %v", anchors, cps)
	}
	for _, a := range anchors {
		fi, err := os.Stat(filepath.Join(string(dir), fmt.Sprintf("checkpoint-%020d.json", a.Seq)))
		if err != nil || fi.Mode().Perm() != 0o444 {
			t.Errorf("anchor #%d: %v, %v; want a read-only file", a.Seq, fi, err)
		}
	}
	if rep, err := e.store.VerifyAudit(ctx, pub, audit.VerifyAnchors(anchors)); err != nil || !rep.OK() || rep.Anchors != len(anchors) {
		t.Fatalf("VerifyAudit with anchors of an intact log: %+v, %v", rep, err)
	}

	// Cut the log after entry 5, and every checkpoint past it.
	keys, recs := e.chain()
	const keep = 5
	for i := keep; i < len(recs); i++ {
		e.del(e.prefix + "audit/" + recs[i].Key)
		e.del(keys[i])
	}
	for _, cp := range cps {
		if cp.Seq > keep {
			e.del(fmt.Sprintf("%saudit-checkpoint/%020d", e.prefix, cp.Seq))
		}
	}
	rep, err := e.store.VerifyAudit(ctx, pub)
	if err != nil || !rep.OK() {
		t.Fatalf("VerifyAudit without anchors: %+v, %v; the cut was meant to be invisible in etcd", rep, err)
	}
	rep, err = e.store.VerifyAudit(ctx, pub, audit.VerifyAnchors(anchors))
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Problems[0].Seq != keep+1 || !strings.Contains(rep.Problems[0].What, "log truncated: checkpoint #") ||
		!strings.Contains(rep.Problems[len(rep.Problems)-1].What, "log truncated: checkpoint #8 anchored outside etcd signs 8 entries, the chain holds 5") {
		t.Fatalf("VerifyAudit with anchors of a cut log: %+v; want #%d: log truncated: checkpoint #8 anchored...", rep, keep+1)
	}

	// The next term of the chainer finds the cut, and when the log has
	// grown back over an anchored checkpoint, the rewrite.
	reconcile(t, e.store, state.ReconcilerConfig{Interval: 50 * time.Millisecond,
		Audit: state.AuditChainConfig{Key: key, CheckpointEvery: 1, CheckpointInterval: 20 * time.Millisecond, Anchor: dir, Observer: obs}})
	has := func(what string) (bool, string) {
		reasons := e.tamperRecords()
		return slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, what) }), fmt.Sprintf("tamper records %q", reasons)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		return has("log truncated: checkpoint #8 anchored outside etcd signs 8 entries, the chain holds 5")
	})
	// One entry at a time, so that every seq is checkpointed (and #8
	// with it).
	for i := 0; e.chainLen() < 10; i++ {
		e.waitChained()
		if _, err := e.store.Place(ctx, fmt.Sprintf("regrown-%d", i), secretWorkload(t, fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		return has("does not match the one anchored outside etcd: the log was rewritten")
	})
	rep, err = e.store.VerifyAudit(ctx, pub, audit.VerifyAnchors(anchors))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rep.Problems, func(p audit.Problem) bool {
		return p.Seq == 8 && p.What == "chain record #8 does not match the checkpoint anchored outside etcd: the log was rewritten"
	}) {
		t.Fatalf("VerifyAudit with anchors of a regrown log: %+v; want anchored checkpoint #8 not to match", rep)
	}
	if obs.total() < 2 {
		t.Errorf("observer counted fewer than 2 tamperings")
	}
	// A forged anchor is refused.
	forged := anchors[len(anchors)-1]
	forged.Hash = strings.Repeat("0", 64)
	rep, err = e.store.VerifyAudit(ctx, pub, audit.VerifyAnchors([]audit.Checkpoint{forged}))
	if err != nil || !slices.ContainsFunc(rep.Problems, func(p audit.Problem) bool {
		return p.What == fmt.Sprintf("checkpoint #%d anchored outside etcd: signature does not verify: forged", forged.Seq)
	}) {
		t.Errorf("VerifyAudit with a forged anchor: %+v, %v", rep, err)
	}
}

// TestAuditAnchorUnwritable anchors to a directory that does not exist:
// the failure is counted, and the chain and its checkpoints go on.
func TestAuditAnchorUnwritable(t *testing.T) {
	obs := newCountingObserver()
	e, pub, _ := chainedEnvWith(t, 2, state.AuditChainConfig{Anchor: audit.AnchorDir(filepath.Join(t.TempDir(), "gone")), Observer: obs})
	select {
	case err := <-obs.anchored:
		if err == nil {
			t.Error("anchored to a directory that does not exist")
		}
	default:
		t.Error("anchoring failure not reported")
	}
	if rep, err := e.store.VerifyAudit(context.Background(), pub); err != nil || !rep.OK() || rep.Checkpoint == nil {
		t.Errorf("VerifyAudit: %+v, %v; want a clean log, checkpointed", rep, err)
	}
	if !strings.Contains(e.logs.String(), "ERROR state: audit checkpoint not anchored") {
		t.Errorf("no error logged:\n%s", e.logs)
	}
}
