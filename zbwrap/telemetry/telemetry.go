package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
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

// Protocols of Config.OTLPProtocol.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

// DefaultShutdownTimeout bounds Shutdown when its context has no earlier
// deadline, so that an unreachable collector cannot hold up Close.
const DefaultShutdownTimeout = 2 * time.Second

// Config says where the engine's telemetry goes.
//
// A signal whose provider is given (MeterProvider, TracerProvider) is
// recorded there and nothing is created for it: the caller owns that
// provider. For the other signals New creates an SDK provider with an OTLP
// exporter (when OTLPEndpoint is set, an OTEL_EXPORTER_OTLP_*ENDPOINT
// variable is, or Stdout is off) and a stdout exporter (when Stdout is on).
type Config struct {
	// Table is the value of the zerobus.table attribute.
	Table string
	// Version is the instrumentation scope's version: the engine's.
	Version string
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
	// MeterProvider and TracerProvider, if set, are the caller's; they are
	// used as they are and never shut down here.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// MetricInterval is how often created metric exporters export. Zero
	// reads OTEL_METRIC_EXPORT_INTERVAL, else 60 s.
	MetricInterval time.Duration
	// Inflight, if set, reports what the in-flight windows hold now (records,
	// bytes); it backs the in-flight gauges and is called at collection.
	Inflight func() (records, bytes int64)
	// Logger, if set, receives the export failures of the exporters created
	// here (instead of stderr) until Shutdown; see errors.go.
	Logger *slog.Logger
}

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

// New builds the providers cfg asks for and the engine's instruments. It
// does no network I/O: exporters connect when they first export.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	t := &Telemetry{tableAttr: AttrTable.String(cfg.Table)}
	mp, tp := cfg.MeterProvider, cfg.TracerProvider
	if mp == nil || tp == nil {
		if err := t.createProviders(ctx, cfg, &mp, &tp); err != nil {
			_ = t.Shutdown(ctx)
			return nil, err
		}
		if cfg.Logger != nil {
			t.unroute = routeErrors(cfg.Logger)
		}
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

func (t *Telemetry) createProviders(ctx context.Context, cfg Config, mp *metric.MeterProvider, tp *trace.TracerProvider) error {
	res := engineResource(ctx)
	proto := cfg.OTLPProtocol
	if proto == "" {
		proto = protocolFromEnv()
	}
	if proto != ProtocolGRPC && proto != ProtocolHTTP {
		return fmt.Errorf("telemetry: OTLP protocol must be grpc or http, got %q", proto)
	}
	otlp := cfg.OTLPEndpoint != "" || !cfg.Stdout || endpointFromEnv()
	out := cfg.StdoutWriter
	if out == nil {
		out = os.Stdout
	}
	if *mp == nil {
		var opts []sdkmetric.Option
		if otlp {
			exp, err := metricExporter(ctx, proto, cfg.OTLPEndpoint)
			if err != nil {
				return err
			}
			opts = append(opts, sdkmetric.WithReader(periodic(exp, cfg.MetricInterval)))
		}
		if cfg.Stdout {
			exp, err := stdoutmetric.New(stdoutmetric.WithWriter(out))
			if err != nil {
				return fmt.Errorf("telemetry: stdout metric exporter: %w", err)
			}
			opts = append(opts, sdkmetric.WithReader(periodic(exp, cfg.MetricInterval)))
		}
		p := sdkmetric.NewMeterProvider(append(opts, sdkmetric.WithResource(res))...)
		t.shutdowns = append(t.shutdowns, p.Shutdown)
		*mp = p
	}
	if *tp == nil {
		opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
		if otlp {
			exp, err := traceExporter(ctx, proto, cfg.OTLPEndpoint)
			if err != nil {
				return err
			}
			// The batcher drops spans when its queue is full: it never
			// blocks a send.
			opts = append(opts, sdktrace.WithBatcher(exp))
		}
		if cfg.Stdout {
			exp, err := stdouttrace.New(stdouttrace.WithWriter(out))
			if err != nil {
				return fmt.Errorf("telemetry: stdout span exporter: %w", err)
			}
			opts = append(opts, sdktrace.WithBatcher(exp))
		}
		p := sdktrace.NewTracerProvider(opts...)
		t.shutdowns = append(t.shutdowns, p.Shutdown)
		*tp = p
	}
	return nil
}

func periodic(exp sdkmetric.Exporter, every time.Duration) sdkmetric.Reader {
	var opts []sdkmetric.PeriodicReaderOption
	if every > 0 {
		opts = append(opts, sdkmetric.WithInterval(every))
	}
	return sdkmetric.NewPeriodicReader(exp, opts...)
}

// engineResource describes the process as resource.Default does, but reads
// the environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) each time:
// resource.Default keeps what it found the first time, and an embedding
// process (Python) may change the variables between two engines.
func engineResource(ctx context.Context) *resource.Resource {
	// A malformed OTEL_RESOURCE_ATTRIBUTES gives a partial resource and an
	// error: keep what could be read, as resource.Default does.
	res, _ := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "unknown_service:"+filepath.Base(os.Args[0]))),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // later detectors win: the variables override the default name
		resource.WithAttributes(attribute.String("telemetry.distro.name", "pyzerobus")),
	)
	if res == nil {
		res = resource.Empty()
	}
	return res
}

// protocolFromEnv maps OTEL_EXPORTER_OTLP_PROTOCOL to grpc or http.
func protocolFromEnv() string {
	switch os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL") {
	case "http/protobuf", "http/json", "http":
		return ProtocolHTTP
	default:
		return ProtocolGRPC
	}
}

func endpointFromEnv() bool {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if os.Getenv(k) != "" {
			return true
		}
	}
	return false
}

// isURL reports whether an endpoint is a URL rather than host:port.
func isURL(endpoint string) bool { return strings.Contains(endpoint, "://") }

func metricExporter(ctx context.Context, proto, endpoint string) (sdkmetric.Exporter, error) {
	var exp sdkmetric.Exporter
	var err error
	if proto == ProtocolHTTP {
		var opts []otlpmetrichttp.Option
		switch {
		case isURL(endpoint):
			opts = append(opts, otlpmetrichttp.WithEndpointURL(strings.TrimRight(endpoint, "/")+"/v1/metrics"))
		case endpoint != "":
			opts = append(opts, otlpmetrichttp.WithEndpoint(endpoint))
		}
		exp, err = otlpmetrichttp.New(ctx, opts...)
	} else {
		var opts []otlpmetricgrpc.Option
		switch {
		case isURL(endpoint):
			opts = append(opts, otlpmetricgrpc.WithEndpointURL(endpoint))
		case endpoint != "":
			opts = append(opts, otlpmetricgrpc.WithEndpoint(endpoint))
		}
		exp, err = otlpmetricgrpc.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP metric exporter: %w", err)
	}
	return exp, nil
}

func traceExporter(ctx context.Context, proto, endpoint string) (sdktrace.SpanExporter, error) {
	var exp sdktrace.SpanExporter
	var err error
	if proto == ProtocolHTTP {
		var opts []otlptracehttp.Option
		switch {
		case isURL(endpoint):
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimRight(endpoint, "/")+"/v1/traces"))
		case endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpoint(endpoint))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	} else {
		var opts []otlptracegrpc.Option
		switch {
		case isURL(endpoint):
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		case endpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpoint(endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP span exporter: %w", err)
	}
	return exp, nil
}

// Shutdown flushes and shuts down the providers New created (never the
// caller's), bounded by ctx and DefaultShutdownTimeout, then unregisters
// the gauges' callback. Later calls return the first result.
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
