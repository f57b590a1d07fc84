package zbwrap

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	grpccodes "google.golang.org/grpc/codes"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/otelsetup"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/telemetrytest"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// recorded is the in-memory telemetry of a Wrapper: a manual metric reader
// and a span recorder, passed as the caller's providers.
type recorded struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	opts   []Option
}

func newRecorded() *recorded {
	r := &recorded{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.opts = []Option{WithMeterProvider(mp), WithTracerProvider(tp)}
	return r
}

func (r *recorded) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	ms, err := telemetrytest.Collect(context.Background(), r.reader)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return ms
}

// sum is a counter's value for the test table and attrs; -1 if none.
func sum(t *testing.T, ms map[string]metricdata.Metrics, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	if v, ok := telemetrytest.Int64Sum(ms, name, append(attrs, telemetry.AttrTable.String(testTable))...); ok {
		return v
	}
	return -1
}

func gauge(t *testing.T, ms map[string]metricdata.Metrics, name string) int64 {
	t.Helper()
	dps := ms[name].Data.(metricdata.Gauge[int64]).DataPoints
	if len(dps) != 1 {
		t.Fatalf("%s: %d data points", name, len(dps))
	}
	return dps[0].Value
}

func histCount(t *testing.T, ms map[string]metricdata.Metrics, name string) (uint64, float64) {
	t.Helper()
	dps := ms[name].Data.(metricdata.Histogram[float64]).DataPoints
	if len(dps) != 1 {
		t.Fatalf("%s: %d data points", name, len(dps))
	}
	if ms[name].Unit != "s" {
		t.Fatalf("%s unit %q", name, ms[name].Unit)
	}
	return dps[0].Count, dps[0].Sum
}

func spanAttr(s sdktrace.ReadOnlySpan, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// children indexes ended spans by parent span id.
func children(spans []sdktrace.ReadOnlySpan) map[string][]sdktrace.ReadOnlySpan {
	out := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		out[s.Parent().SpanID().String()] = append(out[s.Parent().SpanID().String()], s)
	}
	return out
}

func names(spans []sdktrace.ReadOnlySpan) map[string]int {
	out := map[string]int{}
	for _, s := range spans {
		out[s.Name()]++
	}
	return out
}

// A recovery mid-run: every instrument holds the exact count, and the span
// tree is send -> {encode, stream open, wait for acks, recovery -> open}
// under the caller's span.
func TestTelemetryMetricsAndSpans(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithDiscard(),
		zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, AfterRecords: 150}))
	rec := newRecorded()
	// One stream: the counts below follow which batch that call replays
	// (with auto, a recovering stream may be relieved by another).
	w := newWrapper(t, srv, append(rec.opts, WithStreams(1))...)

	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec.spans))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	var results []*TransmissionResult
	for i := range 3 {
		b := makeBatch(i*100, 100, 40)
		res, err := w.SendBatch(ctx, b)
		b.Release()
		if err != nil {
			t.Fatalf("SendBatch %d: %v", i, err)
		}
		results = append(results, res)
	}
	parent.End()

	st := w.Stats()
	if st.ReplayedRequests != 1 || st.CallsOpened != 2 {
		t.Fatalf("stats %+v: want one replayed request and two calls", st)
	}
	ms := rec.collect(t)
	var bytes int64
	for _, r := range results {
		bytes += int64(r.BatchSizeBytes)
	}
	bytes += int64(results[1].BatchSizeBytes) // replayed once
	for _, c := range []struct {
		name string
		want int64
	}{
		{telemetry.MetricBatchesSent, 3},
		{telemetry.MetricRowsAcknowledged, 300},
		{telemetry.MetricBytesSent, bytes},
		{telemetry.MetricRetries, 1},
		{telemetry.MetricRecoveries, 1},
		{telemetry.MetricTokenRefreshes, srv.Stats().TokensGranted},
	} {
		if got := sum(t, ms, c.name); got != c.want {
			t.Errorf("%s = %d, want %d", c.name, got, c.want)
		}
	}
	if _, ok := ms[telemetry.MetricRowsFailed]; ok {
		t.Errorf("rows failed recorded on a run with no failure")
	}
	if n, _ := histCount(t, ms, telemetry.MetricEncodeDuration); n != 3 {
		t.Errorf("encode histogram count %d, want 3", n)
	}
	if n, s := histCount(t, ms, telemetry.MetricAckLatency); n != uint64(st.RequestsAcked) || s <= 0 {
		t.Errorf("ack latency count %d sum %g, want %d requests", n, s, st.RequestsAcked)
	}
	if r, b := gauge(t, ms, telemetry.MetricInflightRecords), gauge(t, ms, telemetry.MetricInflightBytes); r != 0 || b != 0 {
		t.Errorf("in flight after the sends: %d records, %d bytes", r, b)
	}

	spans := rec.spans.Ended()
	kids := children(spans)
	sends := kids[parent.SpanContext().SpanID().String()]
	if len(sends) != 3 {
		t.Fatalf("%d spans under the caller's, want 3: %v", len(sends), names(spans))
	}
	want := []map[string]int{
		{telemetry.SpanEncode: 1, telemetry.SpanStreamOpen: 1, telemetry.SpanWaitForAcks: 1},
		{telemetry.SpanEncode: 1, telemetry.SpanWaitForAcks: 1, telemetry.SpanRecovery: 1},
		{telemetry.SpanEncode: 1, telemetry.SpanWaitForAcks: 1},
	}
	for i, s := range sends {
		if sc := s.InstrumentationScope(); sc.Name != telemetry.ScopeName || sc.Version != Version {
			t.Errorf("send %d scope %+v", i, sc)
		}
		if s.Name() != telemetry.SpanSendBatch || s.Status().Code != codes.Unset {
			t.Errorf("send %d: %s status %v", i, s.Name(), s.Status())
		}
		if v, _ := spanAttr(s, telemetry.AttrRows); v.AsInt64() != 100 {
			t.Errorf("send %d rows %v", i, v)
		}
		if v, _ := spanAttr(s, telemetry.AttrBytes); v.AsInt64() != int64(results[i].BatchSizeBytes) {
			t.Errorf("send %d bytes %v, want %d", i, v, results[i].BatchSizeBytes)
		}
		got := names(kids[s.SpanContext().SpanID().String()])
		if len(got) != len(want[i]) {
			t.Errorf("send %d children %v, want %v", i, got, want[i])
		}
		for n, c := range want[i] {
			if got[n] != c {
				t.Errorf("send %d children %v, want %v", i, got, want[i])
			}
		}
	}
	for _, s := range spans {
		if s.Name() != telemetry.SpanRecovery {
			continue
		}
		if len(s.Events()) != 1 || s.Events()[0].Name != "retry" {
			t.Errorf("recovery events %v", s.Events())
		}
		if got := names(kids[s.SpanContext().SpanID().String()]); got[telemetry.SpanStreamOpen] != 1 {
			t.Errorf("recovery children %v, want the reopen", got)
		}
	}
}

