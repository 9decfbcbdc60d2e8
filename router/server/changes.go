package server

import (
	"context"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/state"
)

// ChangeStore is what the change service calls of the store: two-person
// region, equivalence, edge and service changes, proposed by one catalogue
// administrator and approved or rejected by another.
type ChangeStore interface {
	ProposeRegionChange(ctx context.Context, r *router.Region, reason string, opts ...state.WriteOption) (*router.Change, error)
	ProposeEquivalenceChange(ctx context.Context, e *equiv.Entry, reason string) (*router.Change, error)
	ProposeEdgeChange(ctx context.Context, e *flow.Edge, withdraw bool, reason string) (*router.Change, error)
	ProposeServiceChange(ctx context.Context, sv *flow.Service, withdraw bool, reason string) (*router.Change, error)
	ApproveChange(ctx context.Context, id string) (*router.Change, error)
	RejectChange(ctx context.Context, id, note string) (*router.Change, error)
	GetChange(ctx context.Context, id string) (*router.Change, error)
	ListChanges(ctx context.Context, state string, limit int) ([]*router.Change, error)
}

// changeService implements ChangeService.
type changeService struct {
	pb.UnimplementedChangeServiceServer
	*Server
	store ChangeStore
}

// ProposeRegionChange records a two-person region change.
func (s *changeService) ProposeRegionChange(ctx context.Context, req *pb.ProposeRegionChangeRequest) (*pb.ProposeRegionChangeResponse, error) {
	var v router.Violations
	r := convert.RegionFromProto(req.GetRegion(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := router.ValidateRegion(r); err != nil {
		return nil, s.fail(ctx, err)
	}
	ifRev, err := state.ParseEtag("region.etag", req.GetRegion().GetEtag())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	c, err := s.store.ProposeRegionChange(ctx, r, req.GetReason(), state.IfRevision(ifRev))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "region change proposed", "change", c.ID, "region", r.Key(), "kind", c.Kind, "by", authz.FromContext(ctx))
	return &pb.ProposeRegionChangeResponse{Change: convert.ChangeToProto(c)}, nil
}

// ProposeEquivalenceChange records a two-person equivalence change.
func (s *changeService) ProposeEquivalenceChange(ctx context.Context, req *pb.ProposeEquivalenceChangeRequest) (*pb.ProposeEquivalenceChangeResponse, error) {
	var v router.Violations
	e := convert.EquivalenceFromProto(req.GetEntry(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	c, err := s.store.ProposeEquivalenceChange(ctx, e, req.GetReason())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "equivalence change proposed", "change", c.ID, "equivalence", e.Key().String(), "kind", c.Kind, "by", authz.FromContext(ctx))
	return &pb.ProposeEquivalenceChangeResponse{Change: convert.ChangeToProto(c)}, nil
}

// ApproveChange applies a proposal approved by a second administrator.
func (s *changeService) ApproveChange(ctx context.Context, req *pb.ApproveChangeRequest) (*pb.ApproveChangeResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	c, err := s.store.ApproveChange(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "change approved", "change", c.ID, "subject", c.Subject(), "kind", c.Kind, "by", authz.FromContext(ctx))
	return &pb.ApproveChangeResponse{Change: convert.ChangeToProto(c)}, nil
}

// RejectChange rejects a pending proposal.
func (s *changeService) RejectChange(ctx context.Context, req *pb.RejectChangeRequest) (*pb.RejectChangeResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	c, err := s.store.RejectChange(ctx, req.GetId(), req.GetNote())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.RejectChangeResponse{Change: convert.ChangeToProto(c)}, nil
}

// GetChange returns one proposal.
func (s *changeService) GetChange(ctx context.Context, req *pb.GetChangeRequest) (*pb.GetChangeResponse, error) {
	c, err := s.store.GetChange(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetChangeResponse{Change: convert.ChangeToProto(c)}, nil
}

// ListChanges lists proposals, newest first.
func (s *changeService) ListChanges(ctx context.Context, req *pb.ListChangesRequest) (*pb.ListChangesResponse, error) {
	switch req.GetState() {
	case "", router.ChangePending, router.ChangeApplied, router.ChangeRejected:
	default:
		return nil, s.fail(ctx, router.Violations{{Field: "state", Description: "want pending, applied or rejected, got " + req.GetState()}}.Err())
	}
	cs, err := s.store.ListChanges(ctx, req.GetState(), 0)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &pb.ListChangesResponse{}
	for _, c := range cs {
		out.Changes = append(out.Changes, convert.ChangeToProto(c))
	}
	return out, nil
}
