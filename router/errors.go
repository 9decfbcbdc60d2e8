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
)

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
