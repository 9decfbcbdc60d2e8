package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/label"
)

// ErrorDomain is the ErrorInfo domain of classroute's errors.
const ErrorDomain = "classroute"

// Status details travel in HTTP/2 trailers, which peers cap: a reply
// that outgrew them would cost the caller the connection, not just the
// detail. So the message, each description, and all the details together
// have byte budgets. A refusal that does not fit lists the verdicts that
// do and says so; Plan returns every one in its (size-limited) body.
const (
	maxMessageBytes     = 1 << 10
	maxDescriptionBytes = 512
	maxViolations       = 100
	maxDetailBytes      = 32 << 10
)

// clip shortens s to at most n bytes, marking the cut.
func clip(s string, n int) string { return router.Clip(s, n) }

// toStatus is the one place domain errors become gRPC statuses.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	msg := clip(err.Error(), maxMessageBytes)
	var invalid *router.InvalidError
	var parse *label.ParseError
	var refusal *router.RefusalError
	switch {
	case errors.As(err, &invalid):
		return withDetails(codes.InvalidArgument, msg, badRequest(invalid.Violations))
	case errors.As(err, &parse):
		return withDetails(codes.InvalidArgument, msg,
			badRequest([]router.FieldViolation{{Field: "banner", Description: parse.Error()}}))
	case errors.As(err, &refusal):
		return refusalStatus(refusal)
	case errors.Is(err, router.ErrNotFound):
		return status.Error(codes.NotFound, msg)
	case errors.Is(err, router.ErrUnavailable):
		return withDetails(codes.Unavailable, msg, &errdetails.ErrorInfo{Reason: "STATE_UNAVAILABLE", Domain: ErrorDomain})
	case errors.Is(err, router.ErrRequestReused):
		return withDetails(codes.AlreadyExists, msg, &errdetails.ErrorInfo{Reason: "REQUEST_ID_REUSED", Domain: ErrorDomain})
	case errors.Is(err, router.ErrInUse):
		return withDetails(codes.FailedPrecondition, msg, &errdetails.ErrorInfo{Reason: "IN_USE", Domain: ErrorDomain})
	case errors.Is(err, router.ErrAgentConnected):
		return withDetails(codes.AlreadyExists, msg, &errdetails.ErrorInfo{Reason: "AGENT_CONNECTED", Domain: ErrorDomain})
	case errors.Is(err, router.ErrNotAssigned):
		return withDetails(codes.FailedPrecondition, msg, &errdetails.ErrorInfo{Reason: "NOT_ASSIGNED", Domain: ErrorDomain})
	case errors.Is(err, router.ErrAboveCeiling):
		return withDetails(codes.PermissionDenied, msg, &errdetails.ErrorInfo{Reason: "ABOVE_CEILING", Domain: ErrorDomain})
	case errors.Is(err, router.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, msg)
	case errors.Is(err, router.ErrTwoPersonRequired):
		return withDetails(codes.FailedPrecondition, msg, &errdetails.ErrorInfo{Reason: "TWO_PERSON_REQUIRED", Domain: ErrorDomain})
	case errors.Is(err, router.ErrChangeNotPending):
		return withDetails(codes.FailedPrecondition, msg, &errdetails.ErrorInfo{Reason: "CHANGE_NOT_PENDING", Domain: ErrorDomain})
	case errors.Is(err, router.ErrPlacementCap):
		return withDetails(codes.ResourceExhausted, msg,
			&errdetails.ErrorInfo{Reason: "PLACEMENT_CAP", Domain: ErrorDomain},
			&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "tenant.max_placements", Description: msg}}})
	case errors.Is(err, router.ErrEtagMismatch):
		return withDetails(codes.Aborted, msg, &errdetails.ErrorInfo{Reason: "ETAG_MISMATCH", Domain: ErrorDomain})
	case errors.Is(err, router.ErrConflict):
		return withDetails(codes.Aborted, msg, &errdetails.ErrorInfo{Reason: "CONFLICT", Domain: ErrorDomain})
	case errors.Is(err, router.ErrRevisionOutOfRange):
		return withDetails(codes.OutOfRange, msg, &errdetails.ErrorInfo{Reason: "REVISION_OUT_OF_RANGE", Domain: ErrorDomain})
	case errors.Is(err, router.ErrWatcherTooSlow):
		return withDetails(codes.ResourceExhausted, msg, &errdetails.ErrorInfo{Reason: "WATCHER_TOO_SLOW", Domain: ErrorDomain})
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}

func badRequest(vs []router.FieldViolation) *errdetails.BadRequest {
	br := &errdetails.BadRequest{}
	for i, v := range vs {
		if i == maxViolations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: "", Description: fmt.Sprintf("%d more violations not shown", len(vs)-i)})
			break
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: clip(v.Field, maxDescriptionBytes), Description: clip(v.Description, maxDescriptionBytes)})
	}
	return br
}

func refusalStatus(r *router.RefusalError) error {
	reason := "NO_ELIGIBLE_REGION"
	if errors.Is(r, router.ErrSpreadUnsatisfiable) {
		reason = "SPREAD_UNSATISFIABLE"
	}
	info := &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: map[string]string{
		"regions": fmt.Sprint(len(r.Regions)),
	}}
	if r.Revision != 0 { // 0 for a tenant's users: see scope.revision
		info.Metadata["revision"] = fmt.Sprint(r.Revision)
	}
	pf := &errdetails.PreconditionFailure{}
	refusal := &pb.Refusal{Summary: clip(r.Error(), maxMessageBytes), Revision: r.Revision}
	budget := maxDetailBytes - proto.Size(info) - proto.Size(refusal)
	shown := 0
	for _, e := range r.Regions {
		v := convert.VerdictsToProto([]router.Explained{e})[0]
		var vs []*errdetails.PreconditionFailure_Violation
		for _, rs := range v.Reasons {
			rs.Message = clip(rs.Message, maxDescriptionBytes)
			vs = append(vs, &errdetails.PreconditionFailure_Violation{Type: rs.Code, Subject: e.Key, Description: rs.Message})
		}
		cost := 2 * proto.Size(v) // once in the verdict, about once in the violations
		if cost > budget {
			break
		}
		budget -= cost
		refusal.Regions = append(refusal.Regions, v)
		pf.Violations = append(pf.Violations, vs...)
		shown++
	}
	if shown < len(r.Regions) {
		info.Metadata["regions_shown"] = fmt.Sprint(shown)
		refusal.Summary = clip(fmt.Sprintf("%s (verdicts of %d of %d regions shown; Plan lists all)", r.Error(), shown, len(r.Regions)), maxMessageBytes)
	}
	return withDetails(codes.FailedPrecondition, clip(r.Error(), maxMessageBytes), info, pf, refusal)
}

func withDetails(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st, err := status.New(c, msg).WithDetails(details...)
	if err != nil {
		return status.Error(c, msg)
	}
	return st.Err()
}
