package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the engine's meter and tracer.
const ScopeName = "github.com/pyzerobus/pyzerobus/zbwrap"

// Attribute keys.
const (
	// AttrTable names the table on every instrument and span.
	AttrTable = attribute.Key("zerobus.table")
	// AttrErrorType is the error kind of a failure (OpenTelemetry's
	// error.type): Conversion, Transmission, ...
	AttrErrorType = attribute.Key("error.type")
)

// Protocols of ExportConfig.OTLPProtocol.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

// DefaultShutdownTimeout bounds Shutdown when its context has no earlier
// deadline, so that an unreachable collector cannot hold up Close.
const DefaultShutdownTimeout = 2 * time.Second

// Config says where the engine's telemetry is recorded.
type Config struct {
	// Table is the value of the zerobus.table attribute.
	Table string
	// Version is the instrumentation scope's version: the engine's.
	Version string
	// MeterProvider and TracerProvider record the metrics and spans; nil
	// records nothing for that signal.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// Shutdown, if set, flushes and shuts down the providers made for this
	// Telemetry (by Exporters); Telemetry.Shutdown calls it. Providers of
	// the caller's are never shut down here.
	Shutdown func(context.Context) error
	// Inflight, if set, reports what the in-flight windows hold now (records,
	// bytes); it backs the in-flight gauges and is called at collection.
	Inflight func() (records, bytes int64)
	// Logger, if set, receives the export failures of the providers made
	// for this Telemetry (Shutdown set) instead of stderr, until Shutdown;
	// see errors.go.
	Logger *slog.Logger
}

// ExportConfig is what the observability_* settings ask of Exporters.
type ExportConfig struct {
	// OTLPEndpoint is the collector: a URL ("http://localhost:4317" is
	// plaintext, "https://..." uses TLS) or host:port (TLS). Empty leaves it
	// to the OTEL_EXPORTER_OTLP_ENDPOINT variables and the exporters'
	// defaults (localhost:4317 for grpc, localhost:4318 for http).
	OTLPEndpoint string
	// OTLPProtocol is "grpc" or "http" (protobuf over HTTP). Empty reads
	// OTEL_EXPORTER_OTLP_PROTOCOL ("grpc" or "http/protobuf"), else grpc.
	OTLPProtocol string
	// Stdout adds exporters that print metrics and spans as JSON.
	Stdout bool
	// StdoutWriter is where Stdout prints. Default os.Stdout.
	StdoutWriter io.Writer
	// MetricInterval is how often metrics are exported. Zero reads
	// OTEL_METRIC_EXPORT_INTERVAL, else 60 s.
	MetricInterval time.Duration
	// Metrics and Traces say which providers to make: the caller may have
	// its own for the other signal.
	Metrics, Traces bool
	// Getenv looks up the OTEL_* variables read in place of a setting left
	// empty here. Nil is os.LookupEnv. A program whose environment the Go
	// runtime does not follow (Python's os.environ, copied when the module
	// loaded) passes its own, so that two engines may see two environments
	// and the process environment is never rewritten.
	Getenv func(string) (string, bool)
}

// Providers are what Exporters made: the provider of each signal asked
// for, and how to flush and shut them down.
type Providers struct {
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	Shutdown       func(context.Context) error
}

// Exporters makes the providers and exporters of an ExportConfig. Package
// otelsetup's New is one; the engine has none unless given one
// (zbwrap.WithExporters), so that a program that does not export telemetry
// does not link exporters.
type Exporters func(ctx context.Context, cfg ExportConfig) (Providers, error)

// Telemetry records the engine's metrics and spans. Its methods are safe
// for concurrent use. A nil *Telemetry records nothing.
type Telemetry struct {
	tracer trace.Tracer

	batches        metric.Int64Counter
	rowsAcked      metric.Int64Counter
	rowsFailed     metric.Int64Counter
	bytesSent      metric.Int64Counter
	retries        metric.Int64Counter
	recoveries     metric.Int64Counter
	tokenRefreshes metric.Int64Counter
	debugErrors    metric.Int64Counter
	ackLatency     metric.Float64Histogram
	encodeTime     metric.Float64Histogram
	reg            metric.Registration // of the in-flight gauges, or nil

	tableAttr attribute.KeyValue
	addOpts   []metric.AddOption    // zerobus.table
	recOpts   []metric.RecordOption // zerobus.table
	byKind    sync.Map              // error kind -> []metric.AddOption

	shutdowns []func(context.Context) error // of the providers created here
	unroute   func()                        // stops routing export errors to Config.Logger
	closeOnce sync.Once
	closeErr  error
}

// Histogram bucket boundaries, in seconds: 50 µs to 60 s.
var secondsBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// New builds the engine's instruments on the providers of cfg. It does no
// network I/O.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	t := &Telemetry{tableAttr: AttrTable.String(cfg.Table)}
	if cfg.Shutdown != nil {
		t.shutdowns = append(t.shutdowns, cfg.Shutdown)
		if cfg.Logger != nil {
			t.unroute = routeErrors(cfg.Logger)
		}
	}
	mp, tp := cfg.MeterProvider, cfg.TracerProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	t.tracer = tp.Tracer(ScopeName, trace.WithInstrumentationVersion(cfg.Version))
	set := attribute.NewSet(t.tableAttr)
	t.addOpts = []metric.AddOption{metric.WithAttributeSet(set)}
	t.recOpts = []metric.RecordOption{metric.WithAttributeSet(set)}
	if err := t.instruments(mp.Meter(ScopeName, metric.WithInstrumentationVersion(cfg.Version)), cfg.Inflight, set); err != nil {
		_ = t.Shutdown(ctx)
		return nil, err
	}
	return t, nil
}

