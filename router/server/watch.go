package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/feed"
)

// errDraining ends the Watch streams of a daemon that is stopping.
var errDraining = errors.New("daemon stopping")

// DefaultWatchProgressEvery is how often a tenant user's Watch is sent a
// progress notice (see Watch).
const DefaultWatchProgressEvery = 10 * time.Second

// WithWatchProgressEvery sets how often a tenant user's Watch is sent a
// progress notice (default DefaultWatchProgressEvery).
func WithWatchProgressEvery(d time.Duration) Option {
	return func(s *Server) { s.watchProgressEvery = d }
}

// Watch streams placement changes. A client resumes after a broken
// stream (UNAVAILABLE, RESOURCE_EXHAUSTED) with the last resume_token
// (or revision) it received; OUT_OF_RANGE means list again.
//
// A tenant's user sees no etcd revision and nothing of when others
// write: its responses carry resume tokens only, its own tenant's
// changes come as they happen, and it gets a progress notice on a fixed
// period (WithWatchProgressEvery) whether or not anything was written
// elsewhere, where the store's feed sends one only when etcd's revision
// has moved. Its errors say what to do, never at which revision.
func (s *placementService) Watch(req *pb.WatchRequest, stream grpc.ServerStreamingServer[pb.WatchResponse]) error {
	ctx := stream.Context()
	f := feed.Filter{Tenant: req.GetTenant(), Workload: req.GetWorkload(), Region: req.GetRegion()}
	var v router.Violations
	if f.Tenant != "" && !router.ValidID(f.Tenant) {
		v.Add("tenant", "want a tenant id of lowercase letters, digits and '-', got %q", clip(f.Tenant, maxDescriptionBytes/2))
	}
	if f.Workload != "" && !router.ValidWorkloadName(f.Workload) {
		v.Add("workload", "want a workload name of 1-128 letters, digits, '.', '_' and '-', got %q", clip(f.Workload, maxDescriptionBytes/2))
	}
	if f.Region != "" && !router.ValidRegionKey(f.Region) {
		v.Add("region", "want a region key provider/id, got %q", clip(f.Region, maxDescriptionBytes/2))
	}
	if n := req.GetAfterRevision(); n < 0 {
		v.Add("after_revision", "must not be negative, got %d", n)
	}
	if req.GetAfterRevision() != 0 && req.GetResumeToken() != "" {
		v.Add("resume_token", "set at most one of after_revision and resume_token")
	}
	if err := v.Err(); err != nil {
		return s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return err
	}
	if sc.confined() && req.GetAfterRevision() != 0 {
		return s.fail(ctx, router.Violations{{Field: "after_revision", Description: "a tenant's user resumes with resume_token"}}.Err())
	}
	if f.Tenant, err = sc.tenantFilter(f.Tenant); err != nil {
		return err
	}
	if err := s.fresh(ctx); err != nil {
		return err
	}
	after := req.GetAfterRevision()
	if tok := req.GetResumeToken(); tok != "" {
		if after, err = s.resumeRevision(ctx, "resume_token", sc.tenantID, tok); err != nil {
			return s.fail(ctx, err)
		}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(s.draining, func() { cancel(errDraining) })()

	fd, err := s.store.WatchPlacements(wctx, f, after)
	if err != nil {
		return s.fail(ctx, s.watchEnd(wctx, sc, err, after))
	}
	defer fd.Close()
	if sc.confined() {
		return s.watchConfined(wctx, sc, fd, stream)
	}
	last := after
	for {
		b, err := fd.Next(wctx)
		if err != nil {
			return s.fail(ctx, s.watchEnd(wctx, sc, err, last))
		}
		out, err := s.watchResponse(ctx, sc, b)
		if err != nil {
			return s.fail(ctx, err)
		}
		if err := stream.Send(out); err != nil {
			return err
		}
		last = b.Revision
	}
}

// watchConfined serves a tenant user's Watch: the feed's batches with
// events as they come, and, instead of its progress notices (sent when
// etcd's revision moves, that is when anyone writes), a notice at the
// latest revision seen on a fixed period, and one at once.
func (s *placementService) watchConfined(ctx context.Context, sc scope, fd *feed.Feed, stream grpc.ServerStreamingServer[pb.WatchResponse]) error {
	type next struct {
		b   feed.Batch
		err error
	}
	// One goroutine reads the feed; the stream is written here only.
	batches := make(chan next)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			b, err := fd.Next(ctx)
			select {
			case batches <- next{b, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var last int64
	first := true
	tick := time.NewTicker(s.watchProgressEvery)
	defer tick.Stop()
	for {
		var send feed.Batch
		select {
		case n := <-batches:
			if n.err != nil {
				return s.fail(stream.Context(), s.watchEnd(ctx, sc, n.err, last))
			}
			last = max(last, n.b.Revision)
			if len(n.b.Events) == 0 && !first {
				continue // the notice on the period says it
			}
			send = n.b
			first = false
		case <-tick.C:
			if first {
				continue // the first notice has not come from the feed yet
			}
			send = feed.Batch{Revision: last}
		}
		out, err := s.watchResponse(ctx, sc, send)
		if err != nil {
			return s.fail(stream.Context(), err)
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// watchEnd says why a watch ended: the daemon stopping is UNAVAILABLE.
// A confined caller is told what to do without a revision.
func (s *placementService) watchEnd(ctx context.Context, sc scope, err error, last int64) error {
	draining := errors.Is(context.Cause(ctx), errDraining)
	if !sc.confined() {
		if draining {
			return fmt.Errorf("%w: daemon stopping: resume after revision %d", router.ErrUnavailable, last)
		}
		return err
	}
	switch {
	case draining:
		return fmt.Errorf("%w: daemon stopping: resume with the last resume_token received", router.ErrUnavailable)
	case errors.Is(err, router.ErrRevisionOutOfRange):
		return fmt.Errorf("%w: the point to resume from is no longer kept: list again, then watch with the list's resume_token", router.ErrRevisionOutOfRange)
	case errors.Is(err, router.ErrWatcherTooSlow):
		return fmt.Errorf("%w: changes waited too long for the client: resume with the last resume_token received", router.ErrWatcherTooSlow)
	case errors.Is(err, router.ErrUnavailable):
		return fmt.Errorf("%w: the watch was cut: resume with the last resume_token received", router.ErrUnavailable)
	}
	return err
}

func (s *placementService) watchResponse(ctx context.Context, sc scope, b feed.Batch) (*pb.WatchResponse, error) {
	token, err := s.resumeToken(ctx, sc.tenantID, b.Revision)
	if err != nil {
		return nil, err
	}
	out := &pb.WatchResponse{Revision: sc.revision(b.Revision), ResumeToken: token}
	for _, e := range b.Events {
		out.Events = append(out.Events, &pb.PlacementEvent{
			Type:      convert.EventTypeToProto(e.Type),
			Placement: sc.placement(e.Placement),
		})
	}
	return out, nil
}
