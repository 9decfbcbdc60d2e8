package state_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/state"
)

// TestAuditChainHeadPastAGap deletes a chain record from the middle of
// the chain, behind the chainer's back, and checks that the next term
// of the chainer still finds the chain's real head: it chains a new
// entry after it, leaving every record there was in place (taking the
// n-th of n records for the head would overwrite the last one).
func TestAuditChainHeadPastAGap(t *testing.T) {
	e, pub, key := chainedEnv(t, 3)
	ctx := context.Background()
	keys, recs := e.chain()
	if len(recs) != 5 {
		t.Fatalf("%d chain records; want 5", len(recs))
	}
	e.del(keys[1])
	if _, err := e.store.Place(ctx, "late", secretWorkload(t, "late")); err != nil {
		t.Fatal(err)
	}
	reconcile(t, e.store, state.ReconcilerConfig{Interval: 50 * time.Millisecond,
		Audit: state.AuditChainConfig{Key: key, CheckpointInterval: 20 * time.Millisecond}})
	eventually(t, 10*time.Second, func() (bool, string) {
		_, now := e.chain()
		return len(now) == 5 && now[4].Seq == 6, fmt.Sprintf("chain %+v", now)
	})
	_, now := e.chain()
	for i, want := range []audit.ChainRecord{recs[0], recs[2], recs[3], recs[4]} {
		if !reflect.DeepEqual(now[i], want) {
			t.Errorf("record %d is now %+v; want %+v", want.Seq, now[i], want)
		}
	}
	rep, err := e.store.VerifyAudit(ctx, pub)
	if err != nil || rep.OK() {
		t.Errorf("VerifyAudit = %+v, %v; want the missing record reported", rep, err)
	}
}
