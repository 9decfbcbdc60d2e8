package state_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// BenchmarkReroute measures the time to re-route every placement off a
// failed region: from the write that drains it to the last replica
// moved and its old copy retired (no agents, so each move is confirmed
// on the next pass), against placing the same placements, in the same
// run:
//
//	go test -run '^$' -bench Reroute -benchtime 5x ./router/state
func BenchmarkReroute(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("placements=%d", n), func(b *testing.B) {
			e := newEnv(b, benchEtcd(b))
			r1, r2 := secretRegion("aws", "s1", big), secretRegion("azure", "s2", big)
			r1.Cost = 0.5
			e.seed([]router.Provider{provider("aws"), provider("azure")}, []router.Region{r1, r2}, []router.Tenant{army()})
			t0 := time.Now()
			for i := range n {
				e.place(fmt.Sprintf("w%d", i), secretWorkload(b, fmt.Sprintf("w%d", i)))
			}
			place := time.Since(t0)
			reconcile(b, e.store, state.ReconcilerConfig{Name: "bench"})
			ctx := context.Background()
			from, to := r1, r2
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				start := time.Now()
				drained := from
				drained.Status = router.StatusDraining
				e.putRegion(drained)
				for {
					st, _ := e.store.GetRegion(to.Key())
					old, _ := e.store.GetRegion(from.Key())
					if st.Used.MilliCPU == int64(n)*unit.MilliCPU && old.Used.MilliCPU == 0 {
						break
					}
					time.Sleep(time.Millisecond)
				}
				total += time.Since(start)
				b.StopTimer()
				active := from
				active.Status = router.StatusActive
				if _, err := e.store.PutRegion(ctx, &active); err != nil {
					b.Fatal(err)
				}
				from, to = to, from
				b.StartTimer()
			}
			per := total / time.Duration(b.N)
			b.ReportMetric(float64(per.Milliseconds()), "ms/reroute-all")
			b.ReportMetric(float64(n)/per.Seconds(), "moves/s")
			b.ReportMetric(float64(n)/place.Seconds(), "places/s")
			b.ReportMetric(per.Seconds()/place.Seconds(), "reroute/place")
		})
	}
}
