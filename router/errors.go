package router

import (
	"errors"
	"fmt"
	"strings"
)

// Domain errors. The gRPC edge maps each to one status code.
var (
	// ErrNoEligibleRegion: no region may hold the workload. Never answered with a weaker region.
	ErrNoEligibleRegion = errors.New("no eligible region")
	// ErrSpreadUnsatisfiable: enough regions are eligible, but no set of them satisfies the spread rules.
	ErrSpreadUnsatisfiable = errors.New("spread rules cannot be satisfied")
	// ErrNotFound: no object with that id.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the daemon cannot vouch for its state (etcd
	// unreachable, watch broken, cache stale, audit not written). It refuses
	// rather than deciding on state it cannot trust.
	ErrUnavailable = errors.New("state unavailable")
	// ErrRequestReused: a request id already made a placement of a different workload.
	ErrRequestReused = errors.New("request id already used for a different workload")
	// ErrInUse: the object is still referenced (a region with live placements,
	// a provider with regions, a tenant with live placements).
	ErrInUse = errors.New("still in use")
	// ErrConflict: the decision kept losing races for the same records and
	// gave up after its bounded retries; the caller may retry.
	ErrConflict = errors.New("conflicting concurrent updates")
	// ErrAgentConnected: another agent's session is live for the region;
	// a region has one agent at a time.
	ErrAgentConnected = errors.New("another agent serves the region")
	// ErrNotAssigned: the placement holds no replica in the agent's region
	// (never did, or was released or moved away).
	ErrNotAssigned = errors.New("placement not assigned to the region")
	// ErrPermissionDenied: the caller may not act on that object (an
	// agent reporting for a region other than its own).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrAboveCeiling: the workload's label is above its tenant's
	// clearance ceiling, or the tenant has none (Tenant.WithinCeiling):
	// a refusal of the tenant's policy. Such an error is also an
	// ErrPermissionDenied, and reads as one.
	ErrAboveCeiling = errors.New("above the tenant's clearance ceiling")
	// ErrTwoPersonRequired: the change needs a proposal by one catalogue
	// administrator and an approval by another (see SecurityChanges).
	ErrTwoPersonRequired = errors.New("needs a second administrator's approval")
	// ErrChangeNotPending: the proposal was already approved, rejected or
	// superseded (its region changed since it was proposed).
	ErrChangeNotPending = errors.New("change is not pending")
	// ErrPlacementCap: the tenant holds as many live placements as its
	// policy allows (Tenant.MaxPlacements); one must be released first.
	ErrPlacementCap = errors.New("tenant placement cap reached")
	// ErrEtagMismatch: a conditional write (AIP-154's etag) found the
	// record changed since the caller read it, or gone; read it again.
	ErrEtagMismatch = errors.New("the record changed since it was read")
)

// ceilingError is an ErrPermissionDenied that is also ErrAboveCeiling,
// worded as the permission denied it is.
type ceilingError struct{ msg string }

func (e *ceilingError) Error() string   { return e.msg }
func (e *ceilingError) Unwrap() []error { return []error{ErrPermissionDenied, ErrAboveCeiling} }

// Explained is one region's verdict, by region key, for reporting.
type Explained struct {
	Key      string
	Eligible bool
	Chosen   bool
	Score    float64
	Reasons  []Reason
	// Via says, for an eligible region and a label of another scheme than
	// the US, which accreditation holds the label and through which
	// equivalence entry ("GBR SECRET accreditation (UK MOD)", "US SECRET
	// accreditation (US), through GBR→US v1 (...)"); empty otherwise.
	Via string
	// Flows says, for an eligible region, how each declared dependency
	// flows from it: "read service:x by the rule", "write
	// placement:t/p through edge guard-1".
	Flows []string
}

// RefusalError is a refusal with every region's verdict. It wraps
// ErrNoEligibleRegion or ErrSpreadUnsatisfiable.
type RefusalError struct {
	Err error
	// Revision is the store revision the decision read.
	Revision int64
	// Regions holds the verdict of every region considered, or of those
	// the caller may know of.
	Regions []Explained
	// Redacted counts the regions left out of Regions because the caller
	// may not know of them.
	Redacted int
}

func (e *RefusalError) Error() string { return e.Err.Error() }
func (e *RefusalError) Unwrap() error { return e.Err }

// FieldViolation names one bad field of a request and what is wrong with it.
type FieldViolation struct {
	// Field is the path of the field, as in the API ("workload.label", "region.accreditation.expires").
	Field       string
	Description string
}

// InvalidError is returned for malformed input; it lists every bad field.
type InvalidError struct {
	Violations []FieldViolation
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid argument: " + strings.Join(parts, "; ")
}

// Violations collects field violations; its Err is nil when there are none.
type Violations []FieldViolation

// Add records a violation of field.
func (v *Violations) Add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err returns an *InvalidError holding the violations, or nil.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &InvalidError{Violations: v}
}

// Errors of the placement feed (Watch).
var (
	// ErrRevisionOutOfRange: a watch asked for changes from a revision
	// etcd no longer keeps (compacted), or has not reached. The caller
	// lists again and watches from the list's revision.
	ErrRevisionOutOfRange = errors.New("revision out of range")
	// ErrWatcherTooSlow: a watcher fell too far behind the changes it
	// follows; its stream ends, and it resumes from the last revision it
	// received.
	ErrWatcherTooSlow = errors.New("watcher fell behind")
)
