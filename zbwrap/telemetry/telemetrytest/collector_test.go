package telemetrytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

var transports = []exportCfg{
	{protocol: "grpc"},
	{protocol: "grpc", gzip: true},
	{protocol: "http"},
	{protocol: "http", gzip: true},
}

func TestMetricsArriveWithExactValues(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name(), func(t *testing.T) {
			c := start(t)
			ctx := timeout(t)
			mp := meterProvider(t, c, tr)
			m := mp.Meter("zbwrap.test", metric.WithInstrumentationVersion("1.2.3"))

			sent, _ := m.Int64Counter("records.sent")
			bytesOut, _ := m.Float64Counter("bytes.sent")
			inflight, _ := m.Int64UpDownCounter("inflight")
			latency, _ := m.Float64Histogram("latency")
			expLatency, _ := m.Float64Histogram("exp.latency")
			depth, _ := m.Int64Gauge("queue.depth")
			ta := metric.WithAttributes(attribute.String("table", "a"))
			tb := metric.WithAttributes(attribute.String("table", "b"), attribute.Bool("retry", true))

			sent.Add(ctx, 3, ta)
			sent.Add(ctx, 4, ta)
			sent.Add(ctx, 10, tb)
			bytesOut.Add(ctx, 1.25)
			inflight.Add(ctx, 5)
			inflight.Add(ctx, -2)
			for _, v := range []float64{1, 2, 7} {
				latency.Record(ctx, v, metric.WithAttributes(attribute.Int("shard", 1)))
				expLatency.Record(ctx, v/4)
			}
			depth.Record(ctx, 5)
			depth.Record(ctx, 9)
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatalf("ForceFlush: %v", err)
			}

			sums := []struct {
				name  string
				attrs map[string]string
				want  float64
				ok    bool
			}{
				{"records.sent", map[string]string{"table": "a"}, 7, true},
				{"records.sent", map[string]string{"table": "b", "retry": "true"}, 10, true},
				{"records.sent", map[string]string{"table": "b"}, 0, false}, // attributes must match exactly
				{"records.sent", nil, 0, false},
				{"bytes.sent", nil, 1.25, true},
				{"inflight", nil, 3, true},
				{"no.such", nil, 0, false},
			}
			for _, s := range sums {
				got, ok := c.SumValue(s.name, s.attrs)
				if got != s.want || ok != s.ok {
					t.Errorf("SumValue(%q, %v) = %v, %v; want %v, %v", s.name, s.attrs, got, ok, s.want, s.ok)
				}
			}
			if n, sum, ok := c.HistogramValue("latency", map[string]string{"shard": "1"}); n != 3 || sum != 10 || !ok {
				t.Errorf("HistogramValue = %d, %v, %v; want 3, 10, true", n, sum, ok)
			}
			if n, sum, ok := c.HistogramValue("exp.latency", nil); n != 3 || sum != 2.5 || !ok || c.Metric("exp.latency")[0].GetExponentialHistogram() == nil {
				t.Errorf("HistogramValue of an exponential histogram = %d, %v, %v; want 3, 2.5, true", n, sum, ok)
			}
			if v, ok := c.GaugeValue("queue.depth", nil); v != 9 || !ok {
				t.Errorf("GaugeValue = %v, %v; want 9, true", v, ok)
			}

			// A second export: cumulative values are the latest point.
			sent.Add(ctx, 5, ta)
			latency.Record(ctx, 10, metric.WithAttributes(attribute.Int("shard", 1)))
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatalf("ForceFlush: %v", err)
			}
			if v, _ := c.SumValue("records.sent", map[string]string{"table": "a"}); v != 12 {
				t.Errorf("SumValue after the second export = %v, want 12", v)
			}
			if n, sum, _ := c.HistogramValue("latency", map[string]string{"shard": "1"}); n != 4 || sum != 20 {
				t.Errorf("HistogramValue after the second export = %d, %v; want 4, 20", n, sum)
			}
			if got := len(c.Metric("records.sent")); got != 2 {
				t.Errorf("Metric(records.sent) has %d instances, want 2", got)
			}
			if got := c.Requests(SignalMetrics); got != 2 {
				t.Errorf("Requests(metrics) = %d, want 2", got)
			}

			rms := c.ResourceMetrics()
			if len(rms) != 2 {
				t.Fatalf("%d ResourceMetrics, want 2", len(rms))
			}
			res := Attributes(rms[0].GetResource().GetAttributes())
			if res["service.name"] != "svc-"+tr.name() || res["shard"] != "3" {
				t.Errorf("resource attributes = %v", res)
			}
			scope := rms[0].GetScopeMetrics()[0].GetScope()
			if scope.GetName() != "zbwrap.test" || scope.GetVersion() != "1.2.3" {
				t.Errorf("scope = %v", scope)
			}
		})
	}
}

