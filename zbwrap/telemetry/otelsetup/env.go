package otelsetup

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
)

// The OpenTelemetry SDK reads its variables with os.Getenv, from the
// environment the Go runtime copied when the process (or, under Python, the
// module) started. So that an ExportConfig.Getenv is the only environment
// an engine sees, every variable below is read here and handed to the
// exporters as an explicit option, its default included: an option wins
// over the SDK's own reading. Variables not read here (compression,
// certificates, temporality, the batch span processor's, the sampler's)
// are still the SDK's, from the process environment.

// environment looks up a variable.
type environment func(string) (string, bool)

// get is the first of the variables that is set and not blank.
func (env environment) get(names ...string) string {
	for _, n := range names {
		if v, ok := env(n); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

const (
	signalMetrics = "METRICS"
	signalTraces  = "TRACES"
)

// The exporters' defaults (OTLP specification).
const (
	defaultGRPCEndpoint   = "localhost:4317"
	defaultHTTPEndpoint   = "localhost:4318"
	defaultExportTimeout  = 10 * time.Second
	defaultMetricInterval = 60 * time.Second
	defaultMetricTimeout  = 30 * time.Second
)

// protocol maps OTEL_EXPORTER_OTLP_PROTOCOL to grpc or http.
func (env environment) protocol() string {
	switch env.get("OTEL_EXPORTER_OTLP_PROTOCOL") {
	case "http/protobuf", "http/json", "http":
		return telemetry.ProtocolHTTP
	default:
		return telemetry.ProtocolGRPC
	}
}

// hasEndpoint reports whether a variable names an OTLP endpoint.
func (env environment) hasEndpoint() bool {
	return env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// otlpOptions are one OTLP exporter's endpoint (a URL, or host:port),
// headers and timeout.
type otlpOptions struct {
	url      string // with the signal's path for http
	hostPort string // when url is empty
	insecure bool   // plaintext to hostPort
	headers  map[string]string
	timeout  time.Duration
}

// otlp resolves one signal's exporter options: the endpoint setting, else
// OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT (used as given), else
// OTEL_EXPORTER_OTLP_ENDPOINT (a base URL: http adds /v1/<signal>), else
// the default; the signal's variable before the general one for headers,
// timeout and insecure.
func (env environment) otlp(signal, proto, endpoint string) otlpOptions {
	path := "/v1/" + strings.ToLower(signal)
	perSignal := func(name string) string {
		return env.get("OTEL_EXPORTER_OTLP_"+signal+"_"+name, "OTEL_EXPORTER_OTLP_"+name)
	}
	o := otlpOptions{headers: parseHeaders(perSignal("HEADERS")), timeout: defaultExportTimeout}
	if ms, err := strconv.Atoi(perSignal("TIMEOUT")); err == nil && ms > 0 {
		o.timeout = time.Duration(ms) * time.Millisecond
	}
	o.insecure, _ = strconv.ParseBool(perSignal("INSECURE"))
	full := false // the URL has its path already
	if endpoint == "" {
		if endpoint = env.get("OTEL_EXPORTER_OTLP_" + signal + "_ENDPOINT"); endpoint != "" {
			full = true
		} else {
			endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
		}
	}
	switch {
	case isURL(endpoint) && proto == telemetry.ProtocolHTTP && !full:
		o.url = strings.TrimRight(endpoint, "/") + path
	case isURL(endpoint):
		o.url = endpoint
	case endpoint != "":
		o.hostPort = endpoint
	case proto == telemetry.ProtocolHTTP:
		o.hostPort = defaultHTTPEndpoint
	default:
		o.hostPort = defaultGRPCEndpoint
	}
	return o
}

// isURL reports whether an endpoint is a URL rather than host:port.
func isURL(endpoint string) bool { return strings.Contains(endpoint, "://") }

// parseHeaders reads key=value pairs separated by commas, the values
// URL-encoded; a malformed pair is skipped, as the SDK does.
func parseHeaders(s string) map[string]string {
	out := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		if dv, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			out[k] = dv
		}
	}
	return out
}

// periodic is a reader exporting every interval (else
// OTEL_METRIC_EXPORT_INTERVAL, else 60 s) within OTEL_METRIC_EXPORT_TIMEOUT
// (else 30 s).
func (env environment) periodic(exp sdkmetric.Exporter, interval time.Duration) sdkmetric.Reader {
	ms := func(name string, def time.Duration) time.Duration {
		if n, err := strconv.Atoi(env.get(name)); err == nil && n > 0 {
			return time.Duration(n) * time.Millisecond
		}
		return def
	}
	if interval <= 0 {
		interval = ms("OTEL_METRIC_EXPORT_INTERVAL", defaultMetricInterval)
	}
	return sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval),
		sdkmetric.WithTimeout(ms("OTEL_METRIC_EXPORT_TIMEOUT", defaultMetricTimeout)))
}

// resource describes the process as resource.Default does, with
// OTEL_RESOURCE_ATTRIBUTES and then OTEL_SERVICE_NAME from env, read each
// time: resource.Default reads the process environment once, and an
// embedding process (Python) may change the variables between two engines.
// A malformed attribute is skipped and the rest kept.
func (env environment) resource(ctx context.Context) *resource.Resource {
	attrs := []attribute.KeyValue{attribute.String("service.name", "unknown_service:"+filepath.Base(os.Args[0]))}
	for kv := range strings.SplitSeq(env.get("OTEL_RESOURCE_ATTRIBUTES"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		if dv, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			attrs = append(attrs, attribute.String(k, dv))
		}
	}
	if name := env.get("OTEL_SERVICE_NAME"); name != "" {
		attrs = append(attrs, attribute.String("service.name", name))
	}
	// Later attributes win: the variables override the default name.
	res, _ := resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("telemetry.distro.name", "pyzerobus")),
	)
	if res == nil {
		res = resource.Empty()
	}
	return res
}
