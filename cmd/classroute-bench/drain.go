package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// DrainResult is the time to move every placement off a drained region,
// with no agents (so a move needs no acknowledgement).
type DrainResult struct {
	Region string `json:"region"`
	// Placements had a replica (or a retiring copy) in the region when
	// it was drained.
	Placements int `json:"placements"`
	// Moved left it and are placed elsewhere; Stranded could not leave
	// (no other region qualifies for them); Left are neither, when the
	// wait timed out.
	Moved    int `json:"moved"`
	Stranded int `json:"stranded"`
	Left     int `json:"left"`
	// Seconds from the PutRegion that drained it to its usage at 0 (or,
	// when some are stranded, to the moment nothing more could move).
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"moves_per_second"`
	// Usage0 says the region's usage reached 0.
	Usage0   bool `json:"usage_zero"`
	TimedOut bool `json:"timed_out"`
	// Unavailable counts the polls the daemon refused while its cache
	// caught up with etcd.
	Unavailable int `json:"unavailable_polls,omitempty"`
}

type ref struct {
	tenant, id string
	state      pb.PlacementState
}

// listRegion lists the placements with a replica or a retiring copy in
// region (state filter st, or every state).
func listRegion(ctx context.Context, cli pb.PlacementServiceClient, region string, st pb.PlacementState) ([]ref, error) {
	var out []ref
	token := ""
	for try := 0; ; try++ {
		c, cancel := context.WithTimeout(ctx, time.Minute)
		resp, err := cli.List(c, &pb.ListRequest{Region: region, State: st, PageSize: 1000, PageToken: token})
		cancel()
		if err != nil {
			// The daemon refuses reads while its cache catches up
			// with etcd (a busy drain at a million placements can
			// stall its watch): wait and ask again, a minute at most.
			if code := status.Code(err); (code == codes.Unavailable || code == codes.Aborted) && try < 600 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			return nil, fmt.Errorf("list region %s: %w", region, err)
		}
		try = 0
		for _, p := range resp.GetPlacements() {
			out = append(out, ref{p.GetTenant(), p.GetId(), p.GetState()})
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// chooseDrainRegion picks the region to drain: the one whose usage is
// highest among those every shape run can leave. A shape with no more
// eligible regions than replicas (the Kenyan ministry's, which only
// Konza serves; AUKUS's two replicas on its two regions) would strand,
// so its regions are never chosen.
func chooseDrainRegion(ctx context.Context, cat pb.CatalogServiceClient, place pb.PlacementServiceClient, run []shape) (string, error) {
	pinned := map[string]bool{}
	for _, s := range run {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		plan, err := place.Plan(c, &pb.PlanRequest{Workload: s.w})
		cancel()
		if err != nil {
			return "", fmt.Errorf("plan %s: %w", s.Name, err)
		}
		var eligible []string
		for _, v := range plan.GetRegions() {
			if v.GetEligible() {
				eligible = append(eligible, v.GetRegion())
			}
		}
		if len(eligible) <= int(s.w.GetReplicas()) {
			for _, r := range eligible {
				pinned[r] = true
			}
		}
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	regions, err := cat.ListRegions(c, &pb.ListRegionsRequest{})
	if err != nil {
		return "", err
	}
	best, most := "", int64(0)
	for _, r := range regions.GetRegions() {
		if u := r.GetUsed().GetMemoryMib(); !pinned[r.GetKey()] && r.GetStatus() == pb.RegionStatus_REGION_STATUS_ACTIVE && u > most {
			best, most = r.GetKey(), u
		}
	}
	if best == "" {
		return "", errors.New("no region to drain: no active region holds placements that can all move")
	}
	return best, nil
}

// setStatus puts region with status st (an operational change, as
// classroutectl region drain does) and returns the status it had.
func setStatus(ctx context.Context, cat pb.CatalogServiceClient, key string, st pb.RegionStatus) (pb.RegionStatus, error) {
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := cat.GetRegion(c, &pb.GetRegionRequest{Key: key})
	if err != nil {
		return 0, fmt.Errorf("get region %s: %w", key, err)
	}
	r := got.GetRegion()
	was := r.GetStatus()
	r.Status = st
	if _, err := cat.PutRegion(c, &pb.PutRegionRequest{Region: r}); err != nil {
		return was, fmt.Errorf("put region %s %v: %w", key, st, err)
	}
	return was, nil
}

func zero(r *pb.Resources) bool {
	return r.GetMilliCpu() == 0 && r.GetMemoryMib() == 0 && r.GetGpu() == 0
}

// drain drains region, waits until its usage is 0 (or until what is
// left is stranded, or timeout), checks where its placements went, and
// puts the region back as it was.
func drain(ctx context.Context, cat pb.CatalogServiceClient, place pb.PlacementServiceClient, region string, timeout time.Duration, log io.Writer) (*DrainResult, error) {
	tracked, err := listRegion(ctx, place, region, pb.PlacementState_PLACEMENT_STATE_UNSPECIFIED)
	if err != nil {
		return nil, err
	}
	if len(tracked) == 0 {
		return nil, fmt.Errorf("region %s holds no placement", region)
	}
	res := &DrainResult{Region: region, Placements: len(tracked)}
	fmt.Fprintf(log, "draining %s: %d placements\n", region, len(tracked))
	start := time.Now()
	was, err := setStatus(ctx, cat, region, pb.RegionStatus_REGION_STATUS_DRAINING)
	if err != nil {
		return nil, err
	}
	defer func() {
		// Back as it was: a later run on the same data drains again.
		if _, err := setStatus(context.WithoutCancel(ctx), cat, region, was); err != nil {
			fmt.Fprintf(log, "could not put %s back to %v: %v\n", region, was, err)
		}
	}()
	deadline := start.Add(timeout)
	lastCheck, lastLeft, stuckSince := time.Now(), -1, time.Time{}
	for {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		got, err := cat.GetRegion(c, &pb.GetRegionRequest{Key: region})
		cancel()
		if code := status.Code(err); (code == codes.Unavailable || code == codes.Aborted) && time.Now().Before(deadline) {
			res.Unavailable++ // refused while its cache catches up: ask again
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get region %s: %w", region, err)
		}
		if zero(got.GetRegion().GetUsed()) {
			res.Seconds, res.Usage0 = time.Since(start).Seconds(), true
			break
		}
		// Every second: is what is left stranded, and no longer moving?
		if time.Since(lastCheck) >= time.Second {
			lastCheck = time.Now()
			left, err := listRegion(ctx, place, region, pb.PlacementState_PLACEMENT_STATE_UNSPECIFIED)
			if err != nil {
				return nil, err
			}
			stuck := 0
			for _, p := range left {
				if p.state == pb.PlacementState_PLACEMENT_STATE_STRANDED || p.state == pb.PlacementState_PLACEMENT_STATE_VIOLATION {
					stuck++
				}
			}
			switch {
			case len(left) > 0 && stuck == len(left) && len(left) == lastLeft:
				if stuckSince.IsZero() {
					stuckSince = lastCheck
				}
			default:
				stuckSince = time.Time{}
			}
			lastLeft = len(left)
			if !stuckSince.IsZero() && time.Since(stuckSince) >= 2*time.Second {
				res.Seconds = stuckSince.Sub(start).Seconds()
				break
			}
		}
		if time.Now().After(deadline) {
			res.Seconds, res.TimedOut = time.Since(start).Seconds(), true
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Where did they go? What is still listed in the region is
	// stranded (or, on a timeout, not yet moved); what is not must be
	// placed elsewhere.
	left, err := listRegion(ctx, place, region, pb.PlacementState_PLACEMENT_STATE_UNSPECIFIED)
	if err != nil {
		return nil, err
	}
	there := map[ref]bool{}
	for _, p := range left {
		there[ref{p.tenant, p.id, 0}] = true
		if p.state == pb.PlacementState_PLACEMENT_STATE_STRANDED || p.state == pb.PlacementState_PLACEMENT_STATE_VIOLATION {
			res.Stranded++
		} else {
			res.Left++
		}
	}
	notPlaced := map[ref]bool{}
	for _, st := range []pb.PlacementState{pb.PlacementState_PLACEMENT_STATE_STRANDED, pb.PlacementState_PLACEMENT_STATE_VIOLATION} {
		ps, err := listRegion(ctx, place, "", st)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			notPlaced[ref{p.tenant, p.id, 0}] = true
		}
	}
	for _, p := range tracked {
		k := ref{p.tenant, p.id, 0}
		if !there[k] && !notPlaced[k] {
			res.Moved++
		}
	}
	if res.Seconds > 0 {
		res.Rate = float64(res.Moved) / res.Seconds
	}
	return res, nil
}