func TestDeltaSeriesAddUp(t *testing.T) {
	for _, protocol := range []string{"grpc", "http"} {
		t.Run(protocol, func(t *testing.T) {
			c := start(t)
			ctx := timeout(t)
			mp := meterProvider(t, c, exportCfg{protocol: protocol, delta: true})
			m := mp.Meter("zbwrap.test")
			sent, _ := m.Int64Counter("records.sent")
			latency, _ := m.Int64Histogram("latency")
			for _, n := range []int64{3, 4} {
				sent.Add(ctx, n)
				latency.Record(ctx, n*10)
				if err := mp.ForceFlush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if v, ok := c.SumValue("records.sent", nil); v != 7 || !ok {
				t.Errorf("SumValue of a delta counter = %v, %v; want 7, true", v, ok)
			}
			if n, sum, ok := c.HistogramValue("latency", nil); n != 2 || sum != 70 || !ok {
				t.Errorf("HistogramValue of a delta histogram = %d, %v, %v; want 2, 70, true", n, sum, ok)
			}
		})
	}
}

func TestSpansArriveWithParentsAndResource(t *testing.T) {
	for _, tr := range append(transports, exportCfg{protocol: "http", json: true}, exportCfg{protocol: "http", json: true, gzip: true}) {
		t.Run(tr.name(), func(t *testing.T) {
			c := start(t)
			tp := tracerProvider(t, c, tr)
			tracer := tp.Tracer("zbwrap.test")

			ctx, parent := tracer.Start(timeout(t), "ingest", trace.WithAttributes(attribute.String("table", "main.default.t")))
			_, child := tracer.Start(ctx, "flush", trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(attribute.Int64("rows", 1000), attribute.StringSlice("cols", []string{"a", "b"})))
			child.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
			child.SetStatus(otelcodes.Error, "boom")
			child.End()
			parent.End()

			if got := c.Requests(SignalTraces); got != 2 {
				t.Fatalf("Requests(traces) = %d, want 2 (one per ended span)", got)
			}
			if got := len(c.Spans("")); got != 2 {
				t.Fatalf("Spans(\"\") has %d spans, want 2", got)
			}
			ps, cs := c.Spans("ingest"), c.Spans("flush")
			if len(ps) != 1 || len(cs) != 1 {
				t.Fatalf("got %d ingest and %d flush spans, want 1 each", len(ps), len(cs))
			}
			p, ch := ps[0], cs[0]
			psc, csc := parent.SpanContext(), child.SpanContext()
			traceID, parentID, childID := psc.TraceID(), psc.SpanID(), csc.SpanID()
			if !bytes.Equal(p.Proto.GetTraceId(), traceID[:]) || !bytes.Equal(ch.Proto.GetTraceId(), traceID[:]) {
				t.Errorf("trace ids %x, %x; want %x", p.Proto.GetTraceId(), ch.Proto.GetTraceId(), traceID)
			}
			if !bytes.Equal(p.Proto.GetSpanId(), parentID[:]) || len(p.Proto.GetParentSpanId()) != 0 {
				t.Errorf("parent span id %x (parent %x); want %x and no parent", p.Proto.GetSpanId(), p.Proto.GetParentSpanId(), parentID)
			}
			if !bytes.Equal(ch.Proto.GetSpanId(), childID[:]) || !bytes.Equal(ch.Proto.GetParentSpanId(), parentID[:]) {
				t.Errorf("child span id %x parent %x; want %x parent %x", ch.Proto.GetSpanId(), ch.Proto.GetParentSpanId(), childID, parentID)
			}
			if ch.Resource["service.name"] != "svc-"+tr.name() || ch.Resource["shard"] != "3" || ch.Scope != "zbwrap.test" {
				t.Errorf("child resource %v scope %q", ch.Resource, ch.Scope)
			}
			if p.Attrs["table"] != "main.default.t" || ch.Attrs["rows"] != "1000" || ch.Attrs["cols"] != "[a,b]" {
				t.Errorf("attributes: parent %v child %v", p.Attrs, ch.Attrs)
			}
			if ch.Proto.GetKind() != tracepb.Span_SPAN_KIND_CLIENT || p.Proto.GetKind() != tracepb.Span_SPAN_KIND_INTERNAL {
				t.Errorf("kinds: parent %v child %v", p.Proto.GetKind(), ch.Proto.GetKind())
			}
			if st := ch.Proto.GetStatus(); st.GetCode() != tracepb.Status_STATUS_CODE_ERROR || st.GetMessage() != "boom" {
				t.Errorf("child status %v", st)
			}
			if ev := ch.Proto.GetEvents(); len(ev) != 1 || ev[0].GetName() != "retry" || Attributes(ev[0].GetAttributes())["attempt"] != "2" {
				t.Errorf("child events %v", ev)
			}
			if ch.Proto.GetEndTimeUnixNano() < ch.Proto.GetStartTimeUnixNano() || ch.Proto.GetStartTimeUnixNano() == 0 {
				t.Errorf("child times %d..%d", ch.Proto.GetStartTimeUnixNano(), ch.Proto.GetEndTimeUnixNano())
			}
			if len(c.ResourceSpans()) != 2 {
				t.Errorf("%d ResourceSpans, want 2", len(c.ResourceSpans()))
			}
		})
	}
}

func logsRequest(records int) *collogspb.ExportLogsServiceRequest {
	sl := &logspb.ScopeLogs{}
	for i := range records {
		sl.LogRecords = append(sl.LogRecords, &logspb.LogRecord{Body: strAny(fmt.Sprint("line ", i))})
	}
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{ScopeLogs: []*logspb.ScopeLogs{sl}}}}
}