// Failed rows are counted by kind and the span says why.
func TestTelemetryFailures(t *testing.T) {
	checkLeaks(t)
	t.Run("conversion", func(t *testing.T) {
		srv := newServer(t, zerobustest.WithDiscard())
		rec := newRecorded()
		w := newWrapper(t, srv, rec.opts...)
		b := u64Batch(1, math.MaxUint64, 2)
		defer b.Release()
		res, err := w.SendBatch(context.Background(), b)
		if !errors.Is(err, ErrConversion) || res.FailedCount != 1 {
			t.Fatalf("SendBatch: %v %+v", err, res)
		}
		ms := rec.collect(t)
		if got := sum(t, ms, telemetry.MetricRowsFailed, telemetry.AttrErrorType.String("conversion")); got != 1 {
			t.Errorf("failed conversion rows %d, want 1", got)
		}
		if got := sum(t, ms, telemetry.MetricRowsAcknowledged); got != 2 {
			t.Errorf("acknowledged rows %d, want 2", got)
		}
		var send sdktrace.ReadOnlySpan
		for _, s := range rec.spans.Ended() {
			if s.Name() == telemetry.SpanSendBatch {
				send = s
			}
			if s.Name() == telemetry.SpanEncode {
				if v, _ := spanAttr(s, telemetry.AttrRowsFailed); v.AsInt64() != 1 {
					t.Errorf("encode span rows failed %v", v)
				}
			}
		}
		if send == nil || send.Status().Code != codes.Error {
			t.Fatalf("send span %v", send)
		}
		if v, _ := spanAttr(send, telemetry.AttrErrorType); v.AsString() != "conversion" {
			t.Errorf("error.type %q", v.AsString())
		}
	})
	t.Run("table not found", func(t *testing.T) {
		srv := newServer(t, zerobustest.WithDiscard(),
			zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: grpccodes.NotFound}))
		rec := newRecorded()
		w := newWrapper(t, srv, rec.opts...)
		b := makeBatch(0, 10, 10)
		defer b.Release()
		if _, err := w.SendBatch(context.Background(), b); !errors.Is(err, ErrConfiguration) {
			t.Fatalf("SendBatch: %v", err)
		}
		ms := rec.collect(t)
		if got := sum(t, ms, telemetry.MetricRowsFailed, telemetry.AttrErrorType.String("configuration")); got != 10 {
			t.Errorf("failed rows %d, want 10", got)
		}
		for _, s := range rec.spans.Ended() {
			if s.Name() == telemetry.SpanWaitForAcks && s.Status().Code != codes.Error {
				t.Errorf("wait span status %v", s.Status())
			}
		}
	})
}

