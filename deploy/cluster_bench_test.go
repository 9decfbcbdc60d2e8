package deploy_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// BenchmarkClusterPlace measures Place throughput end to end, over gRPC,
// at a client concurrency of 64, on real processes: one etcd member and
// one daemon, then three members and two daemons (requests spread over
// both), in one run. etcd fsyncs, as in production. The second reports
// its rate as a ratio of the first's.
//
//	go test -run '^$' -bench ClusterPlace -benchtime 2000x ./deploy/
//
// Every process shares this machine's cores with the others and with the
// clients, so the figures compare the two shapes; they are not the
// capacity of a cluster of separate machines.
func BenchmarkClusterPlace(b *testing.B) {
	const concurrency = 64
	var single float64 // placements/s of members=1,daemons=1
	for _, shape := range []struct{ members, daemons int }{{1, 1}, {3, 2}} {
		b.Run(fmt.Sprintf("members=%d,daemons=%d", shape.members, shape.daemons), func(b *testing.B) {
			c := startEtcd(b, shape.members, clusterOpts{fsync: true})
			ds := startDaemons(b, shape.daemons, c.endpoints(), "--catalog", faultCatalogue(b, 40, 1_000_000))
			rate, aborted := placeRate(b, ds, concurrency)
			b.ReportMetric(rate, "placements/s")
			b.ReportMetric(float64(aborted)/float64(b.N), "aborted/op")
			b.ReportMetric(0, "ns/op") // the rate is the measure; ns/op of the feeding loop says nothing
			if shape.members == 1 {
				single = rate
			} else if single > 0 {
				b.ReportMetric(rate/single, "x-single")
			}
		})
	}
}

// placeRate places b.N distinct workloads through conc clients spread
// over the daemons and returns placements per second, from the first
// request to the last answer, and how many calls were ABORTED (a
// decision that lost its bounded retries to concurrent writers) and
// retried, as the API asks.
func placeRate(b *testing.B, ds []*clusterDaemon, conc int) (float64, int64) {
	b.Helper()
	ids := make(chan int)
	var done, aborted atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := range ids {
				w := faultWorkload(i)
				w.Replicas = 1
				var err error
				for try := range 20 {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					_, err = ds[i%len(ds)].place.Place(ctx, &pb.PlaceRequest{RequestId: fmt.Sprintf("bench-%d", i), Workload: w})
					cancel()
					if status.Code(err) != codes.Aborted {
						break
					}
					aborted.Add(1)
					time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					continue
				}
				done.Add(1)
			}
		})
	}
	start := time.Now()
	i := 0
	for b.Loop() {
		ids <- i
		i++
	}
	close(ids)
	wg.Wait()
	elapsed := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatalf("place: %v", *err)
	}
	return float64(done.Load()) / elapsed.Seconds(), aborted.Load()
}
