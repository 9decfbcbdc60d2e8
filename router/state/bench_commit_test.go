package state_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/state"
)

// Group commit: the benchmarks of placements that crowd onto few
// regions, beside BenchmarkPlace (one shape spread over 150 regions) and
// BenchmarkEtcdPut, in the same run:
//
//	go test -run '^$' -bench 'Place|EtcdPut' -benchtime 3s ./router/state
//
// PlaceHot: every placement can go to one region only (as a Kenyan
// ministry's all go to Konza): the region's usage record is written by
// every one of them. PlaceMix: five shapes in turn, one of them the hot
// one, one of two replicas, one limited to four regions, one unclassified.

// hotCapability is offered by one region of the bench catalogue only.
const hotCapability = "konza"

// benchHotCatalogue is benchCatalogue with s-000 the only region offering
// hotCapability, and s-001 to s-004 the only ones offering "gpu".
func benchHotCatalogue() ([]router.Provider, []router.Region) {
	ps, rs := benchCatalogue()
	for i := range rs {
		switch {
		case rs[i].ID == "s-000":
			rs[i].Capabilities = []string{hotCapability}
		case rs[i].ID >= "s-001" && rs[i].ID <= "s-006":
			rs[i].Capabilities = []string{"gpu"}
		}
	}
	return ps, rs
}

// benchShapes are the workloads of PlaceMix, in turn.
func benchShapes(b *testing.B) []*router.Workload {
	hot := secretWorkload(b, "hot")
	hot.Capabilities = []string{hotCapability}
	two := secretWorkload(b, "two")
	two.Replicas = 2
	gpu := secretWorkload(b, "gpu")
	gpu.Capabilities = []string{"gpu"}
	unclass := secretWorkload(b, "unclassified")
	unclass.Banner = "UNCLASSIFIED"
	unclass.AllowedCountries = []string{"*"}
	for _, w := range []*router.Workload{hot, two, gpu, unclass} {
		if err := router.ValidateWorkload(w, "US"); err != nil {
			b.Fatal(err)
		}
	}
	return []*router.Workload{secretWorkload(b, "secret"), hot, two, gpu, unclass}
}

// benchPlaceShapes places shapes in turn at each concurrency.
func benchPlaceShapes(b *testing.B, name string, shapes func(b *testing.B) []*router.Workload) {
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
			ps, rs := benchHotCatalogue()
			if ok, err := s.Seed(ctx, ps, rs, []router.Tenant{army()}); err != nil || !ok {
				b.Fatalf("Seed = %v, %v", ok, err)
			}
			ws := shapes(b)
			rev := s.Revision()
			run(b, conc, "placements/s", func(i int64) error {
				_, err := s.Place(ctx, fmt.Sprintf("req-%d", i), ws[int(i)%len(ws)])
				return err
			})
			// Each commit is one etcd revision: how many placements
			// share one.
			b.ReportMetric(float64(b.N)/float64(max(s.Revision()-rev, 1)), "placements/commit")
		})
	}
}

func BenchmarkPlaceHot(b *testing.B) {
	benchPlaceShapes(b, "hot", func(b *testing.B) []*router.Workload { return benchShapes(b)[1:2] })
}

func BenchmarkPlaceMix(b *testing.B) {
	benchPlaceShapes(b, "mix", benchShapes)
}