// Async sends: a span per call that ends once queued, and the in-flight
// gauges show what waits for acknowledgement.
func TestTelemetryAsyncInflight(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithDiscard(), zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	rec := newRecorded()
	w := newWrapper(t, srv, append(rec.opts, WithAckTimeout(time.Minute), WithFlushTimeout(200*time.Millisecond))...)
	b := makeBatch(0, 50, 30)
	defer b.Release()
	off, err := w.SendBatchAsync(context.Background(), b)
	if err != nil {
		t.Fatalf("SendBatchAsync: %v", err)
	}
	ms := rec.collect(t)
	if r := gauge(t, ms, telemetry.MetricInflightRecords); r != 50 {
		t.Errorf("in-flight records %d, want 50", r)
	}
	if by := gauge(t, ms, telemetry.MetricInflightBytes); by < 50*30 {
		t.Errorf("in-flight bytes %d, want at least %d", by, 50*30)
	}
	var async sdktrace.ReadOnlySpan
	for _, s := range rec.spans.Ended() {
		if s.Name() == telemetry.SpanSendBatchAsync {
			async = s
		}
	}
	if async == nil {
		t.Fatalf("no async span: %v", names(rec.spans.Ended()))
	}
	if v, _ := spanAttr(async, telemetry.AttrOffset); v.AsInt64() != off {
		t.Errorf("async span offset %v, want %d", v, off)
	}
	_ = w.Close(context.Background())
	ms = rec.collect(t)
	if got := sum(t, ms, telemetry.MetricRowsFailed, telemetry.AttrErrorType.String("transmission")); got != 50 {
		t.Errorf("rows failed at Close %d, want 50", got)
	}
}

// End to end over OTLP/gRPC: a Wrapper configured with
// observability_enabled and a collector endpoint exports its metrics and
// spans there; Close flushes them.
func TestTelemetryOverOTLP(t *testing.T) {
	checkLeaks(t)
	col, err := telemetrytest.NewCollector(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	srv := newServer(t, zerobustest.WithDiscard())
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			col.Reset()
			endpoint := col.GRPCURL()
			if proto == "http" {
				endpoint = col.HTTPURL()
			}
			w := newWrapper(t, srv, WithObservability(true), WithExporters(otelsetup.New),
				WithOTLPEndpoint(endpoint), WithOTLPProtocol(proto))
			for i := range 4 {
				b := makeBatch(i*250, 250, 100)
				_, err := w.SendBatch(context.Background(), b)
				b.Release()
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			attrs := map[string]string{"zerobus.table": testTable}
			if v, ok := col.SumValue(telemetry.MetricRowsAcknowledged, attrs); !ok || v != 1000 {
				t.Errorf("rows acknowledged at the collector: %v %v, want 1000", v, ok)
			}
			if v, ok := col.SumValue(telemetry.MetricBatchesSent, attrs); !ok || v != 4 {
				t.Errorf("batches at the collector: %v %v, want 4", v, ok)
			}
			if n, _, ok := col.HistogramValue(telemetry.MetricEncodeDuration, attrs); !ok || n != 4 {
				t.Errorf("encode durations at the collector: %d %v, want 4", n, ok)
			}
			if _, ok := col.GaugeValue(telemetry.MetricInflightRecords, attrs); !ok {
				t.Errorf("no in-flight gauge at the collector")
			}
			if got := len(col.Spans(telemetry.SpanSendBatch)); got != 4 {
				t.Errorf("%d send spans at the collector, want 4", got)
			}
			if got := len(col.Spans(telemetry.SpanWaitForAcks)); got != 4 {
				t.Errorf("%d wait spans at the collector, want 4", got)
			}
		})
	}
}

