package telemetry

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/telemetrytest"
)

// checkLeaks fails the test if a goroutine that was not running when it
// began is still running 5 s after it ended. (goleak.Find alone looks for
// about half a second, short for goroutines winding down under -race.)
func checkLeaks(t testing.TB) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		err := goleak.Find(ignore)
		for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
			err = goleak.Find(ignore)
		}
		if err != nil {
			t.Error(err)
		}
	})
}

func newCollector(t *testing.T) *telemetrytest.Collector {
	t.Helper()
	c, err := telemetrytest.NewCollector(context.Background())
	if err != nil {
		t.Fatalf("NewCollector: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// record sends a little of everything through tel.
func record(tel *Telemetry) {
	ctx := context.Background()
	sctx, send := tel.StartSend(ctx, SpanSendBatch, 3)
	send.Encoded(time.Now(), 30, 0, nil)
	obs := tel.NewStream(sctx)
	obs.OnCallOpened("s", time.Millisecond)
	obs.OnRequestWritten(3, 30, false)
	obs.OnRequestAcked(3, 30, time.Millisecond)
	send.End(Outcome{Offset: -1, Bytes: 30})
	tel.BatchDone(ctx, 3)
}

// Exported over OTLP/gRPC and OTLP/HTTP to a real receiver, from the
// endpoint setting and from the standard environment variables.
func TestExportOTLP(t *testing.T) {
	checkLeaks(t)
	col := newCollector(t)
	for _, c := range []struct {
		name, protocol, endpoint, env, envProtocol string
	}{
		{"grpc url", ProtocolGRPC, col.GRPCURL(), "", ""},
		{"http url", ProtocolHTTP, col.HTTPURL(), "", ""},
		{"grpc from env", "", "", col.GRPCURL(), ""},
		{"http from env", "", "", col.HTTPURL(), "http/protobuf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			col.Reset()
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.env)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", c.envProtocol)
			t.Setenv("OTEL_SERVICE_NAME", "ingest-job")
			tel, err := New(context.Background(), Config{Table: table, OTLPEndpoint: c.endpoint, OTLPProtocol: c.protocol})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			record(tel)
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			attrs := map[string]string{string(AttrTable): table}
			if v, ok := col.SumValue(MetricRowsAcknowledged, attrs); !ok || v != 3 {
				t.Errorf("rows acknowledged %v %v, want 3", v, ok)
			}
			if v, ok := col.SumValue(MetricBytesSent, attrs); !ok || v != 30 {
				t.Errorf("bytes sent %v %v, want 30", v, ok)
			}
			if n, _, ok := col.HistogramValue(MetricAckLatency, attrs); !ok || n != 1 {
				t.Errorf("ack latency count %d %v", n, ok)
			}
			sends := col.Spans(SpanSendBatch)
			if len(sends) != 1 {
				t.Fatalf("%d send spans", len(sends))
			}
			s := sends[0]
			if s.Scope != ScopeName || s.Resource["service.name"] != "ingest-job" || s.Attrs[string(AttrTable)] != table {
				t.Errorf("span scope %q resource %v attrs %v", s.Scope, s.Resource, s.Attrs)
			}
			for _, child := range []string{SpanEncode, SpanStreamOpen} {
				got := col.Spans(child)
				if len(got) != 1 || string(got[0].Proto.ParentSpanId) != string(s.Proto.SpanId) {
					t.Errorf("%s: %d spans, not under the send", child, len(got))
				}
			}
		})
	}
}

// A collector that hangs costs the send path nothing, and Shutdown is
// bounded by its context. (The SDK's exporter goroutines finish the export
// in hand on their own timeouts.)
func TestCollectorDown(t *testing.T) {
	col := newCollector(t)
	col.SetDelay(time.Second) // far longer than Shutdown may wait
	tel, err := New(context.Background(), Config{Table: table, OTLPEndpoint: col.GRPCURL()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for range 1000 {
		record(tel)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := tel.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown against a hung collector: %v, want the deadline", err)
	}
}
