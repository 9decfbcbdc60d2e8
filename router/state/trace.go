package state

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The store's spans, in the caller's trace (a Place's, whose gRPC span
// otelgrpc starts at the edge):
//
//	decide     one decision of Place or Plan (the engine, on the cache)
//	commit     one Place commit: from queueing its etcd transaction to the answer
//	reconcile  one step of the reconciler: what changed, looked at and committed
//
// Their attributes name no tenant, workload or region, as the metrics
// name none: a trace backend's readers may not be cleared for them.

// tracerName names the store's tracer (instrumentation scope).
const tracerName = "github.com/classroute/classroute/router/state"

// WithTracerProvider sets where the store's spans go (default: nowhere,
// a no-op provider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracer = tp.Tracer(tracerName) }
}

func defaultTracer() trace.Tracer { return noop.NewTracerProvider().Tracer(tracerName) }

// endDecide ends a decide span: refused when the decision refused, and
// deferred when it must wait for this store's writes in flight.
func endDecide(span trace.Span, refusal error, wait bool) {
	span.SetAttributes(attribute.Bool("classroute.refused", refusal != nil && !wait), attribute.Bool("classroute.deferred", wait))
	span.End()
}

// endCommit ends a commit span with how the commit went.
func endCommit(span trace.Span, out outcome) {
	span.SetAttributes(attribute.Bool("classroute.committed", out.committed), attribute.Bool("classroute.lost", out.lost))
	if out.err != nil {
		span.SetStatus(codes.Error, out.err.Error())
	}
	span.End()
}

// endSpan ends a span, with err's status when it failed.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
