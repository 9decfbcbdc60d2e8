package state_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/state"
)

// BenchmarkPlaceAuditChain is Place at conc=64 with the reconciler
// leading, its audit chainer off and then on, in one run:
//
//	go test -run '^$' -bench PlaceAuditChain -benchtime 5s ./router/state
//
// The ratio of the two placements/s is the cost of chaining.
func BenchmarkPlaceAuditChain(b *testing.B) {
	m := benchEtcd(b)
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, chain := range []bool{false, true} {
		b.Run(fmt.Sprintf("chainer=%v/conc=64", chain), func(b *testing.B) {
			cli := etcdtest.Client(b, m.Endpoints()...)
			prefix := fmt.Sprintf("/bench/chain-%d/", benchSeq.Add(1))
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
				_ = s.Reconcile(rctx, state.ReconcilerConfig{Audit: state.AuditChainConfig{Disabled: !chain, Key: key}})
			}()
			defer func() { cancel(); <-done }()
			for !s.Leading() {
				time.Sleep(10 * time.Millisecond)
			}
			w := secretWorkload(b, "bench")
			run(b, 64, "placements/s", func(i int64) error {
				_, err := s.Place(ctx, fmt.Sprintf("req-%d", i), w)
				return err
			})
			if chain {
				// How far the chain lags when the storm ends.
				start := time.Now()
				for {
					rep, err := s.VerifyAudit(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					if rep.Unchained == 0 {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				b.ReportMetric(time.Since(start).Seconds(), "catchup-s")
			}
		})
	}
}
