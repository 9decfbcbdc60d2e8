package state_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/state"
)

// forgery is an audit entry an attacker with write access to etcd puts
// straight into the log.
type forgery struct {
	id    string
	entry audit.Entry
	// rewrite puts the entry a second time, unchanged.
	rewrite bool
}

// genuineForgery is an entry that looks like one a daemon writes: dated
// t, its id agreeing, read at the current revision.
func (e *env) genuineForgery(t time.Time) forgery {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), "revision")
	if err != nil {
		e.tb.Fatal(err)
	}
	return forgery{
		id: fmt.Sprintf("%016x-%s-%08x", t.UnixNano(), "0badc0de", 1),
		entry: audit.Entry{Time: t.UTC(), Op: audit.OpPlace, Actor: "spiffe://example.org/admin/mallory",
			RequestID: "forged", Tenant: "us-army", Workload: "ghost", Label: "SECRET", Regions: []string{"aws/secret-east"},
			Revision: resp.Header.Revision},
	}
}

func (e *env) forge(f forgery) {
	e.tb.Helper()
	b, err := json.Marshal(f.entry)
	if err != nil {
		e.tb.Fatal(err)
	}
	e.put(e.prefix+"audit/"+f.id, b)
	if f.rewrite {
		e.put(e.prefix+"audit/"+f.id, b)
	}
}

// firstAudit is the time of the log's first entry.
func (e *env) firstAudit() time.Time {
	e.tb.Helper()
	recs, _, err := e.store.FindAudit(context.Background(), state.AuditFilter{Limit: 1})
	if err != nil || len(recs) == 0 {
		e.tb.Fatalf("FindAudit: %d records, %v", len(recs), err)
	}
	return recs[0].Entry.Time
}

// tamperRecords are the reasons of the chainer's tamper records.
func (e *env) tamperRecords() []string {
	e.tb.Helper()
	recs, _, err := e.store.FindAudit(context.Background(), state.AuditFilter{Op: "tamper", Limit: 1000})
	if err != nil {
		e.tb.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if r.Entry.Actor != "system:reconciler" {
			e.tb.Errorf("tamper record %s by %q; want the reconciler", r.ID, r.Entry.Actor)
		}
		out = append(out, r.Entry.Reasons...)
	}
	return out
}

// waitChained waits until every entry is chained.
func (e *env) waitChained() {
	e.tb.Helper()
	eventually(e.tb, 10*time.Second, func() (bool, string) {
		rep, err := e.store.VerifyAudit(context.Background(), nil)
		return err == nil && rep.Unchained == 0 && rep.Chained == rep.Entries, fmt.Sprintf("%+v, %v", rep, err)
	})
}

// countingObserver counts what the chainer reports.
type countingObserver struct {
	tampered chan int
	anchored chan error
}

func newCountingObserver() *countingObserver {
	return &countingObserver{tampered: make(chan int, 100), anchored: make(chan error, 1000)}
}

func (o *countingObserver) Tampered(n int) { o.tampered <- n }
func (o *countingObserver) Anchored(err error) {
	select {
	case o.anchored <- err:
	default:
	}
}

func (o *countingObserver) total() int {
	n := 0
	for {
		select {
		case k := <-o.tampered:
			n += k
		default:
			return n
		}
	}
}

