package convert

import (
	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
)

// EventTypeToProto converts what a change did to a placement; a type the
// API does not know is UNSPECIFIED.
func EventTypeToProto(t router.EventType) pb.PlacementEventType {
	switch t {
	case router.EventPlaced:
		return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_PLACED
	case router.EventUpdated:
		return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_UPDATED
	case router.EventReleased:
		return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_RELEASED
	case router.EventDeleted:
		return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_DELETED
	}
	return pb.PlacementEventType_PLACEMENT_EVENT_TYPE_UNSPECIFIED
}

// AssignmentToProto converts one change to what a region's agent runs:
// anything but a stop is a run.
func AssignmentToProto(a router.Assignment) *pb.AssignmentUpdate {
	action := pb.AssignmentAction_ASSIGNMENT_ACTION_RUN
	if a.Action == router.AssignStop {
		action = pb.AssignmentAction_ASSIGNMENT_ACTION_STOP
	}
	return &pb.AssignmentUpdate{
		Tenant:      a.Placement.Tenant,
		PlacementId: a.Placement.ID,
		Action:      action,
		Workload:    WorkloadToProto(&a.Placement.Workload),
		Revision:    a.Revision,
	}
}
