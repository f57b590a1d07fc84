package otelsetup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/telemetrytest"
)

const table = "main.default.events"

// checkLeaks fails the test if a goroutine that was not running when it
// began is still running 15 s after it ended. (goleak.Find alone looks for
// about half a second, short for goroutines of closed connections winding
// down under -race on a loaded machine.)
func checkLeaks(t testing.TB) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		err := goleak.Find(ignore)
		for deadline := time.Now().Add(15 * time.Second); err != nil && time.Now().Before(deadline); {
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

// newTelemetry is the engine's Telemetry on the providers New makes of cfg
// (both signals), which its Shutdown shuts down.
func newTelemetry(t *testing.T, cfg telemetry.ExportConfig) *telemetry.Telemetry {
	t.Helper()
	cfg.Metrics, cfg.Traces = true, true
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tel, err := telemetry.New(context.Background(), telemetry.Config{
		Table: table, MeterProvider: p.MeterProvider, TracerProvider: p.TracerProvider, Shutdown: p.Shutdown,
	})
	if err != nil {
		t.Fatalf("telemetry.New: %v", err)
	}
	return tel
}

// record sends a little of everything through tel.
func record(tel *telemetry.Telemetry) {
	ctx := context.Background()
	sctx, send := tel.StartSend(ctx, telemetry.SpanSendBatch, 3)
	send.Encoded(time.Now(), 30, 0, nil)
	obs := tel.NewStream(sctx)
	obs.OnCallOpened("s", time.Millisecond)
	obs.OnRequestWritten(3, 30, false)
	obs.OnRequestAcked(3, 30, time.Millisecond)
	send.End(telemetry.Outcome{Offset: -1, Bytes: 30})
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
		{"grpc url", telemetry.ProtocolGRPC, col.GRPCURL(), "", ""},
		{"http url", telemetry.ProtocolHTTP, col.HTTPURL(), "", ""},
		{"grpc from env", "", "", col.GRPCURL(), ""},
		{"http from env", "", "", col.HTTPURL(), "http/protobuf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			col.Reset()
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.env)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", c.envProtocol)
			t.Setenv("OTEL_SERVICE_NAME", "ingest-job")
			tel := newTelemetry(t, telemetry.ExportConfig{OTLPEndpoint: c.endpoint, OTLPProtocol: c.protocol})
			record(tel)
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			attrs := map[string]string{string(telemetry.AttrTable): table}
			if v, ok := col.SumValue(telemetry.MetricRowsAcknowledged, attrs); !ok || v != 3 {
				t.Errorf("rows acknowledged %v %v, want 3", v, ok)
			}
			if v, ok := col.SumValue(telemetry.MetricBytesSent, attrs); !ok || v != 30 {
				t.Errorf("bytes sent %v %v, want 30", v, ok)
			}
			if n, _, ok := col.HistogramValue(telemetry.MetricAckLatency, attrs); !ok || n != 1 {
				t.Errorf("ack latency count %d %v", n, ok)
			}
			sends := col.Spans(telemetry.SpanSendBatch)
			if len(sends) != 1 {
				t.Fatalf("%d send spans", len(sends))
			}
			s := sends[0]
			if s.Scope != telemetry.ScopeName || s.Resource["service.name"] != "ingest-job" || s.Attrs[string(telemetry.AttrTable)] != table {
				t.Errorf("span scope %q resource %v attrs %v", s.Scope, s.Resource, s.Attrs)
			}
			for _, child := range []string{telemetry.SpanEncode, telemetry.SpanStreamOpen} {
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
	tel := newTelemetry(t, telemetry.ExportConfig{OTLPEndpoint: col.GRPCURL()})
	for range 1000 {
		record(tel)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := tel.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown against a hung collector: %v, want the deadline", err)
	}
}

// The stdout exporters print what was recorded; Shutdown flushes them.
func TestStdout(t *testing.T) {
	var out bytes.Buffer
	tel := newTelemetry(t, telemetry.ExportConfig{Stdout: true, StdoutWriter: &out})
	_, send := tel.StartSend(context.Background(), telemetry.SpanSendBatch, 1)
	send.End(telemetry.Outcome{Offset: -1})
	tel.BatchDone(context.Background(), 1)
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, want := range []string{`"Name":"zerobus.send_batch"`, `"Name":"zerobus.batches.sent"`, `"zerobus.table"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %s:\n%.2000s", want, out.String())
		}
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// mapEnv is an environment of its own, as ExportConfig.Getenv.
func mapEnv(m map[string]string) environment {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(context.Background(), telemetry.ExportConfig{OTLPProtocol: "udp", Metrics: true}); err == nil || !strings.Contains(err.Error(), `"udp"`) {
		t.Errorf("bad protocol: %v", err)
	}
	if got := mapEnv(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}).protocol(); got != telemetry.ProtocolHTTP {
		t.Errorf("protocol from env %q", got)
	}
	if got := mapEnv(nil).protocol(); got != telemetry.ProtocolGRPC {
		t.Errorf("default protocol %q", got)
	}
	if mapEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": " "}).hasEndpoint() {
		t.Errorf("endpoint found in an empty environment")
	}
	if !mapEnv(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://localhost:1"}).hasEndpoint() {
		t.Errorf("traces endpoint variable ignored")
	}
}

// Every variable the exporters would read is resolved from the lookup,
// defaults included, so the process environment has no say.
func TestOTLPOptionsFromLookup(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://process-env:1")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "from=process")
	for _, c := range []struct {
		name          string
		env           map[string]string
		signal, proto string
		setting       string
		url, hostPort string
		headers       string
		timeout       time.Duration
		insecure      bool
	}{
		{name: "defaults grpc", signal: signalMetrics, proto: "grpc", hostPort: "localhost:4317", timeout: 10 * time.Second},
		{name: "defaults http", signal: signalTraces, proto: "http", hostPort: "localhost:4318", timeout: 10 * time.Second},
		{name: "setting wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:2"},
			signal: signalMetrics, proto: "http", setting: "https://set:3/", url: "https://set:3/v1/metrics", timeout: 10 * time.Second},
		{name: "base url gets the signal path", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:2"},
			signal: signalTraces, proto: "http", url: "http://env:2/v1/traces", timeout: 10 * time.Second},
		{name: "signal url as given", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:2", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:4/custom"},
			signal: signalMetrics, proto: "http", url: "http://m:4/custom", timeout: 10 * time.Second},
		{name: "grpc url", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:2"},
			signal: signalMetrics, proto: "grpc", url: "http://env:2", timeout: 10 * time.Second},
		{name: "headers timeout insecure", env: map[string]string{
			"OTEL_EXPORTER_OTLP_HEADERS": "a=1, b = x%20y ,bad", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "t=2",
			"OTEL_EXPORTER_OTLP_TIMEOUT": "1500", "OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"},
			signal: signalMetrics, proto: "grpc", hostPort: "collector:4317", headers: "a=1,b=x y", timeout: 1500 * time.Millisecond, insecure: true},
		{name: "signal headers first", env: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "t=2", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
			signal: signalTraces, proto: "grpc", hostPort: "localhost:4317", headers: "t=2", timeout: 10 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := mapEnv(c.env).otlp(c.signal, c.proto, c.setting)
			var hs []string
			for k, v := range o.headers {
				hs = append(hs, k+"="+v)
			}
			slices.Sort(hs)
			for _, f := range []struct {
				field     string
				got, want any
			}{
				{"url", o.url, c.url},
				{"hostPort", o.hostPort, c.hostPort},
				{"headers", strings.Join(hs, ","), c.headers},
				{"timeout", o.timeout, c.timeout},
				{"insecure", o.insecure, c.insecure},
			} {
				if f.got != f.want {
					t.Errorf("%s = %v, want %v", f.field, f.got, f.want)
				}
			}
		})
	}
}

// Two exporters with two lookups export to two collectors, and the process
// environment is left as it was.
func TestTwoLookupsTwoCollectors(t *testing.T) {
	checkLeaks(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // never used
	before := os.Environ()
	cols := []*telemetrytest.Collector{newCollector(t), newCollector(t)}
	for i, col := range cols {
		tel := newTelemetry(t, telemetry.ExportConfig{Getenv: mapEnv(map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": col.HTTPURL(),
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			"OTEL_SERVICE_NAME":           fmt.Sprintf("job-%d", i),
		})})
		record(tel)
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	for i, col := range cols {
		sends := col.Spans(telemetry.SpanSendBatch)
		if len(sends) != 1 {
			t.Fatalf("collector %d: %d send spans, want 1", i, len(sends))
		}
		if got, want := sends[0].Resource["service.name"], fmt.Sprintf("job-%d", i); got != want {
			t.Errorf("collector %d: service.name %q, want %q", i, got, want)
		}
		if v, ok := col.SumValue(telemetry.MetricRowsAcknowledged, map[string]string{string(telemetry.AttrTable): table}); !ok || v != 3 {
			t.Errorf("collector %d: rows acknowledged %v %v, want 3", i, v, ok)
		}
	}
	if after := os.Environ(); !slices.Equal(before, after) {
		t.Errorf("the process environment changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestResourceReadsTheEnvironmentEachTime(t *testing.T) {
	env := map[string]string{}
	service := func() string {
		v, _ := mapEnv(env).resource(context.Background()).Set().Value("service.name")
		return v.AsString()
	}
	env["OTEL_SERVICE_NAME"] = "first"
	if got := service(); got != "first" {
		t.Fatalf("service.name %q", got)
	}
	env["OTEL_SERVICE_NAME"] = "second"
	if got := service(); got != "second" {
		t.Fatalf("service.name %q after a change", got)
	}
	delete(env, "OTEL_SERVICE_NAME")
	t.Setenv("OTEL_SERVICE_NAME", "process-env") // not the lookup's
	if got := service(); !strings.HasPrefix(got, "unknown_service:") {
		t.Fatalf("service.name %q without the variable", got)
	}
	env["OTEL_RESOURCE_ATTRIBUTES"] = "service.name=from-attributes,deployment.environment=c%20i"
	if got := service(); got != "from-attributes" {
		t.Fatalf("service.name %q from OTEL_RESOURCE_ATTRIBUTES", got)
	}
	if v, _ := mapEnv(env).resource(context.Background()).Set().Value("deployment.environment"); v.AsString() != "c i" {
		t.Fatalf("deployment.environment %q, want the value decoded", v.AsString())
	}
	env["OTEL_SERVICE_NAME"] = "named"
	if got := service(); got != "named" {
		t.Fatalf("service.name %q: OTEL_SERVICE_NAME must win over OTEL_RESOURCE_ATTRIBUTES", got)
	}
	// Malformed attributes keep the rest of the description.
	env["OTEL_RESOURCE_ATTRIBUTES"] = "not-a-pair"
	res := mapEnv(env).resource(context.Background())
	if v, ok := res.Set().Value("telemetry.distro.name"); !ok || v.AsString() != "pyzerobus" {
		t.Fatalf("resource %v", res)
	}
	if v, ok := res.Set().Value("telemetry.sdk.language"); !ok || v.AsString() != "go" {
		t.Fatalf("resource %v", res)
	}
}

// An endpoint given as host:port (no scheme) is TLS unless
// OTEL_EXPORTER_OTLP_INSECURE says plaintext: with it, both protocols reach
// a plaintext collector.
func TestExportToHostPortInsecure(t *testing.T) {
	checkLeaks(t)
	col := newCollector(t)
	for _, c := range []struct{ protocol, url string }{
		{telemetry.ProtocolGRPC, col.GRPCURL()},
		{telemetry.ProtocolHTTP, col.HTTPURL()},
	} {
		t.Run(c.protocol, func(t *testing.T) {
			col.Reset()
			t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
			hostPort := strings.TrimPrefix(c.url, "http://")
			tel := newTelemetry(t, telemetry.ExportConfig{OTLPEndpoint: hostPort, OTLPProtocol: c.protocol})
			record(tel)
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			attrs := map[string]string{string(telemetry.AttrTable): table}
			if v, ok := col.SumValue(telemetry.MetricRowsAcknowledged, attrs); !ok || v != 3 {
				t.Errorf("rows acknowledged %v %v, want 3 at %s", v, ok, hostPort)
			}
			if len(col.Spans(telemetry.SpanSendBatch)) != 1 {
				t.Errorf("no send span at %s", hostPort)
			}
		})
	}
}