func (t *Telemetry) instruments(m metric.Meter, inflight func() (int64, int64), set attribute.Set) error {
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	hist := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(secondsBuckets...))
		errs = append(errs, err)
		return h
	}
	t.batches = counter(MetricBatchesSent, "{batch}", "Batches resolved (every row acknowledged or failed).")
	t.rowsAcked = counter(MetricRowsAcknowledged, "{row}", "Rows durably acknowledged by the server.")
	t.rowsFailed = counter(MetricRowsFailed, "{row}", "Rows reported failed, by error kind.")
	t.bytesSent = counter(MetricBytesSent, "By", "Record bytes written to the server, replays included.")
	t.retries = counter(MetricRetries, "{retry}", "Recovery attempts after a retryable stream failure.")
	t.recoveries = counter(MetricRecoveries, "{recovery}", "Streams reopened after a failure.")
	t.tokenRefreshes = counter(MetricTokenRefreshes, "{request}", "OAuth token requests, failed ones with error.type.")
	t.debugErrors = counter(MetricDebugErrors, "{error}", "Debug-file write failures (the sends went on).")
	t.ackLatency = hist(MetricAckLatency, "Time from writing a request to its acknowledgement.")
	t.encodeTime = hist(MetricEncodeDuration, "Time to convert one Arrow batch to protobuf records.")
	if inflight != nil {
		gr, err := m.Int64ObservableGauge(MetricInflightRecords, metric.WithUnit("{record}"),
			metric.WithDescription("Records queued or in flight, not yet acknowledged."))
		errs = append(errs, err)
		gb, err2 := m.Int64ObservableGauge(MetricInflightBytes, metric.WithUnit("By"),
			metric.WithDescription("Record bytes queued or in flight, not yet acknowledged."))
		errs = append(errs, err2)
		if err == nil && err2 == nil {
			opt := metric.WithAttributeSet(set)
			t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
				r, b := inflight()
				o.ObserveInt64(gr, r, opt)
				o.ObserveInt64(gb, b, opt)
				return nil
			}, gr, gb)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("telemetry: instruments: %w", err)
	}
	return nil
}

// Metric names.
const (
	MetricBatchesSent      = "zerobus.batches.sent"
	MetricRowsAcknowledged = "zerobus.rows.acknowledged"
	MetricRowsFailed       = "zerobus.rows.failed"
	MetricBytesSent        = "zerobus.bytes.sent"
	MetricRetries          = "zerobus.retries"
	MetricRecoveries       = "zerobus.stream.recoveries"
	MetricTokenRefreshes   = "zerobus.token.refreshes"
	MetricInflightRecords  = "zerobus.inflight.records"
	MetricInflightBytes    = "zerobus.inflight.bytes"
	MetricAckLatency       = "zerobus.ack.latency"
	MetricEncodeDuration   = "zerobus.encode.duration"
	MetricDebugErrors      = "zerobus.debug.write_errors"
)

// Span names.
const (
	SpanSendBatch      = "zerobus.send_batch"
	SpanSendBatchAsync = "zerobus.send_batch_async"
	SpanEncode         = "zerobus.encode"
	SpanStreamOpen     = "zerobus.stream.open"
	SpanWaitForAcks    = "zerobus.wait_for_acks"
	SpanRecovery       = "zerobus.recovery"
)

// Shutdown flushes and shuts down the providers made for this Telemetry
// (Config.Shutdown; never the caller's), bounded by ctx and
// DefaultShutdownTimeout, then unregisters the gauges' callback. Later calls return the first result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, DefaultShutdownTimeout)
		defer cancel()
		var errs []error
		for _, f := range t.shutdowns {
			errs = append(errs, f(ctx)) // the final export still sees the gauges
		}
		if t.reg != nil {
			errs = append(errs, t.reg.Unregister())
		}
		if t.unroute != nil {
			t.unroute()
		}
		if err := errors.Join(errs...); err != nil {
			t.closeErr = fmt.Errorf("telemetry: shutdown: %w", err)
		}
	})
	return t.closeErr
}

// kindOpts returns the attribute options of rows failed with an error kind.
func (t *Telemetry) kindOpts(kind string) []metric.AddOption {
	if v, ok := t.byKind.Load(kind); ok {
		return v.([]metric.AddOption)
	}
	o := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(t.tableAttr, AttrErrorType.String(kind)))}
	t.byKind.Store(kind, o)
	return o
}

// BatchDone counts one resolved batch and its acknowledged rows.
func (t *Telemetry) BatchDone(ctx context.Context, ackedRows int) {
	t.batches.Add(ctx, 1, t.addOpts...)
	if ackedRows > 0 {
		t.rowsAcked.Add(ctx, int64(ackedRows), t.addOpts...)
	}
}

// RowsFailed counts rows that failed with an error kind.
func (t *Telemetry) RowsFailed(ctx context.Context, kind string, n int) {
	if n > 0 {
		t.rowsFailed.Add(ctx, int64(n), t.kindOpts(kind)...)
	}
}

// TokenFetched counts one OAuth token request; err is its failure, with
// kind its error kind.
func (t *Telemetry) TokenFetched(kind string, err error) {
	if err != nil {
		t.tokenRefreshes.Add(context.Background(), 1, t.kindOpts(kind)...)
		return
	}
	t.tokenRefreshes.Add(context.Background(), 1, t.addOpts...)
}

// DebugWriteFailed counts one failure of the debug-file writer.
func (t *Telemetry) DebugWriteFailed() {
	t.debugErrors.Add(context.Background(), 1, t.addOpts...)
}

// encoded records the duration of one conversion.
func (t *Telemetry) encoded(ctx context.Context, took time.Duration) {
	t.encodeTime.Record(ctx, took.Seconds(), t.recOpts...)
}
