package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/state"
)

// EdgeStore is what the edge service reads of the store. (Changes go
// through ChangeStore.ProposeEdgeChange and ProposeServiceChange.)
type EdgeStore interface {
	ListEdges() []*state.EdgeVersion
	GetEdge(id string) (*state.EdgeVersion, error)
	ListServices() []*state.ServiceVersion
	GetService(name string) (*state.ServiceVersion, error)
}

// edgeService implements EdgeService. The policy table lets only
// catalogue administrators and security auditors call it: edges say
// where classified data may cross between networks.
type edgeService struct {
	pb.UnimplementedEdgeServiceServer
	*Server
	store EdgeStore
}

// ListEdges returns every stored edge.
func (s *edgeService) ListEdges(ctx context.Context, _ *pb.ListEdgesRequest) (*pb.ListEdgesResponse, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	now := time.Now()
	out := &pb.ListEdgesResponse{}
	for _, v := range s.store.ListEdges() {
		out.Edges = append(out.Edges, edgeVersionToProto(v, now))
	}
	return out, nil
}

// GetEdge returns one edge.
func (s *edgeService) GetEdge(ctx context.Context, req *pb.GetEdgeRequest) (*pb.GetEdgeResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	v, err := s.store.GetEdge(req.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetEdgeResponse{Edge: edgeVersionToProto(v, time.Now())}, nil
}

// ListServices returns every stored catalogue service.
func (s *edgeService) ListServices(ctx context.Context, _ *pb.ListServicesRequest) (*pb.ListServicesResponse, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	out := &pb.ListServicesResponse{}
	for _, v := range s.store.ListServices() {
		out.Services = append(out.Services, serviceVersionToProto(v))
	}
	return out, nil
}

// GetService returns one catalogue service.
func (s *edgeService) GetService(ctx context.Context, req *pb.GetServiceRequest) (*pb.GetServiceResponse, error) {
	if req.GetName() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "name", Description: "required"}}.Err())
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	v, err := s.store.GetService(req.GetName())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetServiceResponse{Service: serviceVersionToProto(v)}, nil
}

// edgeVersionToProto converts a stored edge, with how it came to be and
// whether it is in force at now.
func edgeVersionToProto(v *state.EdgeVersion, now time.Time) *pb.Edge {
	e := convert.EdgeToProto(&v.Edge)
	e.ChangeId, e.ProposedBy, e.ApprovedBy, e.InForce = v.Change, v.ProposedBy, v.ApprovedBy, v.InForce(now)
	if !v.AppliedAt.IsZero() {
		e.ApplyTime = timestamppb.New(v.AppliedAt)
	}
	return e
}

func serviceVersionToProto(v *state.ServiceVersion) *pb.CatalogueService {
	sv := convert.ServiceToProto(&v.Service)
	sv.ChangeId, sv.ProposedBy, sv.ApprovedBy = v.Change, v.ProposedBy, v.ApprovedBy
	if !v.AppliedAt.IsZero() {
		sv.ApplyTime = timestamppb.New(v.AppliedAt)
	}
	return sv
}

// ProposeEdgeChange records a two-person edge change.
func (s *changeService) ProposeEdgeChange(ctx context.Context, req *pb.ProposeEdgeChangeRequest) (*pb.ProposeEdgeChangeResponse, error) {
	var v router.Violations
	e := convert.EdgeFromProto(req.GetEdge(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	c, err := s.store.ProposeEdgeChange(ctx, e, req.GetWithdraw(), req.GetReason())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "edge change proposed", "change", c.ID, "edge", e.ID, "kind", c.Kind, "by", authz.FromContext(ctx))
	return &pb.ProposeEdgeChangeResponse{Change: convert.ChangeToProto(c)}, nil
}

// ProposeServiceChange records a two-person catalogue service change.
func (s *changeService) ProposeServiceChange(ctx context.Context, req *pb.ProposeServiceChangeRequest) (*pb.ProposeServiceChangeResponse, error) {
	var v router.Violations
	sv := convert.ServiceFromProto(req.GetService(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	c, err := s.store.ProposeServiceChange(ctx, sv, req.GetWithdraw(), req.GetReason())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "service change proposed", "change", c.ID, "service", sv.Name, "kind", c.Kind, "by", authz.FromContext(ctx))
	return &pb.ProposeServiceChangeResponse{Change: convert.ChangeToProto(c)}, nil
}
