package router

import "fmt"

// What changed, as those who follow the placements are told: the type of
// a Watch's event (router/feed sends the events, in batches, one per etcd
// revision) and the assignments of a region's agent (router/state's
// AgentSession computes them). router/convert turns both into the API's
// messages.

// EventType says what a change did to a placement.
type EventType uint8

// Event types.
const (
	// EventPlaced: the placement record was created.
	EventPlaced EventType = iota + 1
	// EventUpdated: moved, flagged, acknowledged or recovered.
	EventUpdated
	// EventReleased: the placement turned released.
	EventReleased
	// EventDeleted: the record was removed; the event holds its last version.
	EventDeleted
)

// AssignmentAction says what a region's agent should do with a placement.
type AssignmentAction uint8

// Assignment actions.
const (
	// AssignRun: run a replica (or keep running a retiring copy) of the
	// placement in the agent's region.
	AssignRun AssignmentAction = iota + 1
	// AssignStop: stop it; the placement was released, or its replica
	// moved away and no retiring copy is left in the region.
	AssignStop
)

func (a AssignmentAction) String() string {
	switch a {
	case AssignRun:
		return "run"
	case AssignStop:
		return "stop"
	}
	return fmt.Sprintf("AssignmentAction(%d)", uint8(a))
}

// Assignment is one change to what a region's agent runs.
type Assignment struct {
	Action AssignmentAction
	// Placement is the version of the placement the change reflects (for
	// a STOP of a placement deleted from the store, the last version the
	// session saw). Shared with the cache: never modify it.
	Placement *Placement
	// Revision is the etcd mod revision of that version (for a deleted
	// placement, the cache revision that no longer holds it).
	Revision int64
}
