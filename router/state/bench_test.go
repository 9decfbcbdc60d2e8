package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdlocal"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/state"
)

// The benchmarks compare Place with the plain etcd write it is built on,
// on one etcd member (fsync on, as in production; set
// CLASSROUTE_BENCH_NOFSYNC=1 to take the disk out), in one run:
//
//	go test -run '^$' -bench . -benchtime 3s ./router/state
//
// Place at conc=N is N goroutines placing distinct request ids through
// one store into a catalogue of 200 regions, 150 of them eligible with
// capacity to spare, so nothing is refused. EtcdPut at conc=N is N
// goroutines putting a value the size of a placement record.

var benchConcurrency = []int{1, 64}

var (
	benchOnce   sync.Once
	benchMember *etcdlocal.Member
	benchErr    error
	benchStop   func()
	benchSeq    atomic.Int64 // makes ids and prefixes unique across b.N rounds
)

// benchEtcd is the member every benchmark of the run shares; TestMain
// stops it.
func benchEtcd(b *testing.B) *etcdlocal.Member {
	b.Helper()
	benchOnce.Do(func() {
		benchMember, benchStop, benchErr = etcdtest.Shared("state-bench-etcd-",
			etcdtest.WithFsync(os.Getenv("CLASSROUTE_BENCH_NOFSYNC") != "1"))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchMember
}

func stopBenchEtcd() {
	if benchStop != nil {
		benchStop()
	}
}

// benchCatalogue is 4 providers and 200 regions: 150 SECRET regions the
// benchmark workload may use, at different costs and places, and 50
// commercial ones it may not.
func benchCatalogue() ([]router.Provider, []router.Region) {
	provs := []string{"aws", "azure", "google", "oracle"}
	var ps []router.Provider
	for _, p := range provs {
		ps = append(ps, provider(p))
	}
	var rs []router.Region
	for i := range 200 {
		p := provs[i%len(provs)]
		var r router.Region
		if i%4 == 3 {
			r = commercialRegion(p, fmt.Sprintf("c-%03d", i))
		} else {
			r = secretRegion(p, fmt.Sprintf("s-%03d", i), big)
			r.Cost = 1 + float64(i%17)/10
		}
		r.Location = router.Location{Lat: 25 + float64(i%20), Lon: -120 + float64(i%50)}
		rs = append(rs, r)
	}
	return ps, rs
}

// run runs op b.N times over conc goroutines and reports the rate as unit.
func run(b *testing.B, conc int, unit string, op func(i int64) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) || failed.Load() != nil {
					return
				}
				if err := op(i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit)
	// The process's CPU (etcd's included: the member runs in it) per
	// operation: steadier than the rate on a shared machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkPlace(b *testing.B) {
	benchPlace(b, "place", func(b *testing.B, _ *state.Store) *router.Workload {
		w := secretWorkload(b, "bench")
		if w.Label.Level != label.Secret {
			b.Fatal("workload label not parsed")
		}
		return w
	})
}

// BenchmarkPlaceDependencies is BenchmarkPlace for a workload that
// writes to a placement of its tenant's: each decision resolves the
// target and checks the flow from every region, and each commit guards
// the target's revision. Compare with BenchmarkPlace in the same run.
func BenchmarkPlaceDependencies(b *testing.B) {
	benchPlace(b, "place-deps", func(b *testing.B, s *state.Store) *router.Workload {
		if _, err := s.Place(context.Background(), "store", secretWorkload(b, "store")); err != nil {
			b.Fatal(err)
		}
		w := secretWorkload(b, "bench")
		w.Dependencies = []flow.Dependency{{Target: flow.Placement("us-army", "store"), Direction: flow.Write}}
		return w
	})
}

// benchPlace runs Place at each concurrency on a store of its own under
// a fresh prefix, seeded with the bench catalogue, for the workload
// workload returns (given the store, before the clock starts).
func benchPlace(b *testing.B, name string, workload func(*testing.B, *state.Store) *router.Workload) {
	m := benchEtcd(b)
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			cli := etcdtest.Client(b, m.Endpoints()...)
			prefix := fmt.Sprintf("/bench/%s-%d/", name, benchSeq.Add(1))
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
			w := workload(b, s)
			run(b, conc, "placements/s", func(i int64) error {
				_, err := s.Place(ctx, fmt.Sprintf("req-%d", i), w)
				return err
			})
		})
	}
}

func BenchmarkEtcdPut(b *testing.B) {
	m := benchEtcd(b)
	val, err := json.Marshal(router.Placement{
		ID: "req-000000", Tenant: "us-army", Workload: *secretWorkload(b, "bench"),
		Regions: []string{"aws/s-000"}, Scores: []float64{0.75}, DecidedAt: 1 << 20, CreatedAt: time.Now(),
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			cli := etcdtest.Client(b, m.Endpoints()...)
			prefix := fmt.Sprintf("/bench/put-%d/", benchSeq.Add(1))
			ctx := context.Background()
			run(b, conc, "puts/s", func(i int64) error {
				_, err := cli.Put(ctx, fmt.Sprintf("%s%d", prefix, i), string(val))
				return err
			})
			b.ReportMetric(float64(len(val)), "value-bytes")
			_, _ = cli.Delete(ctx, prefix, clientv3.WithPrefix())
		})
	}
}

// BenchmarkEtcdTxn is the shape of Place's commit without the decision
// or the cache: one transaction comparing six revisions and writing a
// placement, a usage record and an audit record, on keys no other
// operation touches. The gap between it and EtcdPut is etcd's; the gap
// between Place and it is the store's.
func BenchmarkEtcdTxn(b *testing.B) {
	m := benchEtcd(b)
	val, err := json.Marshal(router.Placement{
		ID: "req-000000", Tenant: "us-army", Workload: *secretWorkload(b, "bench"),
		Regions: []string{"aws/s-000"}, Scores: []float64{0.75}, DecidedAt: 1 << 20, CreatedAt: time.Now(),
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			cli := etcdtest.Client(b, m.Endpoints()...)
			prefix := fmt.Sprintf("/bench/txn-%d/", benchSeq.Add(1))
			ctx := context.Background()
			run(b, conc, "txns/s", func(i int64) error {
				k := fmt.Sprintf("%s%d/", prefix, i)
				resp, err := cli.Txn(ctx).If(
					clientv3.Compare(clientv3.CreateRevision(k+"p"), "=", 0),
					clientv3.Compare(clientv3.ModRevision(k+"t"), "=", 0),
					clientv3.Compare(clientv3.ModRevision(k+"r"), "=", 0),
					clientv3.Compare(clientv3.ModRevision(k+"u"), "=", 0),
				).Then(
					clientv3.OpPut(k+"p", string(val)),
					clientv3.OpPut(k+"u", `{"used":{"milli_cpu":1000,"memory_mib":1024,"gpu":0},"placements":1}`),
					clientv3.OpPut(k+"a", string(val[:200])),
				).Else(clientv3.OpGet(k + "p")).Commit()
				if err == nil && !resp.Succeeded {
					err = fmt.Errorf("txn failed")
				}
				return err
			})
			_, _ = cli.Delete(ctx, prefix, clientv3.WithPrefix())
		})
	}
}
