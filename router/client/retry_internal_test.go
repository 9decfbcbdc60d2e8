package client

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The retry policy's decisions, without a daemon: what is retried, how
// often, how long it waits, and that a caller's ended context stops it.
func TestRetryDecisions(t *testing.T) {
	r := Retry{Attempts: 4, Initial: time.Millisecond, Max: 4 * time.Millisecond}
	for _, tc := range []struct {
		code  codes.Code
		tries int
	}{
		{codes.Unavailable, 4}, {codes.Aborted, 4}, {codes.DeadlineExceeded, 4},
		{codes.FailedPrecondition, 1}, {codes.InvalidArgument, 1}, {codes.PermissionDenied, 1}, {codes.ResourceExhausted, 1},
	} {
		n, err := r.do(context.Background(), func(context.Context) error { return status.Error(tc.code, "x") })
		if n != tc.tries || status.Code(err) != tc.code {
			t.Errorf("%v: %d tries, %v; want %d tries", tc.code, n, err, tc.tries)
		}
	}
	// The caller's context ending stops the retries, whatever the code.
	ctx, cancel := context.WithCancel(context.Background())
	n, _ := r.do(ctx, func(context.Context) error { cancel(); return status.Error(codes.DeadlineExceeded, "x") })
	if n != 1 {
		t.Errorf("after the caller's context ended: %d tries; want 1", n)
	}
	// Waits stay within [0, min(Max, Initial·2ⁿ⁻¹)].
	for n := 1; n < 10; n++ {
		bound := min(r.Initial<<(n-1), r.Max)
		for range 100 {
			if d := r.backoff(n); d < 0 || d > bound {
				t.Fatalf("backoff(%d) = %v; want within [0, %v]", n, d, bound)
			}
		}
	}
}

// A try cut off before its answer leaves the outcome unknown even when a
// later try is answered with a refusal: the first may have committed.
func TestOutcomeUnknownRemembersEveryTry(t *testing.T) {
	e := &PlaceError{Err: status.Error(codes.Aborted, "lost a race"), cutShort: true}
	if !e.OutcomeUnknown() {
		t.Error("a try was cut short: the outcome is unknown")
	}
	if (&PlaceError{Err: status.Error(codes.FailedPrecondition, "refused")}).OutcomeUnknown() {
		t.Error("one try, answered with a refusal: the outcome is known")
	}
}
