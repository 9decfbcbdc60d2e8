package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/label"
)

// ErrorDomain is the ErrorInfo domain of classroute's errors.
const ErrorDomain = "classroute"

// maxRefusalVerdicts bounds the verdicts carried in a refusal's status
// details, which travel in trailers; Plan returns every one.
const maxRefusalVerdicts = 256

// toStatus is the one place domain errors become gRPC statuses.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var invalid *router.InvalidError
	var parse *label.ParseError
	var refusal *router.RefusalError
	switch {
	case errors.As(err, &invalid):
		return withDetails(codes.InvalidArgument, err.Error(), badRequest(invalid.Violations))
	case errors.As(err, &parse):
		return withDetails(codes.InvalidArgument, err.Error(),
			badRequest([]router.FieldViolation{{Field: "banner", Description: parse.Error()}}))
	case errors.As(err, &refusal):
		return refusalStatus(refusal)
	case errors.Is(err, router.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, router.ErrUnavailable):
		return withDetails(codes.Unavailable, err.Error(), &errdetails.ErrorInfo{Reason: "STATE_UNAVAILABLE", Domain: ErrorDomain})
	case errors.Is(err, router.ErrRequestReused):
		return withDetails(codes.AlreadyExists, err.Error(), &errdetails.ErrorInfo{Reason: "REQUEST_ID_REUSED", Domain: ErrorDomain})
	case errors.Is(err, router.ErrInUse):
		return withDetails(codes.FailedPrecondition, err.Error(), &errdetails.ErrorInfo{Reason: "IN_USE", Domain: ErrorDomain})
	case errors.Is(err, router.ErrConflict):
		return withDetails(codes.Aborted, err.Error(), &errdetails.ErrorInfo{Reason: "CONFLICT", Domain: ErrorDomain})
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}

func badRequest(vs []router.FieldViolation) *errdetails.BadRequest {
	br := &errdetails.BadRequest{}
	for _, v := range vs {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
	}
	return br
}

func refusalStatus(r *router.RefusalError) error {
	reason := "NO_ELIGIBLE_REGION"
	if errors.Is(r, router.ErrSpreadUnsatisfiable) {
		reason = "SPREAD_UNSATISFIABLE"
	}
	pf := &errdetails.PreconditionFailure{}
	verdicts := r.Regions
	if len(verdicts) > maxRefusalVerdicts {
		verdicts = verdicts[:maxRefusalVerdicts]
	}
	for _, e := range verdicts {
		for _, why := range e.Reasons {
			pf.Violations = append(pf.Violations, &errdetails.PreconditionFailure_Violation{
				Type: string(why.Code), Subject: e.Key, Description: why.Message,
			})
		}
	}
	refusal := &pb.Refusal{Summary: r.Error(), Revision: r.Revision, Regions: VerdictsToProto(verdicts)}
	return withDetails(codes.FailedPrecondition, r.Error(),
		&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: map[string]string{
			"revision": fmt.Sprint(r.Revision), "regions": fmt.Sprint(len(r.Regions)),
		}}, pf, refusal)
}

func withDetails(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st, err := status.New(c, msg).WithDetails(details...)
	if err != nil {
		return status.Error(c, msg)
	}
	return st.Err()
}
