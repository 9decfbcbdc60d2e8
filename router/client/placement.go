package client

import (
	"context"
	"iter"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// PlaceOption adjusts one Place.
type PlaceOption func(*placeCall)

type placeCall struct{ requestID string }

// WithRequestID places under id instead of a fresh one: to retry a Place
// whose outcome is unknown, or to make a request id known before the
// call (NewRequestID).
func WithRequestID(id string) PlaceOption {
	return func(p *placeCall) { p.requestID = id }
}

// Placed is a committed placement and how it was reached.
type Placed struct {
	// RequestID is the id the placement was made under: its id.
	RequestID string
	Placement *pb.Placement
	// Attempts is how many tries it took.
	Attempts int
}

// Place decides and commits a placement of w. Every try carries one
// request id (WithRequestID's, or a fresh one), so a try whose outcome is
// unknown is retried without placing twice: UNAVAILABLE, ABORTED and a
// try's own deadline are retried with bounded, jittered waits (the
// client's Retry). A refusal (FAILED_PRECONDITION with the reasons),
// bad input or a denial is returned at once. On failure the error is a
// *PlaceError carrying the request id.
func (c *Client) Place(ctx context.Context, w *pb.Workload, opts ...PlaceOption) (*Placed, error) {
	call := placeCall{}
	for _, o := range opts {
		o(&call)
	}
	if call.requestID == "" {
		call.requestID = NewRequestID()
	}
	req := &pb.PlaceRequest{RequestId: call.requestID, Workload: w}
	var resp *pb.PlaceResponse
	unknown := false
	n, err := c.retry.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.placement.Place(ctx, req)
		return err
	}, func(err error) { unknown = unknown || cutShort(err) })
	if err != nil {
		return nil, &PlaceError{RequestID: call.requestID, Attempts: n, Err: err, cutShort: unknown}
	}
	return &Placed{RequestID: call.requestID, Placement: resp.GetPlacement(), Attempts: n}, nil
}

// Plan decides without committing: every region's verdict. A refused
// workload is not an error: the response's Refusal says why. Retried as
// the reads are.
func (c *Client) Plan(ctx context.Context, w *pb.Workload) (*pb.PlanResponse, error) {
	var resp *pb.PlanResponse
	_, err := c.retry.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.placement.Plan(ctx, &pb.PlanRequest{Workload: w})
		return err
	})
	return resp, err
}

// Get returns the placement with id (its request id). tenant names the
// tenant whose id it is; a tenant's user may leave it empty.
func (c *Client) Get(ctx context.Context, id, tenant string) (*pb.Placement, error) {
	var resp *pb.GetResponse
	_, err := c.retry.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.placement.Get(ctx, &pb.GetRequest{Id: id, Tenant: tenant})
		return err
	})
	return resp.GetPlacement(), err
}

// Release releases a placement's capacity. Releasing twice is harmless
// (the second answers with the released placement), so it is retried.
func (c *Client) Release(ctx context.Context, id, tenant string) (*pb.Placement, error) {
	var resp *pb.ReleaseResponse
	_, err := c.retry.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.placement.Release(ctx, &pb.ReleaseRequest{Id: id, Tenant: tenant})
		return err
	})
	return resp.GetPlacement(), err
}

// List yields the placements req selects, fetching page after page
// (req.PageSize each; the daemon's default when 0) until the last, or
// until the loop stops. A failed page is yielded as the error, after
// which the sequence ends. req is not modified.
func (c *Client) List(ctx context.Context, req *pb.ListRequest) iter.Seq2[*pb.Placement, error] {
	return func(yield func(*pb.Placement, error) bool) {
		page := &pb.ListRequest{Tenant: req.GetTenant(), Region: req.GetRegion(), State: req.GetState(),
			PageSize: req.GetPageSize(), PageToken: req.GetPageToken()}
		for {
			var resp *pb.ListResponse
			_, err := c.retry.do(ctx, func(ctx context.Context) error {
				var err error
				resp, err = c.placement.List(ctx, page)
				return err
			})
			if err != nil {
				yield(nil, err)
				return
			}
			for _, p := range resp.GetPlacements() {
				if !yield(p, nil) {
					return
				}
			}
			if resp.GetNextPageToken() == "" {
				return
			}
			page.PageToken = resp.GetNextPageToken()
		}
	}
}

// ListPage fetches one page: for callers that keep the page token
// themselves (a paged UI, classroutectl --page-token).
func (c *Client) ListPage(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	var resp *pb.ListResponse
	_, err := c.retry.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.placement.List(ctx, req)
		return err
	})
	return resp, err
}