// TestAuditChainerRejectsForgeries forges entries straight into etcd, in
// each way that leaves the entry inconsistent with its place in the log,
// and checks that the chainer chains them flagged, writes a tamper
// record naming each, logs an error and counts it, that it goes on
// chaining the genuine entries after, and that VerifyAudit names the
// forgery as the first bad entry. Each forgery is made both while the
// chainer runs (it sees the entry on its watch) and while it is stopped
// (it finds the entry when it catches up).
func TestAuditChainerRejectsForgeries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		forge func(e *env) forgery
		what  string
	}{
		{
			name: "back-dated before the log began",
			forge: func(e *env) forgery {
				return e.genuineForgery(e.firstAudit().Add(-time.Hour))
			},
			what: "back-dated",
		},
		{
			name: "back-dated beyond the skew allowance",
			forge: func(e *env) forgery {
				return e.genuineForgery(time.Now().Add(-6 * time.Second))
			},
			what: "back-dated",
		},
		{
			name: "dated in the future",
			forge: func(e *env) forgery {
				return e.genuineForgery(time.Now().Add(time.Hour))
			},
			what: "future",
		},
		{
			name: "id dated otherwise than its time",
			forge: func(e *env) forgery {
				f := e.genuineForgery(time.Now())
				f.entry.Time = f.entry.Time.Add(-time.Second)
				return f
			},
			what: "its id is dated",
		},
		{
			name: "revision not before its write",
			forge: func(e *env) forgery {
				f := e.genuineForgery(time.Now())
				f.entry.Revision += 1000
				return f
			},
			what: "not written by the transaction",
		},
		{
			name: "id not one a daemon writes",
			forge: func(e *env) forgery {
				f := e.genuineForgery(time.Now())
				f.id = "0000000000000000-forged"
				return f
			},
			what: "not one the daemons write",
		},
		{
			name: "rewritten after it was created",
			forge: func(e *env) forgery {
				f := e.genuineForgery(time.Now())
				f.rewrite = true
				return f
			},
			what: "rewritten",
		},
	} {
		for _, live := range []bool{false, true} {
			name := tc.name + "/caught up"
			if live {
				name = tc.name + "/watched"
			}
			t.Run(name, func(t *testing.T) {
				e, pub, key := chainedEnv(t, 2)
				obs := newCountingObserver()
				run := func() {
					reconcile(t, e.store, state.ReconcilerConfig{Interval: 50 * time.Millisecond,
						Audit: state.AuditChainConfig{Key: key, CheckpointInterval: 20 * time.Millisecond, Observer: obs}})
				}
				ctx := context.Background()
				if live {
					run()
					if _, err := e.store.Place(ctx, "before", secretWorkload(t, "before")); err != nil {
						t.Fatal(err)
					}
					e.waitChained()
				}
				f := tc.forge(e)
				e.forge(f)
				if _, err := e.store.Place(ctx, "after", secretWorkload(t, "after")); err != nil {
					t.Fatal(err)
				}
				if !live {
					// VerifyAudit alone names the forgery, not yet chained.
					rep, err := e.store.VerifyAudit(ctx, pub)
					if err != nil {
						t.Fatal(err)
					}
					if rep.OK() || rep.Problems[0].Entry != f.id || !strings.Contains(rep.Problems[0].What, tc.what) {
						t.Errorf("VerifyAudit before chaining: %+v; want the first problem to name %s: ...%s...", rep, f.id, tc.what)
					}
					run()
				}
				var rep *audit.Report
				eventually(t, 10*time.Second, func() (bool, string) {
					var err error
					rep, err = e.store.VerifyAudit(ctx, pub)
					return err == nil && rep.Unchained == 0 && rep.Chained == rep.Entries && len(e.tamperRecords()) > 0,
						fmt.Sprintf("%+v, %v", rep, err)
				})
				if rep.OK() {
					t.Fatalf("forgery not detected: %+v", rep)
				}
				if p := rep.Problems[0]; p.Entry != f.id || !strings.Contains(p.What, tc.what) {
					t.Errorf("first problem %v; want %s: ...%s... (all: %v)", p, f.id, tc.what, rep.Problems)
				}
				// The genuine entries around it still verify.
				recs, _, err := e.store.FindAudit(ctx, state.AuditFilter{})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					if r.ID == f.id || r.Entry.Op == "tamper" {
						continue
					}
					for _, p := range rep.Problems {
						if p.Entry == r.ID {
							t.Errorf("genuine entry %s (%s %s) reported: %v", r.ID, r.Entry.Op, r.Entry.RequestID, p)
						}
					}
				}
				reasons := e.tamperRecords()
				t.Logf("problems %v; tamper records %q", rep.Problems, reasons)
				if !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, f.id) && strings.Contains(r, tc.what) }) {
					t.Errorf("tamper records %q; want one naming %s: ...%s...", reasons, f.id, tc.what)
				}
				if logs := e.logs.String(); !strings.Contains(logs, "ERROR state: audit tampering") {
					t.Errorf("no error logged:\n%s", logs)
				}
				if n := obs.total(); n < 1 {
					t.Errorf("observer counted %d tamperings; want at least 1", n)
				}
			})
		}
	}
}

