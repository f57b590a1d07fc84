package zbwrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
)

// HeadersProvider supplies the headers of each stream call in place of the
// built-in OAuth flow (bring your own authentication). Headers is called
// whenever a stream opens, including every reconnection; it must return at
// least "authorization". The table header and user agent are added by the
// engine. An error with a Retryable() bool method returning true is retried
// with backoff; any other error fails the pending rows with
// KindAuthentication.
type HeadersProvider interface {
	Headers(ctx context.Context) (map[string]string, error)
}

// An Option adjusts the configuration or the runtime of a Wrapper; pass
// options to New. Options apply in order, after the Config given to New.
type Option func(*settings)

// settings is what New builds from a Config and options.
type settings struct {
	cfg      Config
	tls      *tls.Config
	roots    *x509.CertPool
	headers  HeadersProvider
	dialer   func(ctx context.Context, addr string) (net.Conn, error)
	dialOpts []grpc.DialOption
	http     *http.Client
	logger   *slog.Logger
	hooks    []any
	meters   metric.MeterProvider
	tracers  trace.TracerProvider
	exporter telemetry.Exporters
	getenv   func(string) (string, bool)
}

// WithEndpoint sets zerobus_endpoint, the Zerobus ingest URL. No default.
func WithEndpoint(endpoint string) Option {
	return func(s *settings) { s.cfg.ZerobusEndpoint = endpoint }
}

// WithUnityCatalogURL sets unity_catalog_url, the workspace URL tokens come
// from. No default.
func WithUnityCatalogURL(u string) Option { return func(s *settings) { s.cfg.UnityCatalogURL = u } }

// WithClientID sets client_id. No default.
func WithClientID(id string) Option { return func(s *settings) { s.cfg.ClientID = id } }

// WithClientSecret sets client_secret. No default.
func WithClientSecret(secret string) Option {
	return func(s *settings) { s.cfg.ClientSecret = Secret(secret) }
}

// WithTableName sets table_name, catalog.schema.table. No default.
func WithTableName(name string) Option { return func(s *settings) { s.cfg.TableName = name } }

// WithObservability sets observability_enabled. Default false. It needs
// WithExporters (or both WithMeterProvider and WithTracerProvider): New
// refuses it otherwise.
func WithObservability(on bool) Option { return func(s *settings) { s.cfg.ObservabilityEnabled = on } }

// WithOTLPEndpoint sets observability_otlp_endpoint: a URL
// (http://host:4317 is plaintext) or host:port (TLS). Default "": the
// OTEL_EXPORTER_OTLP_ENDPOINT variables, else the OpenTelemetry default
// (localhost:4317 for grpc, localhost:4318 for http).
func WithOTLPEndpoint(endpoint string) Option {
	return func(s *settings) { s.cfg.ObservabilityOTLPEndpoint = endpoint }
}

// WithOTLPProtocol sets observability_otlp_protocol, grpc or http.
// Default "": OTEL_EXPORTER_OTLP_PROTOCOL, else grpc.
func WithOTLPProtocol(p string) Option {
	return func(s *settings) { s.cfg.ObservabilityOTLPProtocol = p }
}

// WithObservabilityStdout sets observability_stdout. Default false.
func WithObservabilityStdout(on bool) Option {
	return func(s *settings) { s.cfg.ObservabilityStdout = on }
}

// WithDebug sets debug_enabled. Default false.
func WithDebug(on bool) Option { return func(s *settings) { s.cfg.DebugEnabled = on } }

// WithDebugArrow sets debug_arrow_enabled. Default false.
func WithDebugArrow(on bool) Option { return func(s *settings) { s.cfg.DebugArrowEnabled = on } }

// WithDebugProtobuf sets debug_protobuf_enabled. Default false.
func WithDebugProtobuf(on bool) Option { return func(s *settings) { s.cfg.DebugProtobufEnabled = on } }

// WithDebugOutputDir sets debug_output_dir. No default (required when debug
// is on).
func WithDebugOutputDir(dir string) Option { return func(s *settings) { s.cfg.DebugOutputDir = dir } }

