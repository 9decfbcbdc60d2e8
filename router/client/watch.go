package client

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Watch resumption backoff bounds.
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 5 * time.Second
)

// WatchOption adjusts one Watch.
type WatchOption func(*watchCall)

type watchCall struct {
	interrupted func(err error, resumeIn time.Duration)
}

// OnInterrupt has f told each time the stream breaks and is about to be
// resumed, with the error and the wait before resuming.
func OnInterrupt(f func(err error, resumeIn time.Duration)) WatchOption {
	return func(w *watchCall) { w.interrupted = f }
}

// Watch streams the placement changes req selects to fn, one response
// (one etcd revision, whole) at a time, until ctx ends (it then returns
// nil), fn returns an error (returned), or the daemon ends the watch for
// good (OUT_OF_RANGE: the resume point was compacted away; bad input;
// denied). When the stream breaks otherwise — the daemon restarted, was
// unreachable, or found this client too slow — Watch resumes after the
// last response fn saw, so across reconnects no change is lost or seen
// twice. req is not modified.
func (c *Client) Watch(ctx context.Context, req *pb.WatchRequest, fn func(*pb.WatchResponse) error, opts ...WatchOption) error {
	call := watchCall{}
	for _, o := range opts {
		o(&call)
	}
	req = proto.Clone(req).(*pb.WatchRequest)
	backoff := watchBackoffMin
	for {
		from := req.GetResumeToken()
		err := c.watchOnce(ctx, req, fn)
		if ctx.Err() != nil {
			return nil // interrupted
		}
		var fnErr fnError
		if asFnError(err, &fnErr) {
			return fnErr.err
		}
		if !resumable(err) {
			return err
		}
		if req.GetResumeToken() != from {
			backoff = watchBackoffMin // it made progress
		}
		if call.interrupted != nil {
			call.interrupted(err, backoff)
		}
		if sleep(ctx, backoff) != nil {
			return nil
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// fnError carries the callback's error out of watchOnce.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func asFnError(err error, out *fnError) bool {
	fe, ok := err.(fnError)
	if ok {
		*out = fe
	}
	return ok
}

// watchOnce runs one Watch call, handing fn its responses and recording
// in req the resume token of the last one fn took.
func (c *Client) watchOnce(ctx context.Context, req *pb.WatchRequest, fn func(*pb.WatchResponse) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.placement.Watch(ctx, req)
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if err := fn(resp); err != nil {
			return fnError{err}
		}
		req.ResumeToken, req.AfterRevision = resp.GetResumeToken(), 0
	}
}

// resumable reports whether a broken watch should be resumed: the daemon
// was unreachable, stopping, or found the client too slow.
func resumable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Unknown, codes.DeadlineExceeded:
		return true
	}
	return false
}
