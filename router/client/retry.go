package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Retry bounds the retries of calls whose outcome may be unknown or
// whose failure is passing: Place (under its request id, so a retry never
// places twice) and the reads. Waits grow from Initial, doubling to Max,
// and each is drawn at random below its bound ("full jitter"), so
// clients that failed together do not return together.
type Retry struct {
	// Attempts is how many times a call is tried in all (default 5; 1
	// never retries).
	Attempts int
	// Initial and Max bound the waits (defaults 100ms and 2s).
	Initial, Max time.Duration
	// AttemptTimeout is each try's deadline within the caller's context
	// (default: none, the caller's context alone). A try that runs out of
	// it has an unknown outcome and is retried; the caller's context
	// running out ends the call.
	AttemptTimeout time.Duration
}

// DefaultRetry is the policy a zero Retry stands for.
var DefaultRetry = Retry{Attempts: 5, Initial: 100 * time.Millisecond, Max: 2 * time.Second}

func (r Retry) orDefault() Retry {
	if r.Attempts == 0 {
		r.Attempts = DefaultRetry.Attempts
	}
	if r.Initial == 0 {
		r.Initial = DefaultRetry.Initial
	}
	if r.Max == 0 {
		r.Max = DefaultRetry.Max
	}
	return r
}

func (r Retry) validate() error {
	if r.Attempts < 0 || r.Initial < 0 || r.Max < 0 || r.AttemptTimeout < 0 {
		return errors.New("retry: attempts and durations must not be negative")
	}
	return nil
}

// backoff is the wait before try n+1 (n ≥ 1): uniform in [0, min(Max, Initial·2ⁿ⁻¹)].
func (r Retry) backoff(n int) time.Duration {
	bound := r.Initial
	for i := 1; i < n && bound < r.Max; i++ {
		bound *= 2
	}
	bound = min(bound, r.Max)
	return rand.N(bound + 1)
}

// retryable reports whether a try's failure may pass: the daemon was
// unreachable or not serving (UNAVAILABLE), a write lost a race it may win
// next time (ABORTED), or the try ran out of its own deadline while the
// caller's context lives on (DEADLINE_EXCEEDED: the outcome is unknown).
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded:
		return true
	}
	return false
}

// do runs try until it succeeds, fails for good, the attempts run out, or
// ctx ends, and returns how many tries it made. observe, if not nil, is
// told each try's error.
func (r Retry) do(ctx context.Context, try func(ctx context.Context) error, observe ...func(error)) (int, error) {
	var err error
	for n := 1; ; n++ {
		err = r.once(ctx, try)
		for _, f := range observe {
			f(err)
		}
		if err == nil || n >= r.Attempts || !retryable(ctx, err) {
			return n, err
		}
		if sleep(ctx, r.backoff(n)) != nil {
			return n, err
		}
	}
}

func (r Retry) once(ctx context.Context, try func(ctx context.Context) error) error {
	if r.AttemptTimeout <= 0 {
		return try(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, r.AttemptTimeout)
	defer cancel()
	return try(ctx)
}

// PlaceError is a Place that failed: its request id, which a later
// Place with WithRequestID resumes safely (the daemon places a request id
// once, and answers a repeat with the placement it made), the tries made,
// and the last try's error. Its gRPC status is that error's, so
// status.Code and status.FromError see through it.
type PlaceError struct {
	RequestID string
	Attempts  int
	Err       error
	// cutShort: some try was cut off before an answer, so the placement
	// may have been committed whatever the last try said.
	cutShort bool
}

func (e *PlaceError) Error() string {
	return fmt.Sprintf("place %s (%d tries): %v", e.RequestID, e.Attempts, e.Err)
}

func (e *PlaceError) Unwrap() error { return e.Err }

// GRPCStatus is the last try's status, with its details.
func (e *PlaceError) GRPCStatus() *status.Status { return status.Convert(e.Err) }

// OutcomeUnknown reports whether the placement may have been committed
// although the call failed: some try was cut off (deadline,
// cancellation, lost connection) rather than answered — its transaction
// may yet have committed, whatever later tries said. Place again with
// the same request id to learn the outcome.
func (e *PlaceError) OutcomeUnknown() bool { return e.cutShort || cutShort(e.Err) }

// cutShort reports whether a try's error leaves its outcome unknown.
func cutShort(err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Canceled, codes.Unavailable, codes.Unknown:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
