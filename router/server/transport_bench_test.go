package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
)

// BenchmarkPlaceTransport is the cost of mutual TLS on Place: the same
// store, the same workload, 64 concurrent callers, over loopback gRPC in
// plaintext (the development principal) and over mutual TLS (a tenant
// user authenticated by its certificate, its roles resolved from the
// tenant's policy on every call), in one run:
//
//	go test -run '^$' -bench PlaceTransport -benchtime 3000x ./router/server
//
// etcd here does not fsync, so the transport's share is as large as it
// gets; with fsync the ratio is closer to 1.
func BenchmarkPlaceTransport(b *testing.B) {
	e := startEnv(b, shared, false)
	t, err := e.store.GetTenant("aus-defence")
	if err != nil {
		b.Fatal(err)
	}
	bench := *t
	bench.Members = []router.TenantMember{{Name: "bench", Roles: []authz.Role{authz.RoleSubmitter}}}
	if err := e.store.PutTenant(context.Background(), &bench); err != nil {
		b.Fatal(err)
	}
	m := newMTLS(b, e)
	cert := clientCert(b, m.ca, "spiffe://"+trustDomain+"/tenant/aus-defence/user/bench")
	// Unclassified, anywhere: many regions qualify, so the commits do
	// not queue behind one region's and the transport shows.
	w := &pb.Workload{Name: "bench", Tenant: "aus-defence", Label: "UNCLASSIFIED", Scheme: "US", AllowedStorageCountries: []string{"*"},
		Resources: &pb.Resources{MilliCpu: 1}, Replicas: 1}
	var seq atomic.Int64
	run := func(b *testing.B, conn *grpc.ClientConn) {
		client := pb.NewPlacementServiceClient(conn)
		// One call first: connect (and, with TLS, handshake) outside the timing.
		if _, err := client.Place(context.Background(), &pb.PlaceRequest{RequestId: fmt.Sprintf("warm-%d", seq.Add(1)), Workload: w}); err != nil {
			b.Fatal(err)
		}
		const conc = 64
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		start := time.Now()
		for range conc {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					id := fmt.Sprintf("t-%d", seq.Add(1))
					if _, err := client.Place(context.Background(), &pb.PlaceRequest{RequestId: id, Workload: w}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "placements/s")
	}
	b.Run("plaintext", func(b *testing.B) { run(b, e.conn) })
	b.Run("mtls", func(b *testing.B) { run(b, m.dial(b, cert)) })
}