// TestAuditChainerReportsRewrites rewrites and deletes entries already
// chained, while the chainer watches: each is reported in a tamper
// record, besides VerifyAudit's finding.
func TestAuditChainerReportsRewrites(t *testing.T) {
	e, _, key := chainedEnv(t, 2)
	reconcile(t, e.store, state.ReconcilerConfig{Interval: 50 * time.Millisecond,
		Audit: state.AuditChainConfig{Key: key, CheckpointInterval: 20 * time.Millisecond}})
	// Once it chains a new entry, it watches.
	if _, err := e.store.Place(context.Background(), "watched", secretWorkload(t, "watched")); err != nil {
		t.Fatal(err)
	}
	e.waitChained()
	_, recs := e.chain()
	rewritten, deleted := recs[1].Key, recs[2].Key
	k := e.prefix + "audit/" + rewritten
	e.put(k, e.get(k))
	e.del(e.prefix + "audit/" + deleted)
	eventually(t, 10*time.Second, func() (bool, string) {
		reasons := e.tamperRecords()
		has := func(id, what string) bool {
			return slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, id) && strings.Contains(r, what) })
		}
		return has(rewritten, "rewritten") && has(deleted, "deleted"), fmt.Sprintf("tamper records %q", reasons)
	})
}

// TestAuditSkewedClocks places from two daemons whose clocks disagree,
// the chainer running on one or the other: within the allowance every
// entry verifies; beyond it, the entries of one daemon are reported,
// back-dated or from the future as the chainer's clock sees them.
func TestAuditSkewedClocks(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fast, slow time.Duration // each daemon's clock error
		chainFast  bool          // the chainer runs on the fast daemon
		what       string        // "": no entry reported
	}{
		{name: "4s apart", fast: 2 * time.Second, slow: -2 * time.Second},
		{name: "4s apart, chained by the fast", fast: 2 * time.Second, slow: -2 * time.Second, chainFast: true},
		{name: "4.5s apart", fast: 4500 * time.Millisecond, chainFast: true},
		{name: "8s apart", fast: 4 * time.Second, slow: -4 * time.Second, what: "future"},
		{name: "8s apart, chained by the fast", fast: 4 * time.Second, slow: -4 * time.Second, chainFast: true, what: "back-dated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := func(d time.Duration) state.Option {
				return state.WithClock(func() time.Time { return time.Now().Add(d) })
			}
			e := newEnv(t, nil, clock(tc.slow))
			e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
			fast := e.open(e.other, clock(tc.fast))
			ctx := context.Background()
			if err := fast.WaitFor(ctx, e.store.Revision()); err != nil {
				t.Fatal(err)
			}
			_, key, err := ed25519.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			chainer := e.store
			if tc.chainFast {
				chainer = fast
			}
			reconcile(t, chainer, state.ReconcilerConfig{Interval: 50 * time.Millisecond,
				Audit: state.AuditChainConfig{Key: key, CheckpointInterval: 20 * time.Millisecond}})
			for i := range 6 {
				s := e.store
				if i%2 == 0 {
					s = fast
				}
				if _, err := s.Place(ctx, fmt.Sprintf("req-%d", i), secretWorkload(t, fmt.Sprintf("w%d", i))); err != nil {
					t.Fatal(err)
				}
				for _, o := range []*state.Store{e.store, fast} {
					if err := o.WaitFor(ctx, s.Revision()); err != nil {
						t.Fatal(err)
					}
				}
			}
			var rep *audit.Report
			eventually(t, 10*time.Second, func() (bool, string) {
				var err error
				rep, err = e.store.VerifyAudit(ctx, nil)
				return err == nil && rep.Chained >= 6 && rep.Unchained == 0 && rep.Chained == rep.Entries, fmt.Sprintf("%+v, %v", rep, err)
			})
			if tc.what == "" {
				if !rep.OK() || len(e.tamperRecords()) != 0 {
					t.Errorf("genuine entries within the allowance reported: %+v, tamper records %q", rep, e.tamperRecords())
				}
				return
			}
			if rep.OK() || !strings.Contains(rep.Problems[0].What, tc.what) {
				t.Errorf("daemons 8s apart: %+v; want entries reported ...%s...", rep, tc.what)
			}
		})
	}
}
