package server

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// TraceOptions are the options that trace every call of a gRPC server
// with OpenTelemetry (otelgrpc's stats handler): one server span per
// call, into tp, continuing the caller's W3C trace context. The store's
// spans (decide, commit: see router/state) are its children. otelgrpc's
// own metrics are off: the Prometheus ones (router/metrics) count every
// call.
func TraceOptions(tp trace.TracerProvider) []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	))}
}
