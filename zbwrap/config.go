package zbwrap

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Secret holds a credential. It prints as [REDACTED] in every fmt verb, in
// YAML, JSON and text encodings; convert it with string(s) to use it.
type Secret string

const redacted = "[REDACTED]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalText (and so JSON) writes [REDACTED].
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML writes [REDACTED].
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// UnmarshalYAML reads the secret; the [REDACTED] placeholder of a printed
// configuration reads as empty, so the environment can supply it.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var v string
	if err := n.Decode(&v); err != nil {
		return err
	}
	return s.UnmarshalText([]byte(v))
}

// UnmarshalText (and so JSON) reads the secret as UnmarshalYAML does.
func (s *Secret) UnmarshalText(b []byte) error {
	v := string(b)
	if v == redacted {
		v = ""
	}
	*s = Secret(v)
	return nil
}

// KeepAllDebugFiles is the DebugMaxFilesRetained that keeps every rotated
// debug file.
const KeepAllDebugFiles = -1

// The transports (Config.Transport).
const (
	// TransportProto converts rows to protobuf records sent on the Zerobus
	// gRPC service.
	TransportProto = "proto"
	// TransportArrow sends batches as Arrow IPC over Arrow Flight DoPut.
	TransportArrow = "arrow"
)

// Defaults of Config; a zero field means its default.
const (
	DefaultDebugFlushInterval    = 5 * time.Second
	DefaultDebugMaxFileSize      = 100 << 20
	DefaultDebugMaxFilesRetained = 10
	DefaultRetryMaxAttempts      = 5
	DefaultRetryBaseDelay        = 100 * time.Millisecond
	DefaultRetryMaxDelay         = 30 * time.Second
	DefaultMaxInflightRecords    = 1_000_000
	DefaultMaxInflightBytes      = 64 << 20
	// DefaultMaxRequestBytes is 64 KiB under the service's 10 MiB request
	// limit.
	DefaultMaxRequestBytes     = 10<<20 - 64<<10
	DefaultAckTimeout          = time.Minute
	DefaultFlushTimeout        = 5 * time.Minute
	DefaultStreamCreateTimeout = 15 * time.Second
	DefaultTransport           = TransportProto
	DefaultArrowCompression    = "none"
	// DefaultStreams is streams: auto: one stream until it is pressed.
	DefaultStreams = StreamsAuto
	// StreamsAuto is the Streams value of "streams: auto".
	StreamsAuto = -1
	// DefaultMaxStreams bounds streams: auto.
	DefaultMaxStreams = 16
	// StreamsLimit bounds the streams and max_streams settings.
	StreamsLimit = 64
	// MaxRequestBytesLimit is the service's request size limit.
	MaxRequestBytesLimit = 10 << 20
)

