package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// The shapes of the Watch filters: a tenant id, a workload name, a
// region key (see router/validate.go).
var (
	tenantPattern    = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	workloadPattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	regionKeyPattern = regexp.MustCompile(`^[a-z0-9-]{1,63}/[a-z0-9-]{1,63}$`)
)

// errDraining ends the Watch streams of a daemon that is stopping.
var errDraining = errors.New("daemon stopping")

// Watch streams placement changes. A client resumes after a broken
// stream (UNAVAILABLE, RESOURCE_EXHAUSTED) with after_revision set to
// the last revision it received; OUT_OF_RANGE means list again.
func (s *Server) Watch(req *pb.WatchRequest, stream grpc.ServerStreamingServer[pb.WatchResponse]) error {
	ctx := stream.Context()
	f := state.WatchFilter{Tenant: req.GetTenant(), Workload: req.GetWorkload(), Region: req.GetRegion()}
	var v router.Violations
	if f.Tenant != "" && !tenantPattern.MatchString(f.Tenant) {
		v.Add("tenant", "want a tenant id of lowercase letters, digits and '-', got %q", clip(f.Tenant, maxDescriptionBytes/2))
	}
	if f.Workload != "" && !workloadPattern.MatchString(f.Workload) {
		v.Add("workload", "want a workload name of 1-128 letters, digits, '.', '_' and '-', got %q", clip(f.Workload, maxDescriptionBytes/2))
	}
	if f.Region != "" && !regionKeyPattern.MatchString(f.Region) {
		v.Add("region", "want a region key provider/id, got %q", clip(f.Region, maxDescriptionBytes/2))
	}
	if n := req.GetAfterRevision(); n < 0 {
		v.Add("after_revision", "must not be negative, got %d", n)
	}
	if err := v.Err(); err != nil {
		return s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return err
	}
	if f.Tenant, err = sc.tenantFilter(f.Tenant); err != nil {
		return err
	}
	if err := s.fresh(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(s.draining, func() { cancel(errDraining) })()

	feed, err := s.store.WatchPlacements(wctx, f, req.GetAfterRevision())
	if err != nil {
		return s.fail(ctx, s.watchEnd(wctx, err, req.GetAfterRevision()))
	}
	defer feed.Close()
	last := req.GetAfterRevision()
	for {
		b, err := feed.Next(wctx)
		if err != nil {
			return s.fail(ctx, s.watchEnd(wctx, err, last))
		}
		if err := stream.Send(watchResponse(b)); err != nil {
			return err
		}
		last = b.Revision
	}
}

// StopWatches ends every Watch stream and agent session, now and later,
// with UNAVAILABLE, so that a graceful stop need not wait for them; each
// watcher resumes from its last revision, and each agent reconnects, at
// another daemon or after the restart.
func (s *Server) StopWatches() { s.stopWatches() }

// watchEnd says why a watch ended: the daemon stopping is UNAVAILABLE.
func (s *Server) watchEnd(ctx context.Context, err error, last int64) error {
	if errors.Is(context.Cause(ctx), errDraining) {
		return fmt.Errorf("%w: daemon stopping: resume after revision %d", router.ErrUnavailable, last)
	}
	return err
}

func watchResponse(b state.WatchBatch) *pb.WatchResponse {
	out := &pb.WatchResponse{Revision: b.Revision}
	for _, e := range b.Events {
		out.Events = append(out.Events, &pb.PlacementEvent{
			Type:      eventTypeToProto(e.Type),
			Placement: PlacementToProto(e.Placement),
		})
	}
	return out
}

func eventTypeToProto(t state.EventType) pb.PlacementEventType {
	switch t {
	case state.EventPlaced:
		return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_PLACED
	case state.EventUpdated:
		return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_UPDATED
	case state.EventReleased:
		return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_RELEASED
	case state.EventDeleted:
		return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_DELETED
	}
	return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_UNSPECIFIED
}

func recoverStreamInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ss.Context(), "panic in handler", "method", info.FullMethod, "panic", r)
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(srv, ss)
	}
}
