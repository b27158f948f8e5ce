package telemetry

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Environment variables that turn tracing on (the OpenTelemetry SDK's own:
// the exporter reads them, and OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, … too).
const (
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// serviceName names Kelpie's spans' resource.
const serviceName = "kelpie"

// tracerShutdownTimeout bounds flushing the spans still buffered at exit.
const tracerShutdownTimeout = 5 * time.Second

// Tracing is a node's tracer provider and how to stop it.
type Tracing struct {
	// Provider makes tracers: the SDK's with an OTLP exporter when
	// tracing is on, a no-op otherwise.
	Provider trace.TracerProvider
	// Enabled reports whether spans are exported.
	Enabled bool
	// Endpoint is where they go, as configured.
	Endpoint string

	shutdown func(context.Context) error
}

// Shutdown flushes the spans still buffered and stops the exporter
// (bounded by tracerShutdownTimeout). A no-op provider has nothing to do.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, tracerShutdownTimeout)
	defer cancel()
	return t.shutdown(ctx)
}

// TracingFromEnv sets up tracing as the environment says: with
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set,
// spans go to that OTLP/HTTP collector (http://localhost:4318, say),
// batched; otherwise tracing is off and costs nothing (a no-op provider).
func TracingFromEnv(ctx context.Context, getenv func(string) string) (*Tracing, error) {
	endpoint := getenv(EnvOTLPTracesEndpoint)
	if endpoint == "" {
		endpoint = getenv(EnvOTLPEndpoint)
	}
	if endpoint == "" {
		return &Tracing{Provider: noop.NewTracerProvider()}, nil
	}
	// The exporter reads the endpoint (and headers, timeout, TLS settings)
	// from the same environment variables.
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter for %s: %w", endpoint, err)
	}
	tp := NewTracerProvider(sdktrace.WithBatcher(exp))
	return &Tracing{Provider: tp, Enabled: true, Endpoint: endpoint, shutdown: tp.Shutdown}, nil
}

// NewTracerProvider returns an SDK tracer provider for Kelpie's spans
// (service.name "kelpie"), configured further by opts (an exporter: a
// test passes sdktrace.WithSyncer of a tracetest.InMemoryExporter).
func NewTracerProvider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	res := resource.NewSchemaless(attribute.String("service.name", serviceName))
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithResource(res)}, opts...)...)
}
