package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/classroute/classroute/router/version"
)

// otlpEnv are the standard variables that name an OTLP endpoint for
// traces: set, as -otlp-endpoint, they turn the exporter on.
var otlpEnv = []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// checkOTLPEndpoint checks -otlp-endpoint: a URL, http:// (plaintext)
// or https://, with a host, as OTEL_EXPORTER_OTLP_ENDPOINT takes.
func checkOTLPEndpoint(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-otlp-endpoint %q: want a URL, http://HOST:PORT (plaintext) or https://HOST:PORT, as OTEL_EXPORTER_OTLP_ENDPOINT", v)
	}
	return nil
}

// tracing returns where the daemon's spans go, and what flushes and
// stops it. With no -otlp-endpoint and none of otlpEnv set, spans go
// nowhere: a no-op provider, no exporter, no connection. Otherwise they
// are batched to the OTLP/gRPC endpoint (-otlp-endpoint over the
// variables; the other OTEL_EXPORTER_OTLP_* variables, headers,
// certificates, timeout, and OTEL_TRACES_SAMPLER, apply too), the
// resource naming the service (classrouted, or OTEL_SERVICE_NAME) and
// its version. The exporter connects when it first exports: an
// unreachable collector costs spans, never the daemon.
func tracing(ctx context.Context, cfg *Config, log *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	var from string
	switch {
	case cfg.OTLPEndpoint != "":
		from = "-otlp-endpoint"
	default:
		for _, v := range otlpEnv {
			if os.Getenv(v) != "" {
				from = v
				break
			}
		}
	}
	if from == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	var opts []otlptracegrpc.Option
	if cfg.OTLPEndpoint != "" {
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.OTLPEndpoint))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "classrouted"), attribute.String("service.version", version.Get().Version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	endpoint := cfg.OTLPEndpoint
	if endpoint == "" {
		endpoint = os.Getenv(from)
	}
	log.Info("tracing: spans exported over OTLP/gRPC", "endpoint", endpoint, "from", from)
	return tp, tp.Shutdown, nil
}