// Config holds every setting. Build it with DefaultConfig and the With...
// options (passed to New), LoadConfig (YAML then environment),
// ParseConfigJSON or ConfigFromEnv; a zero numeric or string field means its
// default. The key of each field, the same in YAML and JSON, is given in its
// tags; its environment variable is ZEROBUS_ followed by the key in upper
// case, with a leading "zerobus_" not repeated (ZEROBUS_ENDPOINT,
// ZEROBUS_WRITER_DISABLED; the doubled form ZEROBUS_ZEROBUS_ENDPOINT is
// accepted too). Durations are time.Duration values in Go; elsewhere they
// are whole numbers in the unit their key names (retry_base_delay_ms: 250,
// ZEROBUS_ACK_TIMEOUT_MS=30000, debug_flush_interval_secs: 5) or duration
// strings ("1.5s").
//
// Printing a Config (String, %v, %+v, %#v, YAML) never shows the secret.
type Config struct {
	// ZerobusEndpoint is the Zerobus ingest endpoint,
	// https://<workspace-id>.zerobus.<region>.cloud.databricks.com. Plaintext
	// http:// is accepted only for a loopback host. Required unless the
	// writer is disabled.
	ZerobusEndpoint string `json:"zerobus_endpoint" yaml:"zerobus_endpoint"`
	// UnityCatalogURL is the workspace URL, where tokens come from.
	// Required for OAuth (no HeadersProvider). Env fallback DATABRICKS_HOST.
	UnityCatalogURL string `json:"unity_catalog_url" yaml:"unity_catalog_url"`
	// ClientID is the service principal's OAuth client id. Env fallback
	// DATABRICKS_CLIENT_ID.
	ClientID string `json:"client_id" yaml:"client_id"`
	// ClientSecret is its secret. Env fallback DATABRICKS_CLIENT_SECRET.
	ClientSecret Secret `json:"client_secret" yaml:"client_secret"`
	// TableName is the target table, catalog.schema.table (ASCII letters,
	// digits and underscores in each part). Required.
	TableName string `json:"table_name" yaml:"table_name"`

	// ObservabilityEnabled turns on OpenTelemetry metrics and traces,
	// exported over OTLP (and to standard output with ObservabilityStdout)
	// by the exporters of WithExporters; New refuses it without them (see
	// package telemetry/otelsetup). See package telemetry for the
	// instruments and spans.
	ObservabilityEnabled bool `json:"observability_enabled" yaml:"observability_enabled"`
	// ObservabilityOTLPEndpoint is the OTLP collector: a URL
	// (http://host:4317 is plaintext) or host:port (TLS). Empty: the
	// OTEL_EXPORTER_OTLP_ENDPOINT variables, else localhost:4317 (grpc) or
	// localhost:4318 (http).
	ObservabilityOTLPEndpoint string `json:"observability_otlp_endpoint" yaml:"observability_otlp_endpoint"`
	// ObservabilityOTLPProtocol is grpc or http (protobuf over HTTP).
	// Empty: OTEL_EXPORTER_OTLP_PROTOCOL, else grpc.
	ObservabilityOTLPProtocol string `json:"observability_otlp_protocol" yaml:"observability_otlp_protocol"`
	// ObservabilityStdout prints telemetry to standard output as JSON; on
	// its own (no endpoint set anywhere) nothing goes over OTLP.
	ObservabilityStdout bool `json:"observability_stdout" yaml:"observability_stdout"`

	// DebugEnabled writes debug files to DebugOutputDir (required then).
	DebugEnabled bool `json:"debug_enabled" yaml:"debug_enabled"`
	// DebugArrowEnabled writes each batch as Arrow IPC.
	DebugArrowEnabled bool `json:"debug_arrow_enabled" yaml:"debug_arrow_enabled"`
	// DebugProtobufEnabled writes each batch's encoded records.
	DebugProtobufEnabled bool `json:"debug_protobuf_enabled" yaml:"debug_protobuf_enabled"`
	// DebugOutputDir is where debug files go.
	DebugOutputDir string `json:"debug_output_dir" yaml:"debug_output_dir"`
	// DebugFlushInterval is how often debug files are flushed (key in
	// seconds). Default 5 s.
	DebugFlushInterval time.Duration `json:"debug_flush_interval_secs" yaml:"debug_flush_interval_secs"`
	// DebugMaxFileSize is the size in bytes at which a debug file rotates.
	// Default 100 MiB.
	DebugMaxFileSize int64 `json:"debug_max_file_size" yaml:"debug_max_file_size"`
	// DebugMaxFilesRetained is how many rotated files of each kind are
	// kept, the newest ones. Zero means the default, 10; KeepAllDebugFiles
	// (-1) keeps them all. In YAML, the environment and Python, where a
	// setting left out is told apart from one set, 0 keeps them all.
	DebugMaxFilesRetained int `json:"debug_max_files_retained" yaml:"debug_max_files_retained"`

	// RetryMaxAttempts is how many reconnections follow consecutive
	// failures before the engine gives up (RetryExhausted). An acknowledged
	// request resets the count. Default 5.
	RetryMaxAttempts int `json:"retry_max_attempts" yaml:"retry_max_attempts"`
	// RetryBaseDelay is the first backoff ceiling; it doubles per attempt
	// (full jitter: the wait is random below the ceiling). Default 100 ms.
	RetryBaseDelay time.Duration `json:"retry_base_delay_ms" yaml:"retry_base_delay_ms"`
	// RetryMaxDelay caps the backoff ceiling. Default 30 s.
	RetryMaxDelay time.Duration `json:"retry_max_delay_ms" yaml:"retry_max_delay_ms"`

	// ZerobusWriterDisabled converts batches (and writes debug files) but
	// opens no connection; credentials and endpoint become optional.
	ZerobusWriterDisabled bool `json:"zerobus_writer_disabled" yaml:"zerobus_writer_disabled"`

	// MaxInflightRecords bounds records queued or awaiting acknowledgement
	// per stream. Default 1,000,000.
	MaxInflightRecords int `json:"max_inflight_records" yaml:"max_inflight_records"`
	// MaxInflightBytes bounds their encoded bytes. Default 64 MiB.
	MaxInflightBytes int64 `json:"max_inflight_bytes" yaml:"max_inflight_bytes"`
	// MaxRequestBytes is the size limit of one request; batches are split
	// under it. At most 10 MiB. Default 10 MiB - 64 KiB.
	MaxRequestBytes int `json:"max_request_bytes" yaml:"max_request_bytes"`
	// RecoveryDisabled fails pending rows on the first retryable failure
	// instead of reconnecting and replaying. Default false (recovery on).
	RecoveryDisabled bool `json:"recovery_disabled" yaml:"recovery_disabled"`
	// AckTimeout: nothing acknowledged for this long while requests are in
	// flight counts as a retryable failure. Default 60 s.
	AckTimeout time.Duration `json:"ack_timeout_ms" yaml:"ack_timeout_ms"`
	// FlushTimeout bounds Flush and Close. Default 5 min.
	FlushTimeout time.Duration `json:"flush_timeout_ms" yaml:"flush_timeout_ms"`
	// StreamCreateTimeout bounds opening one stream (token, handshake).
	// Default 15 s.
	StreamCreateTimeout time.Duration `json:"stream_create_timeout_ms" yaml:"stream_create_timeout_ms"`
	// Transport is how batches go on the wire: proto (the default; rows
	// converted to protobuf records on the Zerobus gRPC service) or arrow
	// (the batch as Arrow IPC over Arrow Flight DoPut, no per-row
	// conversion; a column the table cannot take fails the whole batch).
	Transport string `json:"transport" yaml:"transport"`
	// ArrowCompression compresses the Arrow IPC bodies of the arrow
	// transport: none (the default), lz4 (LZ4 frame) or zstd. Ignored by the
	// proto transport.
	ArrowCompression string `json:"arrow_compression" yaml:"arrow_compression"`
	// Streams is how many streams one table and schema may use at once:
	// each batch goes whole to the one with the least in flight, so the
	// table takes up to Streams times one stream's quota (the service's is
	// 100 MB/s and 100,000 records/s per stream). Batches keep their order
	// within a stream only: 1 keeps the total order. StreamsAuto ("auto" in
	// YAML, JSON and the environment), the default, starts with one stream
	// and opens another, up to MaxStreams, while the open ones are pressed
	// (0.2 s of the service's quota or half their window in flight, or
	// their writer held back by the server) and what they hold waits 100 ms
	// or more for its acknowledgement (the service's latency or quota, not
	// a local server's CPU); an extra stream idle for 10 s is closed. A
	// load one stream can carry thus stays on one stream, in order.
	Streams int `json:"streams" yaml:"streams"`
	// MaxStreams bounds the streams streams: auto opens. Default 16.
	MaxStreams int `json:"max_streams" yaml:"max_streams"`
	// ApplicationName, if set, is appended to the user agent of every
	// stream call ("pyzerobus/<version> <name>"), so that the service's logs
	// tell the application apart. Letters, digits and ._-/ only.
	ApplicationName string `json:"application_name" yaml:"application_name"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	setDefault(&c.DebugFlushInterval, DefaultDebugFlushInterval)
	setDefault(&c.DebugMaxFileSize, DefaultDebugMaxFileSize)
	setDefault(&c.DebugMaxFilesRetained, DefaultDebugMaxFilesRetained)
	setDefault(&c.RetryMaxAttempts, DefaultRetryMaxAttempts)
	setDefault(&c.RetryBaseDelay, DefaultRetryBaseDelay)
	setDefault(&c.RetryMaxDelay, DefaultRetryMaxDelay)
	setDefault(&c.MaxInflightRecords, DefaultMaxInflightRecords)
	setDefault(&c.MaxInflightBytes, DefaultMaxInflightBytes)
	setDefault(&c.MaxRequestBytes, DefaultMaxRequestBytes)
	setDefault(&c.AckTimeout, DefaultAckTimeout)
	setDefault(&c.FlushTimeout, DefaultFlushTimeout)
	setDefault(&c.StreamCreateTimeout, DefaultStreamCreateTimeout)
	setDefault(&c.Transport, DefaultTransport)
	setDefault(&c.ArrowCompression, DefaultArrowCompression)
	setDefault(&c.Streams, DefaultStreams)
	setDefault(&c.MaxStreams, DefaultMaxStreams)
	return c
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate reports every problem of the configuration at once, as
// errors.Join of *Error values of KindConfiguration, each naming its setting:
// what New would report given the same options. Without
// WithHeadersProvider among them, OAuth credentials are required.
func (c Config) Validate(opts ...Option) error {
	set := settings{cfg: c}
	for _, o := range opts {
		o(&set)
	}
	return set.cfg.validate(set.headers != nil)
}

func (c Config) validate(customHeaders bool) error {
	c = c.withDefaults()
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, &Error{Kind: KindConfiguration, Op: "config", Setting: setting, Msg: fmt.Sprintf(format, args...)})
	}
	if err := checkTableName(c.TableName); err != nil {
		bad("table_name", "%s", err)
	}
	writer := !c.ZerobusWriterDisabled
	if c.ZerobusEndpoint != "" || writer {
		if err := checkURL(c.ZerobusEndpoint, true); err != nil {
			bad("zerobus_endpoint", "%s", err)
		}
	}
	if writer && !customHeaders {
		if err := checkURL(c.UnityCatalogURL, false); err != nil {
			bad("unity_catalog_url", "%s", err)
		}
		if c.ClientID == "" {
			bad("client_id", "required for OAuth (or use a HeadersProvider)")
		}
		if c.ClientSecret == "" {
			bad("client_secret", "required for OAuth (or use a HeadersProvider)")
		}
	} else if c.UnityCatalogURL != "" {
		if err := checkURL(c.UnityCatalogURL, false); err != nil {
			bad("unity_catalog_url", "%s", err)
		}
	}
	if e := c.ObservabilityOTLPEndpoint; strings.Contains(e, "://") {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("observability_otlp_endpoint", "must be an http:// or https:// URL or host:port, got %q", e)
		}
	}
	switch c.ObservabilityOTLPProtocol {
	case "", "grpc", "http":
	default:
		bad("observability_otlp_protocol", "must be grpc or http, got %q", c.ObservabilityOTLPProtocol)
	}
	if (c.DebugEnabled || c.DebugArrowEnabled || c.DebugProtobufEnabled) && c.DebugOutputDir == "" {
		bad("debug_output_dir", "required when debug files are on (debug_enabled, debug_arrow_enabled or debug_protobuf_enabled)")
	}
	for _, n := range []struct {
		setting string
		v       int64
	}{
		{"debug_max_file_size", c.DebugMaxFileSize},
		{"retry_max_attempts", int64(c.RetryMaxAttempts)},
		{"max_inflight_records", int64(c.MaxInflightRecords)},
		{"max_inflight_bytes", c.MaxInflightBytes},
		{"max_request_bytes", int64(c.MaxRequestBytes)},
	} {
		if n.v < 0 {
			bad(n.setting, "must not be negative, got %d", n.v)
		}
	}
	for _, d := range []struct {
		setting string
		v       time.Duration
	}{
		{"debug_flush_interval_secs", c.DebugFlushInterval},
		{"retry_base_delay_ms", c.RetryBaseDelay},
		{"retry_max_delay_ms", c.RetryMaxDelay},
		{"ack_timeout_ms", c.AckTimeout},
		{"flush_timeout_ms", c.FlushTimeout},
		{"stream_create_timeout_ms", c.StreamCreateTimeout},
	} {
		if d.v < 0 {
			bad(d.setting, "must not be negative, got %v", d.v)
		}
	}
	if c.DebugMaxFilesRetained < KeepAllDebugFiles {
		bad("debug_max_files_retained", "must not be negative but -1 (keep all), got %d", c.DebugMaxFilesRetained)
	}
	if c.RetryBaseDelay > c.RetryMaxDelay {
		bad("retry_base_delay_ms", "%v exceeds retry_max_delay_ms %v", c.RetryBaseDelay, c.RetryMaxDelay)
	}
	if c.MaxRequestBytes > MaxRequestBytesLimit {
		bad("max_request_bytes", "%d exceeds the service limit of %d bytes", c.MaxRequestBytes, MaxRequestBytesLimit)
	} else if c.MaxRequestBytes > 0 && c.MaxRequestBytes < 1024 {
		bad("max_request_bytes", "%d is below the minimum of 1024 bytes", c.MaxRequestBytes)
	}
	if strings.TrimLeft(c.ApplicationName, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") != "" {
		bad("application_name", "may hold letters, digits and ._-/ only, got %q", c.ApplicationName)
	}
	if c.Streams < StreamsAuto || c.Streams > StreamsLimit {
		bad("streams", "must be 1 to %d or auto, got %d", StreamsLimit, c.Streams)
	}
	if c.MaxStreams < 0 || c.MaxStreams > StreamsLimit {
		bad("max_streams", "must be 1 to %d, got %d", StreamsLimit, c.MaxStreams)
	}
	if c.Transport != TransportProto && c.Transport != TransportArrow {
		bad("transport", "must be proto or arrow, got %q", c.Transport)
	}
	switch c.ArrowCompression {
	case "none", "lz4", "zstd":
	default:
		bad("arrow_compression", "must be none, lz4 or zstd, got %q", c.ArrowCompression)
	}
	return errors.Join(errs...)
}

// checkTableName requires catalog.schema.table of ASCII letters, digits and
// underscores.
func checkTableName(name string) error {
	if name == "" {
		return errors.New("required (catalog.schema.table)")
	}
	parts := strings.Split(name, ".")
	if len(parts) != 3 {
		return fmt.Errorf("must be catalog.schema.table, got %q", name)
	}
	for _, p := range parts {
		if p == "" {
			return fmt.Errorf("must be catalog.schema.table with no empty part, got %q", name)
		}
		for _, r := range p {
			if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return fmt.Errorf("%q may hold only ASCII letters, digits and underscores (found %q)", name, r)
			}
		}
	}
	return nil
}

// checkURL accepts https URLs, and http URLs only on a loopback host.
// A Zerobus endpoint may omit the scheme (https is implied).
func checkURL(raw string, endpoint bool) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := parseEndpoint(raw, endpoint)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("plaintext http:// is allowed only for a loopback host, not %q: use https://", u.Hostname())
		}
	default:
		return fmt.Errorf("scheme must be https (or http on loopback), got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not contain a query or fragment")
	}
	return nil
}

func parseEndpoint(raw string, endpoint bool) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if endpoint && !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %v", err)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String prints every setting with the secret redacted.
func (c Config) String() string { return c.format(false) }

// GoString prints the Config as Go syntax with the secret redacted.
func (c Config) GoString() string { return c.format(true) }

func (c Config) format(goSyntax bool) string {
	var b strings.Builder
	b.WriteString("zbwrap.Config{")
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := range t.NumField() {
		if i > 0 {
			b.WriteString(", ")
		}
		f := v.Field(i)
		name := t.Field(i).Name
		if !goSyntax {
			name = yamlKey(t.Field(i))
		}
		b.WriteString(name)
		b.WriteString(":")
		if !goSyntax {
			b.WriteString(" ")
		}
		switch x := f.Interface().(type) {
		case Secret:
			b.WriteString(x.GoString())
		case string:
			b.WriteString(strconv.Quote(x))
		default:
			fmt.Fprint(&b, x)
		}
	}
	b.WriteString("}")
	return b.String()
}

func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return k
}