func grpcConn(t *testing.T, c *Collector) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(c.GRPCEndpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestLogsAreCounted(t *testing.T) {
	c := start(t)
	ctx := timeout(t)
	if _, err := collogspb.NewLogsServiceClient(grpcConn(t, c)).Export(ctx, logsRequest(3)); err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(logsRequest(2))
	if code, body := post(t, c.HTTPURL()+"/v1/logs", "application/x-protobuf", "", b); code != 200 {
		t.Fatalf("POST /v1/logs: %d %s", code, body)
	}
	c.SetFailure(codes.DataLoss)
	if _, err := collogspb.NewLogsServiceClient(grpcConn(t, c)).Export(ctx, logsRequest(4)); status.Code(err) != codes.DataLoss {
		t.Fatalf("logs export to a failing collector: %v, want DataLoss", err)
	}
	if c.Requests(SignalLogs) != 3 || c.LogRecords() != 5 {
		t.Errorf("Requests(logs) = %d, LogRecords = %d; want 3, 5", c.Requests(SignalLogs), c.LogRecords())
	}
}

func TestFailureFailsExportsUntilCleared(t *testing.T) {
	for _, protocol := range []string{"grpc", "http"} {
		t.Run(protocol, func(t *testing.T) {
			c := start(t, WithFailure(codes.PermissionDenied))
			ctx := timeout(t)
			mp := meterProvider(t, c, exportCfg{protocol: protocol})
			sent, _ := mp.Meter("zbwrap.test").Int64Counter("records.sent")
			sent.Add(ctx, 1)

			err := mp.ForceFlush(ctx)
			switch {
			case err == nil:
				t.Fatal("ForceFlush succeeded against a failing collector")
			case protocol == "grpc" && status.Code(errors.Unwrap(err)) != codes.PermissionDenied && !strings.Contains(err.Error(), "PermissionDenied"):
				t.Errorf("gRPC export error %v, want PermissionDenied", err)
			case protocol == "http" && !strings.Contains(err.Error(), "403"):
				t.Errorf("HTTP export error %v, want status 403", err)
			}
			if c.Requests(SignalMetrics) != 1 || len(c.ResourceMetrics()) != 0 {
				t.Errorf("after a failed export: %d requests, %d stored; want 1, 0", c.Requests(SignalMetrics), len(c.ResourceMetrics()))
			}

			c.SetFailure(codes.OK)
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatalf("ForceFlush after SetFailure(OK): %v", err)
			}
			if v, ok := c.SumValue("records.sent", nil); v != 1 || !ok {
				t.Errorf("SumValue after recovery = %v, %v; want 1, true", v, ok)
			}
		})
	}
}

