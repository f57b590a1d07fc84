// Package telemetrytest runs an OTLP receiver in-process, the way
// net/http/httptest runs an HTTP server: real OTLP/gRPC and OTLP/HTTP
// servers on loopback that keep every metric and span they receive, so a
// test can export with the real OpenTelemetry SDK and check exact values.
// The command tools/otlp-sink wraps the same Collector for tests in other
// languages.
//
// # Starting one
//
//	col, err := telemetrytest.NewCollector(ctx)
//	if err != nil { ... }
//	defer col.Close()
//	col.GRPCEndpoint() // "127.0.0.1:PORT", for otlpmetricgrpc.WithEndpoint + WithInsecure
//	col.GRPCURL()      // "http://127.0.0.1:PORT", for WithEndpointURL
//	col.HTTPURL()      // "http://127.0.0.1:PORT"; POST /v1/metrics, /v1/traces, /v1/logs
//
// Both servers are plaintext. The gRPC server implements the
// opentelemetry.proto.collector metrics, trace and logs services and
// accepts gzip compression. The HTTP server takes application/x-protobuf
// and application/json bodies (OTLP/JSON: hex trace and span ids; base64
// ids are accepted too), optionally with Content-Encoding: gzip, and
// answers in the request's encoding. Logs are counted (LogRecords), not
// kept.
//
// # Reading what arrived
//
// Export, then wait for the data rather than sleeping:
//
//	mp.ForceFlush(ctx) // with a PeriodicReader over an OTLP exporter
//	err := col.WaitFor(ctx, func(c *telemetrytest.Collector) bool {
//		_, ok := c.SumValue("records.sent", map[string]string{"table": "t"})
//		return ok
//	})
//	v, _ := col.SumValue("records.sent", map[string]string{"table": "t"})
//	count, sum, _ := col.HistogramValue("batch.bytes", nil)
//	g, _ := col.GaugeValue("queue.depth", nil)
//	for _, s := range col.Spans("ingest") {
//		s.Resource["service.name"]; s.Scope; s.Attrs["table"]
//		s.Proto.GetParentSpanId(); s.Proto.GetStatus()
//	}
//
// Value queries name one series by its exact attribute set, values
// rendered as strings (see Value): the latest point of a cumulative series,
// the total of a delta one. ResourceMetrics, ResourceSpans and Metric give
// the raw protos. WaitFor re-checks its condition on every request that
// arrives, never by polling.
//
// # A broken collector
//
// WithFailure(codes.Unavailable) fails every export (HTTP gets 503, see
// HTTPStatus) and WithDelay(time.Hour) holds every export until the client
// gives up, so a test can show that its exporter neither blocks the code
// it observes nor loses the program's own work. SetFailure and SetDelay
// change both while running; Requests counts what arrived, failed or not.
// Note that the SDK exporters retry Unavailable, ResourceExhausted and
// their HTTP equivalents for up to a minute unless retry is disabled.
//
// Close stops both servers and waits for their goroutines; exports still
// being delayed are answered Unavailable.
package telemetrytest
