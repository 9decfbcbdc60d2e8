package state_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/state"
)

// BenchmarkPlaceAuditIndex is Place with the reconciler leading (its
// chainer off, its passes an hour apart), its audit indexer off, on, and on with the lag sampled
// below (whose reads cost the member too), at conc=1 and 64, in one run:
//
//	go test -run '^$' -bench 'PlaceAuditIndex|EtcdPut$' -benchtime 3s ./router/state
//
// With the indexer sampled it also reports how far the index lags
// during the storm, sampled every 20ms (the age of the newest entry
// indexed: lag-p50-ms, lag-p99-ms, lag-max-ms), and the keys a tenant's
// filtered ListAudit that matches nothing reads, every 200ms
// (tail-keys: the keys of the tail from the watermark's floor and the
// entries not yet indexed, the index itself giving none). With it on
// or sampled, how long the index takes to cover the trail once the
// storm ends (catchup-ms).
func BenchmarkPlaceAuditIndex(b *testing.B) {
	m := benchEtcd(b)
	for _, conc := range benchConcurrency {
		for _, mode := range []string{"off", "on", "sampled"} {
			on := mode != "off"
			b.Run(fmt.Sprintf("indexer=%s/conc=%d", mode, conc), func(b *testing.B) {
				cli := etcdtest.Client(b, m.Endpoints()...)
				prefix := fmt.Sprintf("/bench/index-%d/", benchSeq.Add(1))
				ctx := context.Background()
				s, err := state.Open(ctx, cli, router.NewEngine(), state.WithPrefix(prefix))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				ps, rs := benchCatalogue()
				if ok, err := s.Seed(ctx, ps, rs, []router.Tenant{army()}); err != nil || !ok {
					b.Fatalf("Seed = %v, %v", ok, err)
				}
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() {
					defer close(done)
					_ = s.Reconcile(rctx, state.ReconcilerConfig{Interval: time.Hour, Audit: state.AuditChainConfig{Disabled: true}, AuditIndexDisabled: !on})
				}()
				defer func() { cancel(); <-done }()
				for !s.Leading() {
					time.Sleep(10 * time.Millisecond)
				}
				var lags []time.Duration
				var tailKeys, samples int64
				sctx, stopSampling := context.WithCancel(ctx)
				var sampling sync.WaitGroup
				if mode == "sampled" {
					sampling.Go(func() {
						t := time.NewTicker(20 * time.Millisecond)
						defer t.Stop()
						for n := 0; ; n++ {
							select {
							case <-sctx.Done():
								return
							case <-t.C:
							}
							st, err := s.AuditIndexState(sctx)
							if err != nil || st.Newest == "" {
								continue
							}
							if ns, err := strconv.ParseInt(st.Newest[:16], 16, 64); err == nil {
								lags = append(lags, time.Since(time.Unix(0, ns)))
							}
							if n%10 != 0 {
								continue
							}
							before := s.AuditKeysRead()
							if _, _, err := s.FindAudit(sctx, state.AuditFilter{Tenant: "us-army", Op: "nosuch"}); err == nil {
								tailKeys += s.AuditKeysRead() - before
								samples++
							}
						}
					})
				}
				w := secretWorkload(b, "bench")
				run(b, conc, "placements/s", func(i int64) error {
					_, err := s.Place(ctx, fmt.Sprintf("req-%d", i), w)
					return err
				})
				stopSampling()
				sampling.Wait()
				if !on {
					return
				}
				start := time.Now()
				for {
					st, err := s.AuditIndexState(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if st.Current {
						break
					}
					time.Sleep(time.Millisecond)
				}
				b.ReportMetric(float64(time.Since(start).Milliseconds()), "catchup-ms")
				if len(lags) > 0 {
					slices.Sort(lags)
					b.ReportMetric(float64(lags[len(lags)/2].Milliseconds()), "lag-p50-ms")
					b.ReportMetric(float64(lags[len(lags)*99/100].Milliseconds()), "lag-p99-ms")
					b.ReportMetric(float64(lags[len(lags)-1].Milliseconds()), "lag-max-ms")
				}
				if samples > 0 {
					b.ReportMetric(float64(tailKeys)/float64(samples), "tail-keys")
				}
			})
		}
	}
}
