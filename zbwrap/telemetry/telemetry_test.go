package telemetry

import (
	"context"
	"errors"
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

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/telemetrytest"
)

const table = "main.default.events"

// inMemory is a Telemetry on the caller's providers: a manual reader and a
// span recorder.
type inMemory struct {
	*Telemetry
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newInMemory(t *testing.T, inflight func() (int64, int64)) *inMemory {
	t.Helper()
	m := &inMemory{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	m.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(m.spans))
	tel, err := New(context.Background(), Config{
		Table:          table,
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(m.reader)),
		TracerProvider: m.tp,
		Inflight:       inflight,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	m.Telemetry = tel
	return m
}

func (m *inMemory) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	ms, err := telemetrytest.Collect(context.Background(), m.reader)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return ms
}

// counter is a counter's value for this table and attrs; -1 if none.
func counter(t *testing.T, ms map[string]metricdata.Metrics, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	if v, ok := telemetrytest.Int64Sum(ms, name, append(attrs, AttrTable.String(table))...); ok {
		return v
	}
	return -1
}

func TestCountersAndHistograms(t *testing.T) {
	m := newInMemory(t, func() (int64, int64) { return 7, 700 })
	ctx := context.Background()
	m.BatchDone(ctx, 10)
	m.BatchDone(ctx, 0)
	m.RowsFailed(ctx, "conversion", 2)
	m.RowsFailed(ctx, "conversion", 3)
	m.RowsFailed(ctx, "connection", 1)
	m.RowsFailed(ctx, "connection", 0)
	m.TokenFetched("authentication", nil)
	m.TokenFetched("token_refresh", errors.New("refused"))
	obs := m.NewStream(ctx)
	obs.OnRequestWritten(3, 300, false)
	obs.OnRequestWritten(3, 300, true)
	obs.OnRequestAcked(3, 300, 2*time.Millisecond)
	obs.OnRetry(1, time.Millisecond, nil)

	ms := m.metrics(t)
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{MetricBatchesSent, nil, 2},
		{MetricRowsAcknowledged, nil, 10},
		{MetricRowsFailed, []attribute.KeyValue{AttrErrorType.String("conversion")}, 5},
		{MetricRowsFailed, []attribute.KeyValue{AttrErrorType.String("connection")}, 1},
		{MetricTokenRefreshes, nil, 1},
		{MetricTokenRefreshes, []attribute.KeyValue{AttrErrorType.String("token_refresh")}, 1},
		{MetricBytesSent, nil, 600},
		{MetricRetries, nil, 1},
	} {
		if got := counter(t, ms, c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.attrs, got, c.want)
		}
	}
	units := map[string]string{MetricBytesSent: "By", MetricAckLatency: "s", MetricInflightBytes: "By", MetricRowsFailed: "{row}"}
	for name, unit := range units {
		if ms[name].Unit != unit {
			t.Errorf("%s unit %q, want %q", name, ms[name].Unit, unit)
		}
	}
	h := ms[MetricAckLatency].Data.(metricdata.Histogram[float64]).DataPoints
	if len(h) != 1 || h[0].Count != 1 || h[0].Sum != 0.002 {
		t.Errorf("ack latency %+v", h)
	}
	for name, want := range map[string]int64{MetricInflightRecords: 7, MetricInflightBytes: 700} {
		g := ms[name].Data.(metricdata.Gauge[int64]).DataPoints
		if len(g) != 1 || g[0].Value != want {
			t.Errorf("%s %+v, want %d", name, g, want)
		}
	}
	// The gauges are unregistered by Shutdown: the caller's provider no
	// longer calls back into a closed engine.
	if err := m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, ok := m.metrics(t)[MetricInflightRecords]; ok {
		t.Errorf("in-flight gauges still observed after Shutdown")
	}
}

