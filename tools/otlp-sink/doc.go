// Command otlp-sink is an OTLP receiver for tests in any language: it runs
// a telemetrytest.Collector (OTLP/gRPC and OTLP/HTTP, plaintext, on
// loopback) and writes every accepted export as one JSON line.
//
//	otlp-sink [-out FILE] [-ready FILE] [-grpc-addr 127.0.0.1:0] [-http-addr 127.0.0.1:0] \
//	    [-fail CODE] [-delay DURATION]
//
// When both servers listen it writes one JSON line to stderr, or to the
// -ready file (written whole, then renamed into place, so a reader that
// sees the file sees all of it):
//
//	{"grpc":"127.0.0.1:PORT","grpc_url":"http://127.0.0.1:PORT","http_url":"http://127.0.0.1:PORT"}
//
// Point an OTLP/gRPC exporter at grpc_url (or grpc) and an OTLP/HTTP one at
// http_url (OTEL_EXPORTER_OTLP_ENDPOINT appends /v1/metrics, /v1/traces
// and /v1/logs itself).
//
// Each export then becomes one line of -out (default stdout), flushed at
// once, in arrival order: the ExportMetricsServiceRequest,
// ExportTraceServiceRequest or ExportLogsServiceRequest in OTLP/JSON
// (lowerCamelCase field names, traceId/spanId/parentSpanId as lowercase
// hex, enums as numbers, 64-bit integers as strings) with one more field,
// "signal": "metrics", "traces" or "logs":
//
//	{"resourceMetrics":[...],"signal":"metrics"}
//
// A caller that reads stdout through a pipe must keep reading it: a full
// pipe blocks the write, and with it the export being answered. Reading a
// -out file afterwards avoids that.
//
// -fail CODE answers every export with a gRPC code, by name (UNAVAILABLE,
// permission_denied) or number (HTTP gets the matching status, 503 for
// UNAVAILABLE); failed exports write no line. -delay holds every export
// before answering it. On SIGINT or SIGTERM the sink lets exports in flight
// finish, flushes and exits 0. It exits 1 on an error (such as a failed
// write to -out) and 2 on bad flags.
package main
