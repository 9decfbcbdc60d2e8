package convert

import (
	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
)

// ChangeToProto converts a two-person region change to the API.
func ChangeToProto(c *router.Change) *pb.RegionChange {
	var region *pb.Region
	if c.Equivalence == nil && c.Edge == nil && c.Service == nil {
		region = RegionToProto(router.RegionState{Region: &c.Region})
	}
	return &pb.RegionChange{
		Id:           c.ID,
		Region:       region,
		Equivalence:  EquivalenceToProto(c.Equivalence),
		Edge:         EdgeToProto(c.Edge),
		Service:      ServiceToProto(c.Service),
		Withdraw:     c.Withdraw,
		Kind:         string(c.Kind),
		Fields:       c.Fields,
		Reason:       c.Reason,
		BaseRevision: c.BaseRevision,
		ProposedBy:   c.ProposedBy,
		ProposeTime:  timeToProto(c.ProposedAt),
		State:        c.State,
		DecidedBy:    c.DecidedBy,
		DecideTime:   timeToProto(c.DecidedAt),
		Note:         c.Note,
	}
}