// WithDebugFlushInterval sets debug_flush_interval_secs.
// Default 5 s.
func WithDebugFlushInterval(d time.Duration) Option {
	return func(s *settings) { s.cfg.DebugFlushInterval = d }
}

// WithDebugMaxFileSize sets debug_max_file_size in bytes. Default 100 MiB.
func WithDebugMaxFileSize(n int64) Option { return func(s *settings) { s.cfg.DebugMaxFileSize = n } }

// WithDebugMaxFilesRetained sets debug_max_files_retained. Default 10;
// KeepAllDebugFiles keeps every rotated file.
func WithDebugMaxFilesRetained(n int) Option {
	return func(s *settings) { s.cfg.DebugMaxFilesRetained = n }
}

// WithRetryMaxAttempts sets retry_max_attempts: reconnections after
// consecutive failures before RetryExhausted. Default 5.
func WithRetryMaxAttempts(n int) Option { return func(s *settings) { s.cfg.RetryMaxAttempts = n } }

// WithRetryBaseDelay sets retry_base_delay_ms, the first backoff ceiling.
// Default 100 ms.
func WithRetryBaseDelay(d time.Duration) Option {
	return func(s *settings) { s.cfg.RetryBaseDelay = d }
}

// WithRetryMaxDelay sets retry_max_delay_ms, the largest backoff ceiling.
// Default 30 s.
func WithRetryMaxDelay(d time.Duration) Option {
	return func(s *settings) { s.cfg.RetryMaxDelay = d }
}

// WithWriterDisabled sets zerobus_writer_disabled: convert only, connect
// never. Default false.
func WithWriterDisabled(disabled bool) Option {
	return func(s *settings) { s.cfg.ZerobusWriterDisabled = disabled }
}

// WithMaxInflightRecords sets max_inflight_records. Default 1,000,000.
func WithMaxInflightRecords(n int) Option { return func(s *settings) { s.cfg.MaxInflightRecords = n } }

// WithMaxInflightBytes sets max_inflight_bytes. Default 64 MiB.
func WithMaxInflightBytes(n int64) Option { return func(s *settings) { s.cfg.MaxInflightBytes = n } }

// WithMaxRequestBytes sets max_request_bytes (at most 10 MiB). Default
// 10 MiB - 64 KiB.
func WithMaxRequestBytes(n int) Option { return func(s *settings) { s.cfg.MaxRequestBytes = n } }

// WithRecovery turns recovery (reconnect and replay) on or off; it sets
// recovery_disabled to !on. Default on.
func WithRecovery(on bool) Option { return func(s *settings) { s.cfg.RecoveryDisabled = !on } }

// WithAckTimeout sets ack_timeout_ms. Default 60 s.
func WithAckTimeout(d time.Duration) Option {
	return func(s *settings) { s.cfg.AckTimeout = d }
}

// WithFlushTimeout sets flush_timeout_ms, the bound of Flush and Close.
// Default 5 min.
func WithFlushTimeout(d time.Duration) Option {
	return func(s *settings) { s.cfg.FlushTimeout = d }
}

// WithStreamCreateTimeout sets stream_create_timeout_ms. Default 15 s.
func WithStreamCreateTimeout(d time.Duration) Option {
	return func(s *settings) { s.cfg.StreamCreateTimeout = d }
}

// WithApplicationName sets application_name, appended to the user agent.
// Default none.
func WithApplicationName(name string) Option {
	return func(s *settings) { s.cfg.ApplicationName = name }
}

// WithStreams sets streams: how many streams one table and schema may use
// at once, or StreamsAuto (see Config.Streams). Default StreamsAuto; 1
// keeps the total order.
func WithStreams(n int) Option { return func(s *settings) { s.cfg.Streams = n } }

// WithMaxStreams sets max_streams, the most streams StreamsAuto opens.
// Default 16.
func WithMaxStreams(n int) Option { return func(s *settings) { s.cfg.MaxStreams = n } }

// WithTransport sets transport: TransportProto ("proto", protobuf records
// on the Zerobus gRPC service) or TransportArrow ("arrow", Arrow IPC over
// Arrow Flight DoPut, on the same connection and credentials). Default
// proto.
func WithTransport(t string) Option { return func(s *settings) { s.cfg.Transport = t } }

