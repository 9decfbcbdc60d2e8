package state_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// BenchmarkReconcilerAtRest measures the CPU of the process (the store,
// its cache and the etcd member it runs on) while nothing changes, with
// N live placements held: with no reconciler (the idle store), with the
// store's reconciler leading (once its first sweep is done), and with
// its safety-net sweep running all the time (SweepEvery 1ms: at most
// sweepRate placements a second, its worst case). Each iteration is one
// second of wall time; the metrics are percent of one core:
//
//	go test -run '^$' -bench ReconcilerAtRest -benchtime 5x ./router/state
func BenchmarkReconcilerAtRest(b *testing.B) {
	for _, n := range []int{20000, 100000} {
		b.Run(fmt.Sprintf("placements=%d", n), func(b *testing.B) {
			e := newEnv(b, nil)
			e.seedPlacements(n)
			time.Sleep(3 * time.Second) // the cache settles
			idle := cpuOver(b, time.Duration(b.N)*time.Second)
			stop := reconcile(b, e.store, state.ReconcilerConfig{Name: "rest"})
			eventually(b, 10*time.Second, func() (bool, string) { return e.store.Leading(), "not leading" })
			time.Sleep(10 * time.Second) // the first sweep of the term
			b.ResetTimer()
			leading := cpuOver(b, time.Duration(b.N)*time.Second)
			b.StopTimer()
			stop()
			reconcile(b, e.store, state.ReconcilerConfig{Name: "sweeping", SweepEvery: time.Millisecond})
			eventually(b, 10*time.Second, func() (bool, string) { return e.store.Leading(), "not leading" })
			time.Sleep(3 * time.Second)
			sweeping := cpuOver(b, time.Duration(b.N)*time.Second)
			b.ReportMetric(idle, "%core-idle")
			b.ReportMetric(leading, "%core-leading")
			b.ReportMetric(leading-idle, "%core-reconciler")
			b.ReportMetric(sweeping-idle, "%core-sweeping")
		})
	}
}

// cpuOver returns the process's CPU (user and system) over d of wall
// time, in percent of one core.
func cpuOver(tb testing.TB, d time.Duration) float64 {
	tb.Helper()
	runtime.GC() // what came before leaves no garbage to this window
	t0, w0 := processCPU(tb), time.Now()
	time.Sleep(d)
	t1, w1 := processCPU(tb), time.Now()
	return 100 * float64(t1-t0) / float64(w1.Sub(w0))
}

func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// seedPlacements writes n live placements of secretWorkload straight to
// etcd, split between two SECRET regions, with their usage, and waits
// for the store's cache to hold them.
func (e *env) seedPlacements(n int) {
	e.tb.Helper()
	e.seed([]router.Provider{provider("aws"), provider("azure")},
		[]router.Region{secretRegion("aws", "s1", big), secretRegion("azure", "s2", big)}, []router.Tenant{army()})
	e.writePlacements(map[string]int{"us-army aws/s1": n / 2, "us-army azure/s2": n - n/2})
}

// BenchmarkDrain measures the time for every placement in a region to
// leave it once it is drained, with no agents (a move is confirmed at
// once, and its old copy retired on the next look): from the write that
// drains it to its usage at zero and every placement in the other
// region with no retiring copy. Revisions counts the etcd revisions it
// took (a transaction each):
//
//	go test -run '^$' -bench Drain -benchtime 1x ./router/state
func BenchmarkDrain(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("placements=%d", n), func(b *testing.B) {
			e := newEnv(b, benchEtcd(b))
			from, to := secretRegion("aws", "s1", big), secretRegion("azure", "s2", big)
			from.Cost = 0.5
			e.seed([]router.Provider{provider("aws"), provider("azure")}, []router.Region{from, to}, []router.Tenant{army()})
			e.writePlacements(map[string]int{"us-army aws/s1": n})
			reconcile(b, e.store, state.ReconcilerConfig{Name: "bench", Audit: state.AuditChainConfig{Disabled: true}})
			eventually(b, time.Minute, func() (bool, string) { return e.store.Leading(), "not leading" })
			time.Sleep(10 * time.Second) // the first sweep of the term
			var total time.Duration
			var revs int64
			b.ResetTimer()
			for range b.N {
				rev0 := e.store.Revision()
				start := time.Now()
				drained := from
				drained.Status = router.StatusDraining
				e.putRegion(drained)
				eventually(b, 5*time.Minute, func() (bool, string) {
					old, _ := e.store.GetRegion(from.Key())
					st, _ := e.store.GetRegion(to.Key())
					return old.Used.MilliCPU == 0 && st.Used.MilliCPU == int64(n)*unit.MilliCPU,
						fmt.Sprintf("%s used %v, %s used %v", from.Key(), old.Used, to.Key(), st.Used)
				})
				total += time.Since(start)
				revs += e.store.Revision() - rev0
				b.StopTimer()
				e.checkUsage(from.Key(), to.Key())
				active := from
				active.Status = router.StatusActive
				e.putRegion(active)
				from, to = to, from
				b.StartTimer()
			}
			per := total / time.Duration(b.N)
			b.ReportMetric(per.Seconds(), "s/drain")
			b.ReportMetric(float64(n)/per.Seconds(), "moves/s")
			b.ReportMetric(float64(revs)/float64(b.N), "revisions/drain")
		})
	}
}
