package state_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/state"
)

// BenchmarkFindAudit measures, on a trail of 24,000 entries (flood-like:
// a label releasable to every country), a ListAudit filter that matches
// nothing, by the full scan FindAudit used to make and from the index,
// against a plain etcd Get in the same run; and the Get while four
// callers repeat the query, as in the issue:
//
//	CLASSROUTE_BENCH_NOFSYNC=1 go test -run '^$' -bench FindAudit -benchtime 2s ./router/state
func BenchmarkFindAudit(b *testing.B) {
	m := benchEtcd(b)
	cli := etcdtest.Client(b, m.Endpoints()...)
	prefix := fmt.Sprintf("/bench/audit-%d/", benchSeq.Add(1))
	ctx := context.Background()
	s, err := state.Open(ctx, cli, router.NewEngine(), state.WithPrefix(prefix))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const entries = 24000
	lbl := relToAll("TOP SECRET")
	for i := 0; i < entries; i += 25 {
		var es []audit.Entry
		for j := i; j < i+25; j++ {
			es = append(es, audit.Entry{
				Op: []string{audit.OpRefuse, audit.OpPlace, audit.OpRelease}[j%3], Actor: "spiffe://td/tenant/t/user/u",
				Tenant: fmt.Sprintf("tenant-%d", j%4), Workload: fmt.Sprintf("w%d", j%50), RequestID: fmt.Sprintf("r-%d", j),
				Label: lbl, Regions: []string{fmt.Sprintf("aws/r%d", j%20)}, Reasons: []string{"permission denied: label above the ceiling"},
			})
		}
		if err := s.AppendAudit(ctx, es...); err != nil {
			b.Fatal(err)
		}
	}
	nothing := state.AuditFilter{Tenant: "nosuch"}
	var getNs atomic.Int64
	get := func() error {
		_, err := cli.Get(ctx, prefix+"seeded")
		return err
	}
	b.Run("etcd-get", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			if err := get(); err != nil {
				b.Fatal(err)
			}
		}
		getNs.Store(time.Since(start).Nanoseconds() / int64(b.N))
	})
	for _, way := range []struct {
		name string
		find func(context.Context, state.AuditFilter) ([]audit.Record, string, error)
	}{{"scan", s.FindAuditByScan}, {"index", s.FindAudit}} {
		b.Run("nothing/"+way.name, func(b *testing.B) {
			read := s.AuditKeysRead()
			start := time.Now()
			for b.Loop() {
				if recs, _, err := way.find(ctx, nothing); err != nil || len(recs) != 0 {
					b.Fatal(len(recs), err)
				}
			}
			ns := time.Since(start).Nanoseconds() / int64(b.N)
			b.ReportMetric(float64(s.AuditKeysRead()-read)/float64(b.N), "keys/op")
			if g := getNs.Load(); g > 0 {
				b.ReportMetric(float64(ns)/float64(g), "x-get")
			}
		})
		b.Run("get-while-4-query/"+way.name, func(b *testing.B) {
			qctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for qctx.Err() == nil {
						_, _, _ = way.find(qctx, nothing)
					}
				})
			}
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := get(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			stop()
			wg.Wait()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