// A send's span tree: encode, wait, and a recovery (with its reopen) while
// the send waits; a send that starts waiting mid-recovery gets one too.
func TestSendSpans(t *testing.T) {
	m := newInMemory(t, nil)
	ctx, parent := m.tp.Tracer("test").Start(context.Background(), "caller")
	sctx, send := m.StartSend(ctx, SpanSendBatch, 5)
	obs := m.NewStream(sctx)
	obs.OnCallOpened("s-1", time.Millisecond)
	send.Encoded(time.Now().Add(-time.Millisecond), 120, 1, nil)
	send.WaitStart(obs)
	obs.OnRetry(1, 10*time.Millisecond, errors.New("unavailable"))
	obs.OnRetry(2, 20*time.Millisecond, nil)
	_, late := m.StartSend(ctx, SpanSendBatch, 1)
	late.WaitStart(obs) // joins the recovery in progress
	obs.OnCallOpened("s-2", time.Millisecond)
	send.WaitEnd("")
	late.WaitEnd("")
	send.End(Outcome{Offset: -1, Bytes: 120, Attempts: 2, RowsFailed: 1})
	late.End(Outcome{Offset: 3, Kind: "connection", Msg: "broken"})
	parent.End()

	byID := map[string]sdktrace.ReadOnlySpan{}
	kids := map[string][]string{}
	for _, s := range m.spans.Ended() {
		byID[s.SpanContext().SpanID().String()] = s
		kids[s.Parent().SpanID().String()] = append(kids[s.Parent().SpanID().String()], s.Name())
	}
	sendID := send.span.SpanContext().SpanID().String()
	got := strings.Join(kids[sendID], ",")
	for _, n := range []string{SpanStreamOpen, SpanEncode, SpanWaitForAcks, SpanRecovery} {
		if !strings.Contains(got, n) {
			t.Errorf("send children %q lack %s", got, n)
		}
	}
	recoveries := 0
	for id, s := range byID {
		if s.Name() != SpanRecovery {
			continue
		}
		recoveries++
		if strings.Join(kids[id], ",") != SpanStreamOpen {
			t.Errorf("recovery children %v", kids[id])
		}
		if s.Parent().SpanID().String() == sendID && len(s.Events()) != 2 {
			t.Errorf("first send's recovery has %d retry events, want 2", len(s.Events()))
		}
		if s.Parent().SpanID().String() == late.span.SpanContext().SpanID().String() {
			// The retry under way when the late send joined.
			ev := s.Events()
			if len(ev) != 1 || ev[0].Name != "retry" || !slices.Contains(ev[0].Attributes, AttrAttempt.Int(2)) {
				t.Errorf("late send's recovery events %v, want the retry under way (attempt 2)", ev)
			}
		}
	}
	if recoveries != 2 {
		t.Errorf("%d recovery spans, want one per waiting send", recoveries)
	}
	lateSpan := byID[late.span.SpanContext().SpanID().String()]
	if lateSpan.Status().Code != codes.Error || lateSpan.Status().Description != "broken" {
		t.Errorf("failed send status %v", lateSpan.Status())
	}
	ms := m.metrics(t)
	if got := counter(t, ms, MetricRecoveries); got != 1 {
		t.Errorf("recoveries %d, want 1", got)
	}
	if got := counter(t, ms, MetricRetries); got != 2 {
		t.Errorf("retries %d, want 2", got)
	}
}

// A recovery that does not end before the send fails is ended, in error,
// with the wait; a conversion failure marks the encode span.
func TestFailedRecoveryAndEncode(t *testing.T) {
	m := newInMemory(t, nil)
	ctx, send := m.StartSend(context.Background(), SpanSendBatch, 5)
	send.Encoded(time.Now(), 0, 5, errors.New("bad schema"))
	obs := m.NewStream(ctx)
	obs.OnCallOpened("s", 0)
	send.WaitStart(obs)
	obs.OnRetry(1, 0, errors.New("down"))
	send.WaitEnd("retry_exhausted")
	send.End(Outcome{Offset: -1, Kind: "retry_exhausted", Msg: "gave up"})
	// A reopen with nobody waiting and no recovery (a close signal) makes
	// no span.
	obs.OnCallOpened("s2", 0)
	statuses := map[string]codes.Code{}
	for _, s := range m.spans.Ended() {
		statuses[s.Name()] = s.Status().Code
	}
	for _, n := range []string{SpanEncode, SpanRecovery, SpanWaitForAcks, SpanSendBatch} {
		if statuses[n] != codes.Error {
			t.Errorf("%s status %v, want Error", n, statuses[n])
		}
	}
	if len(m.spans.Ended()) != 5 { // send, encode, open, wait, recovery
		t.Errorf("%d spans, want 5", len(m.spans.Ended()))
	}
}

// The providers made for a Telemetry are shut down once, with it; the
// caller's are not.
func TestOwnership(t *testing.T) {
	var calls int
	tel, err := New(context.Background(), Config{Table: table, Shutdown: func(context.Context) error {
		calls++
		return errors.New("flush failed")
	}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, send := tel.StartSend(context.Background(), SpanSendBatch, 1)
	send.End(Outcome{Offset: -1})
	tel.BatchDone(context.Background(), 1)
	if err := tel.Shutdown(context.Background()); err == nil || !strings.Contains(err.Error(), "flush failed") {
		t.Fatalf("Shutdown: %v, want the providers' error", err)
	}
	if err := tel.Shutdown(context.Background()); err == nil || calls != 1 {
		t.Errorf("second Shutdown: %v after %d calls, want the first result", err, calls)
	}

	m := newInMemory(t, nil)
	if len(m.shutdowns) != 0 {
		t.Fatalf("caller's providers would be shut down")
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, s := m.tp.Tracer("after").Start(context.Background(), "still recording")
	s.End()
	if len(m.spans.Ended()) != 1 {
		t.Errorf("the caller's tracer provider stopped recording")
	}
	var nilTel *Telemetry
	if err := nilTel.Shutdown(context.Background()); err != nil {
		t.Errorf("nil Shutdown: %v", err)
	}
}
