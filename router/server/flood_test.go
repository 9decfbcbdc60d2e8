package server_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/server"
)

// getLatencies calls Get as caller for d and returns the sorted latencies.
func getLatencies(t *testing.T, e *env, caller, id string, d time.Duration) []time.Duration {
	t.Helper()
	var ls []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		start := time.Now()
		if _, err := e.place.Get(callAs(t, caller), &pb.GetRequest{Id: id}); err != nil {
			t.Fatalf("Get as %s: %v", caller, err)
		}
		ls = append(ls, time.Since(start))
		time.Sleep(2 * time.Millisecond)
	}
	slices.Sort(ls)
	return ls
}

func p99(ls []time.Duration) time.Duration { return ls[len(ls)*99/100] }

// One tenant's user flooding Plan at concurrency 8, in a loop that
// ignores RetryInfo: with the limits it gets its rate and no more (its
// calls beyond the rate wait for their tokens: IdentityLimits.MaxWait),
// and another tenant's Gets all succeed. The test logs that tenant's Get
// p99, idle and under the flood, with and without the limits; it does
// not hold them to a bound, which a shared test machine's scheduling
// would make flaky.
func TestPlanFloodLeavesOthersServed(t *testing.T) {
	if testing.Short() {
		t.Skip("a timed flood")
	}
	for _, tt := range []struct {
		name   string
		limits server.IdentityLimits
	}{
		{"unlimited", server.IdentityLimits{}},
		{"default limits", server.DefaultIdentityLimits},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newLimitedEnv(t, tt.limits)
			p, err := e.place.Place(as(t, asOtherSub), &pb.PlaceRequest{RequestId: "victim", Workload: aukusFor("us-ic")})
			if err != nil {
				t.Fatal(err)
			}
			id := p.GetPlacement().GetId()
			idle := getLatencies(t, e, asOtherSub, id, 2*time.Second)

			ctx, cancel := context.WithCancel(context.Background())
			var served, refused atomic.Int64
			var wg sync.WaitGroup
			flood := &pb.PlanRequest{Workload: &pb.Workload{Name: "flood", Tenant: "ke-moh", Label: "UNCLASSIFIED",
				AllowedStorageCountries: []string{"*"}, Resources: &pb.Resources{MilliCpu: 800000}, Replicas: 16}}
			for range 8 {
				wg.Go(func() {
					c := as(t, asSubmitter)
					for ctx.Err() == nil {
						if _, err := e.place.Plan(c, flood); err != nil {
							refused.Add(1)
						} else {
							served.Add(1)
						}
					}
				})
			}
			start := time.Now()
			time.Sleep(200 * time.Millisecond)
			busy := getLatencies(t, e, asOtherSub, id, 3*time.Second)
			cancel()
			wg.Wait()
			elapsed := time.Since(start)
			ratio := float64(p99(busy)) / float64(p99(idle))
			t.Logf("Get p99 idle %v, under the flood %v (%.1f×); Plans served %d, refused %d",
				p99(idle), p99(busy), ratio, served.Load(), refused.Load())
			if r := tt.limits.Plan; r.PerSecond > 0 {
				if most := int64(r.Burst) + int64(r.PerSecond*elapsed.Seconds()) + 1; served.Load() > most {
					t.Errorf("the flood had %d Plans served in %v; want at most %d (%v)", served.Load(), elapsed, most, r)
				}
			}
		})
	}
}

// aukusFor is aukus() for tenant.
func aukusFor(tenant string) *pb.Workload {
	w := aukus()
	w.Tenant = tenant
	return w
}