func TestRetryableFailureWithoutRetry(t *testing.T) {
	for _, protocol := range []string{"grpc", "http"} {
		t.Run(protocol, func(t *testing.T) {
			c := start(t, WithFailure(codes.Unavailable))
			ctx := timeout(t)
			mp := meterProvider(t, c, exportCfg{protocol: protocol, noRetry: true})
			sent, _ := mp.Meter("zbwrap.test").Int64Counter("records.sent")
			sent.Add(ctx, 1)
			if err := mp.ForceFlush(ctx); err == nil {
				t.Fatal("ForceFlush succeeded against an unavailable collector")
			}
			if c.Requests(SignalMetrics) != 1 {
				t.Errorf("Requests(metrics) = %d, want 1", c.Requests(SignalMetrics))
			}
		})
	}
}

// A client with a deadline is not held by a collector that never answers.
func TestDelayedExportsHitTheClientDeadline(t *testing.T) {
	for _, protocol := range []string{"grpc", "http"} {
		t.Run(protocol, func(t *testing.T) {
			c := start(t, WithDelay(time.Hour))
			ctx := timeout(t)
			mp := meterProvider(t, c, exportCfg{protocol: protocol, timeout: 200 * time.Millisecond, noRetry: true})
			sent, _ := mp.Meter("zbwrap.test").Int64Counter("records.sent")
			sent.Add(ctx, 1)
			if err := mp.ForceFlush(ctx); err == nil {
				t.Fatal("ForceFlush succeeded although the collector holds every export for an hour")
			}
			if c.Requests(SignalMetrics) != 1 || len(c.ResourceMetrics()) != 0 {
				t.Errorf("%d requests, %d stored; want 1, 0", c.Requests(SignalMetrics), len(c.ResourceMetrics()))
			}
			c.SetDelay(0)
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatalf("ForceFlush after SetDelay(0): %v", err)
			}
		})
	}
}

func TestCloseAnswersDelayedExports(t *testing.T) {
	for _, protocol := range []string{"grpc", "http"} {
		t.Run(protocol, func(t *testing.T) {
			c := start(t, WithDelay(time.Hour))
			ctx := timeout(t)
			mp := meterProvider(t, c, exportCfg{protocol: protocol, noRetry: true})
			sent, _ := mp.Meter("zbwrap.test").Int64Counter("records.sent")
			sent.Add(ctx, 1)
			flushed := make(chan error, 1)
			go func() { flushed <- mp.ForceFlush(ctx) }()
			if err := c.WaitFor(ctx, func(c *Collector) bool { return c.Requests(SignalMetrics) == 1 }); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := <-flushed; err == nil {
				t.Error("an export held when the collector closed succeeded")
			}
		})
	}
}

func TestWaitFor(t *testing.T) {
	c := start(t)
	ctx := timeout(t)
	conn := grpcConn(t, c)

	if err := c.WaitFor(ctx, func(*Collector) bool { return true }); err != nil {
		t.Errorf("WaitFor of a true condition: %v", err)
	}

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := c.WaitFor(short, func(*Collector) bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor past its deadline = %v, want DeadlineExceeded", err)
	}

	// Wakes on exports from another goroutine.
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 3 {
			collogspb.NewLogsServiceClient(conn).Export(ctx, logsRequest(1))
		}
	})
	if err := c.WaitFor(ctx, func(c *Collector) bool { return c.LogRecords() == 3 }); err != nil {
		t.Errorf("WaitFor three log records: %v", err)
	}
	wg.Wait()

	go func() {
		c.WaitFor(ctx, func(*Collector) bool { return false }) // ends with Close
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFor(ctx, func(*Collector) bool { return false }); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitFor after Close = %v, want ErrClosed", err)
	}
	if err := c.WaitFor(ctx, func(c *Collector) bool { return c.LogRecords() == 3 }); err != nil {
		t.Errorf("WaitFor of a condition true after Close = %v", err)
	}
}

