package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is off unless an OTLP endpoint is given, by -otlp-endpoint or
// the standard variables: then spans are batched to it.
func TestTracingOffUnlessConfigured(t *testing.T) {
	for _, v := range otlpEnv {
		t.Setenv(v, "")
	}
	log := slog.New(slog.DiscardHandler)
	tp, stop, err := tracing(context.Background(), &Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tp.(noop.TracerProvider); !ok {
		t.Errorf("nothing configured: %T; want a no-op provider (no exporter)", tp)
	}
	if err := stop(context.Background()); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct {
		name string
		cfg  Config
		env  string
	}{
		{"flag", Config{OTLPEndpoint: "http://127.0.0.1:1"}, ""},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", Config{}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Config{}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tc.env, "http://127.0.0.1:1")
			}
			tp, stop, err := tracing(context.Background(), &tc.cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := tp.(*sdktrace.TracerProvider); !ok {
				t.Errorf("%T; want the SDK's provider, exporting", tp)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = stop(ctx) // nothing to flush; the collector is not there
		})
	}
}

func TestOTLPEndpointFlag(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"http://127.0.0.1:4317", true},
		{"https://otel-collector.monitoring:4317", true},
		{"otel-collector:4317", false},
		{"grpc://collector:4317", false},
		{"http://", false},
	} {
		_, err := parseFlags([]string{"--otlp-endpoint", tc.v}, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("--otlp-endpoint %s: %v; want ok %v", tc.v, err, tc.ok)
		}
	}
}
