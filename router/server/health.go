package server

import (
	"context"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Readier says whether the store can vouch for its state: nil while it
// can.
type Readier interface {
	Ready() error
}

// WatchHealth keeps the health service's overall status in step with the
// store's readiness until ctx ends.
func WatchHealth(ctx context.Context, hs *health.Server, store Readier, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_SERVING
		if store.Ready() != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		for _, svc := range []string{"", pb.PlacementService_ServiceDesc.ServiceName} {
			hs.SetServingStatus(svc, st)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