// Two Wrappers with two environment lookups export to the two collectors
// their OTEL_* variables name, and the process environment is untouched.
func TestTelemetryEnvLookupPerWrapper(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithDiscard())
	before := os.Environ()
	var cols [2]*telemetrytest.Collector
	for i := range cols {
		col, err := telemetrytest.NewCollector(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer col.Close()
		cols[i] = col
	}
	var ws [2]*Wrapper
	for i, col := range cols {
		env := map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": col.HTTPURL(),
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			"OTEL_SERVICE_NAME":           fmt.Sprintf("wrapper-%d", i),
		}
		ws[i] = newWrapper(t, srv, WithObservability(true), WithExporters(otelsetup.New),
			WithEnvLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	}
	for i, w := range ws { // both open before either sends or closes
		b := makeBatch(0, 10*(i+1), 10)
		_, err := w.SendBatch(context.Background(), b)
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range ws {
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i, col := range cols {
		attrs := map[string]string{"zerobus.table": testTable}
		if v, ok := col.SumValue(telemetry.MetricRowsAcknowledged, attrs); !ok || v != float64(10*(i+1)) {
			t.Errorf("collector %d: rows acknowledged %v %v, want %d", i, v, ok, 10*(i+1))
		}
		spans := col.Spans(telemetry.SpanSendBatch)
		if len(spans) != 1 {
			t.Fatalf("collector %d: %d send spans, want 1", i, len(spans))
		}
		if got, want := spans[0].Resource["service.name"], fmt.Sprintf("wrapper-%d", i); got != want {
			t.Errorf("collector %d: service.name %q, want %q", i, got, want)
		}
	}
	if after := os.Environ(); !slices.Equal(before, after) {
		t.Errorf("the process environment changed:\nbefore %q\nafter  %q", before, after)
	}
}

// A collector that never answers neither fails nor holds up sends, and
// Close still returns.
func TestTelemetryCollectorHung(t *testing.T) {
	// An export the collector does not answer goes on after Close returns,
	// with its retries, for up to the exporter's timeout (10 s by default):
	// shortened here so that the exporters' goroutines end soon after.
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
	checkLeaks(t)
	col, err := telemetrytest.NewCollector(context.Background(), telemetrytest.WithDelay(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	srv := newServer(t, zerobustest.WithDiscard())
	w := newWrapper(t, srv, WithObservability(true), WithExporters(otelsetup.New), WithOTLPEndpoint(col.GRPCURL()))
	for i := range 20 {
		b := makeBatch(i*100, 100, 20)
		res, err := w.SendBatch(context.Background(), b)
		b.Release()
		if err != nil || res.SuccessfulCount != 100 {
			t.Fatalf("send %d with a hung collector: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v (telemetry failures are logged, not returned)", err)
	}
	if got := w.Stats().RowsAcked; got != 2000 {
		t.Fatalf("rows acknowledged %d", got)
	}
}

// Debug files that cannot be written are counted; the sends go on.
func TestTelemetryDebugWriteErrors(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	// A file stands where the writer's directory should be.
	if err := os.WriteFile(filepath.Join(dir, "zerobus"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, zerobustest.WithDiscard())
	rec := newRecorded()
	w := newWrapper(t, srv, append(rec.opts, WithDebug(true), WithDebugOutputDir(dir))...)
	b := makeBatch(0, 10, 10)
	defer b.Release()
	if _, err := w.SendBatch(context.Background(), b); err != nil {
		t.Fatalf("SendBatch with unwritable debug files: %v", err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sum(t, rec.collect(t), telemetry.MetricDebugErrors); got < 1 {
		t.Fatalf("debug write errors counted: %d", got)
	}
}

// observability_enabled needs exporters: without WithExporters, New says
// how to choose them, unless the caller gives both providers.
func TestTelemetryNeedsExporters(t *testing.T) {
	srv := newServer(t, zerobustest.WithDiscard())
	_, err := New(context.Background(), Config{}, append(serverOptions(srv), WithObservability(true))...)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindConfiguration || e.Setting != "observability_enabled" ||
		!strings.Contains(err.Error(), "WithExporters(otelsetup.New)") {
		t.Fatalf("observability_enabled without exporters: %v", err)
	}
	rec := newRecorded()
	_, err = New(context.Background(), Config{}, append(serverOptions(srv), WithObservability(true), rec.opts[0])...)
	if !errors.As(err, &e) || e.Setting != "observability_enabled" {
		t.Fatalf("observability_enabled with only a meter provider: %v", err)
	}
	w := newWrapper(t, srv, append(rec.opts, WithObservability(true))...)
	if w.tel == nil {
		t.Fatal("no telemetry with both providers given")
	}
	// With exporters, only the missing signal's provider is made.
	var asked telemetry.ExportConfig
	fake := func(_ context.Context, c telemetry.ExportConfig) (telemetry.Providers, error) {
		asked = c
		return telemetry.Providers{TracerProvider: sdktrace.NewTracerProvider()}, nil
	}
	newWrapper(t, srv, WithObservability(true), rec.opts[0], WithExporters(fake),
		WithOTLPEndpoint("collector:4317"), WithObservabilityStdout(true))
	if asked.Metrics || !asked.Traces || asked.OTLPEndpoint != "collector:4317" || !asked.Stdout {
		t.Fatalf("exporters asked for %+v", asked)
	}
	fail := func(context.Context, telemetry.ExportConfig) (telemetry.Providers, error) {
		return telemetry.Providers{}, errors.New("no collector")
	}
	_, err = New(context.Background(), Config{}, append(serverOptions(srv), WithObservability(true), WithExporters(fail))...)
	if !errors.As(err, &e) || e.Kind != KindConfiguration || !strings.Contains(err.Error(), "no collector") {
		t.Fatalf("failing exporters: %v", err)
	}
}
