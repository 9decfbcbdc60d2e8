package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/marking"
	"github.com/classroute/classroute/router/state"
)

// EquivalenceStore is what the equivalence service reads of the store.
// (Changes go through ChangeStore.ProposeEquivalenceChange.)
type EquivalenceStore interface {
	ListEquivalences() []*state.EquivalenceVersion
	GetEquivalence(ctx context.Context, k equiv.Key) (*state.EquivalenceVersion, []*state.EquivalenceVersion, error)
}

// equivalenceService implements EquivalenceService.
type equivalenceService struct {
	pb.UnimplementedEquivalenceServiceServer
	*Server
	store EquivalenceStore
}

// ListEquivalences returns the current version of every entry.
func (s *equivalenceService) ListEquivalences(ctx context.Context, _ *pb.ListEquivalencesRequest) (*pb.ListEquivalencesResponse, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	now := time.Now()
	out := &pb.ListEquivalencesResponse{}
	for _, v := range s.store.ListEquivalences() {
		out.Entries = append(out.Entries, equivalenceVersionToProto(v, now))
	}
	return out, nil
}

// GetEquivalence returns the entry of a pair and its history.
func (s *equivalenceService) GetEquivalence(ctx context.Context, req *pb.GetEquivalenceRequest) (*pb.GetEquivalenceResponse, error) {
	var v router.Violations
	from, err := marking.ParseScheme(req.GetFrom())
	if err != nil {
		v.Add("from", "%v", err)
	}
	to, err := marking.ParseScheme(req.GetTo())
	if err != nil {
		v.Add("to", "%v", err)
	}
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	cur, hist, err := s.store.GetEquivalence(ctx, equiv.Key{From: from, To: to})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	now := time.Now()
	out := &pb.GetEquivalenceResponse{Entry: equivalenceVersionToProto(cur, now)}
	for _, h := range hist {
		out.History = append(out.History, equivalenceVersionToProto(h, now))
	}
	return out, nil
}

// equivalenceVersionToProto converts a stored version, with how it came
// to be and whether it is in force at now.
func equivalenceVersionToProto(v *state.EquivalenceVersion, now time.Time) *pb.EquivalenceEntry {
	e := convert.EquivalenceToProto(&v.Entry)
	e.ChangeId, e.ProposedBy, e.ApprovedBy, e.InForce = v.Change, v.ProposedBy, v.ApprovedBy, v.InForce(now)
	if !v.AppliedAt.IsZero() {
		e.ApplyTime = timestamppb.New(v.AppliedAt)
	}
	return e
}
