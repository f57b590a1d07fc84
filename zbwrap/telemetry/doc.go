// Package telemetry records the engine's OpenTelemetry metrics and traces.
//
// The engine (package zbwrap) builds a Telemetry when observability_enabled
// is set or the caller passes its own providers (zbwrap.WithMeterProvider,
// zbwrap.WithTracerProvider); otherwise there is none, and the send path
// skips every instrumentation point. This package uses the OpenTelemetry
// API only. The providers and exporters that the observability_* settings
// describe are made by package otelsetup, which a program opts into with
// zbwrap.WithExporters(otelsetup.New); its documentation covers the
// settings and the OTEL_* variables.
//
// # Metrics
//
// Meter ScopeName; every point has the attribute zerobus.table.
//
//	name                        kind        unit       what
//	zerobus.batches.sent        counter     {batch}    batches resolved
//	zerobus.rows.acknowledged   counter     {row}      rows durably acknowledged
//	zerobus.rows.failed         counter     {row}      rows failed, by error.type
//	zerobus.bytes.sent          counter     By         record bytes written, replays included
//	zerobus.retries             counter     {retry}    recovery attempts
//	zerobus.stream.recoveries   counter     {recovery} streams reopened after a failure
//	zerobus.token.refreshes     counter     {request}  OAuth token requests (failed: error.type)
//	zerobus.inflight.records    gauge       {record}   records not yet acknowledged
//	zerobus.inflight.bytes      gauge       By         record bytes not yet acknowledged
//	zerobus.ack.latency         histogram   s          request written to acknowledged
//	zerobus.encode.duration     histogram   s          one Arrow batch converted
//	zerobus.debug.write_errors  counter     {error}    debug-file write failures
//
// error.type is the zbwrap error kind: configuration, authentication,
// connection, conversion, transmission, retry_exhausted, token_refresh.
//
// # Traces
//
// Each SendBatch is a span (zerobus.send_batch; SendBatchAsync:
// zerobus.send_batch_async, ending once queued) whose parent is the span of
// the caller's context. Its children: zerobus.encode; zerobus.stream.open
// when the send opened the stream; zerobus.wait_for_acks; and, for each
// recovery of the stream while the send waited, zerobus.recovery, with a
// "retry" event per attempt and the reopen (zerobus.stream.open) under it.
// A failed send has status Error and the attribute error.type.
//
// # Cost
//
// Telemetry never fails or blocks a send: metrics are exported by a
// periodic reader and spans by a batcher that drops when its queue is full,
// both on their own goroutines, so a collector that is down costs only the
// exporters' own retries. Shutdown (zbwrap's Close) flushes and shuts down
// the providers made for the engine (Config.Shutdown), bounded by
// DefaultShutdownTimeout, and never the caller's. When telemetry is off the
// engine does not call this package at all: each instrumentation point is a
// nil check.
package telemetry