func TestResetAndOnExport(t *testing.T) {
	var mu sync.Mutex
	var got []string
	c := start(t, WithOnExport(func(s Signal, m proto.Message) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s:%s", s, m.ProtoReflect().Descriptor().Name()))
	}))
	ctx := timeout(t)
	conn := grpcConn(t, c)
	collogspb.NewLogsServiceClient(conn).Export(ctx, logsRequest(1))
	colmetricspb.NewMetricsServiceClient(conn).Export(ctx, &colmetricspb.ExportMetricsServiceRequest{})
	if _, err := coltracepb.NewTraceServiceClient(conn).Export(ctx, spansRequest("s")); err != nil {
		t.Fatal(err)
	}
	c.SetFailure(codes.Internal) // failed exports are not passed on
	if _, err := coltracepb.NewTraceServiceClient(conn).Export(ctx, spansRequest("s")); status.Code(err) != codes.Internal {
		t.Fatalf("export to a failing collector: %v, want Internal", err)
	}
	mu.Lock()
	want := "logs:ExportLogsServiceRequest metrics:ExportMetricsServiceRequest traces:ExportTraceServiceRequest"
	if strings.Join(got, " ") != want {
		t.Errorf("OnExport saw %q, want %q", strings.Join(got, " "), want)
	}
	mu.Unlock()

	if len(c.Spans("s")) != 1 || c.Requests(SignalTraces) != 2 {
		t.Fatalf("before Reset: %d spans, %d requests", len(c.Spans("s")), c.Requests(SignalTraces))
	}
	c.Reset()
	if len(c.Spans("")) != 0 || c.Requests(SignalTraces) != 0 || c.LogRecords() != 0 || len(c.ResourceMetrics()) != 0 {
		t.Error("Reset left data or counters behind")
	}
}

func spansRequest(names ...string) *coltracepb.ExportTraceServiceRequest {
	ss := &tracepb.ScopeSpans{}
	for i, n := range names {
		ss.Spans = append(ss.Spans, &tracepb.Span{
			Name:    n,
			TraceId: bytes.Repeat([]byte{0xab}, 16),
			SpanId:  []byte{1, 2, 3, 4, 5, 6, 7, byte(i)},
		})
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{ss}}}}
}

func TestNewCollectorErrors(t *testing.T) {
	holder := start(t) // holds a port, and checks that failed starts leave nothing running
	_, port, _ := net.SplitHostPort(holder.GRPCEndpoint())
	busy := "127.0.0.1:" + port
	free := "127.0.0.1:0"
	cases := []struct {
		name string
		opts []Option
		want string
	}{
		{"failure code", []Option{WithFailure(17)}, "17 is not a gRPC code"},
		{"negative delay", []Option{WithDelay(-time.Second)}, "negative"},
		{"bad grpc address", []Option{WithGRPCAddr("127.0.0.1:notaport")}, `OTLP/gRPC on "127.0.0.1:notaport"`},
		{"busy grpc address", []Option{WithGRPCAddr(busy)}, "OTLP/gRPC on " + fmt.Sprintf("%q", busy)},
		{"busy http address", []Option{WithGRPCAddr(free), WithHTTPAddr(busy)}, "OTLP/HTTP on " + fmt.Sprintf("%q", busy)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCollector(t.Context(), tc.opts...)
			if err == nil {
				c.Close()
				t.Fatal("NewCollector succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	c := start(t, WithGRPCAddr("127.0.0.1:0"), WithHTTPAddr("127.0.0.1:0"))
	if !strings.HasPrefix(c.GRPCEndpoint(), "127.0.0.1:") || c.GRPCURL() != "http://"+c.GRPCEndpoint() {
		t.Errorf("GRPCEndpoint %q, GRPCURL %q", c.GRPCEndpoint(), c.GRPCURL())
	}
	if !strings.HasPrefix(c.HTTPURL(), "http://127.0.0.1:") || c.HTTPURL() == c.GRPCURL() {
		t.Errorf("HTTPURL %q (gRPC %q)", c.HTTPURL(), c.GRPCURL())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A server that stops on its own (here: its listener closed under it)
// reports why from Close.
func TestCloseReportsServeErrors(t *testing.T) {
	for _, which := range []string{"grpc", "http"} {
		t.Run(which, func(t *testing.T) {
			checkLeaks(t)
			c, err := NewCollector(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			lis := c.grpcLis
			if which == "http" {
				lis = c.httpLis
			}
			lis.Close()
			if err := c.WaitFor(timeout(t), func(c *Collector) bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.serveErr != nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err == nil || !strings.Contains(err.Error(), "telemetrytest: serve:") {
				t.Errorf("Close = %v, want the serve error", err)
			}
		})
	}
}
