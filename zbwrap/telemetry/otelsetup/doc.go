// Package otelsetup exports the engine's telemetry as its configuration
// says: it makes the OpenTelemetry SDK providers and the OTLP and stdout
// exporters that the observability_* settings and the standard OTEL_*
// variables describe.
//
// The engine (package zbwrap) depends only on the OpenTelemetry API, so that
// a program which does not export telemetry, or which sets up OpenTelemetry
// itself, links neither the SDK nor any exporter. A program that wants the
// configuration to decide opts in with one option:
//
//	import (
//		"github.com/pyzerobus/pyzerobus/zbwrap"
//		"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/otelsetup"
//	)
//
//	w, err := zbwrap.New(ctx, cfg, zbwrap.WithExporters(otelsetup.New))
//
// and sets, in the Config, YAML or ZEROBUS_OBSERVABILITY_* variables:
//
//	observability_enabled: true
//	observability_otlp_endpoint: http://localhost:4317   # a collector
//	observability_otlp_protocol: grpc                    # or http
//	observability_stdout: false                          # true prints JSON
//
// The Python package always passes this option.
//
// Without WithExporters, zbwrap.New refuses observability_enabled with a
// KindConfiguration error (Setting "observability_enabled") that names this
// package, rather than drop the telemetry without a word: the engine's
// default logger discards, so a warning would go unseen. The alternative is
// the application's own providers, zbwrap.WithMeterProvider and
// zbwrap.WithTracerProvider (observability_enabled is then not needed).
// With one of them and observability_enabled, the other signal goes to the
// exporters made here.
//
// # Settings and variables
//
// A URL starting with http:// is plaintext; host:port and https:// use TLS.
// Left empty, the endpoint comes from the OTEL_EXPORTER_OTLP_ENDPOINT
// variables (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT and
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT too) and the protocol from
// OTEL_EXPORTER_OTLP_PROTOCOL ("grpc", or "http/protobuf"), else grpc to
// localhost:4317 (http: localhost:4318). OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_EXPORTER_OTLP_TIMEOUT and OTEL_EXPORTER_OTLP_INSECURE (and their
// per-signal forms) apply as the OTLP exporters define them; the export
// interval is OTEL_METRIC_EXPORT_INTERVAL (default 60 s). The resource is
// the SDK's default with OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME,
// and telemetry.distro.name pyzerobus. With observability_stdout alone,
// nothing goes over OTLP unless an endpoint is set.
//
// Those variables are read through ExportConfig.Getenv (zbwrap.WithEnvLookup),
// os.LookupEnv by default, each time New is called, and passed to the
// exporters as options: an embedding process (Python) hands over its own
// environment, which may change between two engines, and the process
// environment is never rewritten. Other OTEL_* variables (compression,
// certificates, the batch span processor's, the sampler's) are the SDK's,
// read from the process environment.
//
// # Lifetime
//
// New does no network I/O: exporters connect when they first export.
// Metrics are exported by a periodic reader and spans by a batcher that
// drops when its queue is full, both on their own goroutines. zbwrap's Close
// flushes and shuts down what New made, bounded by its context and
// telemetry.DefaultShutdownTimeout; an export that a hung collector holds
// may finish after Close returns, within OTEL_EXPORTER_OTLP_TIMEOUT
// (default 10 s).
package otelsetup