// WithArrowCompression sets arrow_compression, the compression of the
// arrow transport's IPC bodies: "none", "lz4" (LZ4 frame) or "zstd". It
// trades CPU for bytes on the wire; the proto transport ignores it.
// Default none.
func WithArrowCompression(c string) Option {
	return func(s *settings) { s.cfg.ArrowCompression = c }
}

// WithTLSConfig sets the TLS configuration of the gRPC connection and of
// token requests (cloned; ServerName is set from the endpoint when empty).
// Verification cannot be turned off: InsecureSkipVerify is refused. Default:
// system roots.
func WithTLSConfig(c *tls.Config) Option { return func(s *settings) { s.tls = c } }

// WithRootCAs trusts these roots (and only these) for the endpoint and the
// workspace URL, e.g. zerobustest.Server.CertPool(). Default: system roots.
func WithRootCAs(pool *x509.CertPool) Option { return func(s *settings) { s.roots = pool } }

// WithHeadersProvider replaces the OAuth flow: client_id, client_secret and
// unity_catalog_url become optional. Default: OAuth client credentials.
func WithHeadersProvider(p HeadersProvider) Option { return func(s *settings) { s.headers = p } }

// WithDialer sets how the gRPC connection dials (for proxies, tests that
// count connections). Default: net.Dialer.
func WithDialer(dial func(ctx context.Context, addr string) (net.Conn, error)) Option {
	return func(s *settings) { s.dialer = dial }
}

// WithGRPCDialOptions appends gRPC dial options, applied after the
// engine's own. Default none.
func WithGRPCDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOpts = append(s.dialOpts, opts...) }
}

// WithHTTPClient sets the HTTP client of token requests (its TLS settings
// win over WithTLSConfig/WithRootCAs). Default: a client using the TLS
// settings above, 30 s per request.
func WithHTTPClient(c *http.Client) Option { return func(s *settings) { s.http = c } }

// WithMeterProvider records the engine's metrics with mp, which the caller
// owns: Close does not shut it down. It turns telemetry on, as
// observability_enabled does; spans then go to WithTracerProvider's
// provider, or, with observability_enabled, to the exporters of
// WithExporters, else nowhere. Default: none.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(s *settings) { s.meters = mp }
}

// WithTracerProvider records the engine's spans with tp, which the caller
// owns: Close does not shut it down. Like WithMeterProvider, it turns
// telemetry on. Default: none.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *settings) { s.tracers = tp }
}

// WithExporters makes observability_enabled work: with it set, New calls
// f for the providers of the signals the caller gave none for
// (WithMeterProvider, WithTracerProvider), passing it the
// observability_otlp_endpoint, observability_otlp_protocol and
// observability_stdout settings, and Close shuts them down. Pass
// otelsetup.New (package zbwrap/telemetry/otelsetup) for OTLP and stdout
// exporters configured by those settings and the OTEL_* variables, as the
// Python package does:
//
//	w, err := zbwrap.New(ctx, cfg, zbwrap.WithExporters(otelsetup.New))
//
// The engine itself depends only on the OpenTelemetry API: a program that
// does not use otelsetup does not link the SDK or any exporter. Without
// WithExporters, New refuses observability_enabled unless both providers
// are given. Default: none.
func WithExporters(f telemetry.Exporters) Option { return func(s *settings) { s.exporter = f } }

// WithEnvLookup sets where the exporters of WithExporters look up the
// OTEL_* variables (telemetry.ExportConfig.Getenv). Default os.LookupEnv.
// A program embedding the engine in a runtime with an environment of its
// own (Python's os.environ) passes a lookup over it, per Wrapper, instead
// of rewriting the process environment. It does not apply to the ZEROBUS_*
// variables, which LoadConfig and ParseConfig read.
func WithEnvLookup(lookup func(string) (string, bool)) Option {
	return func(s *settings) { s.getenv = lookup }
}

// WithLogger sets the logger for reconnections and failures. Secrets and
// tokens are never logged. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.logger = l } }
