package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
)

var _ telemetry.Exporters = New

// New makes SDK providers for the signals cfg asks for (Metrics, Traces),
// each with an OTLP exporter (when OTLPEndpoint is set, an
// OTEL_EXPORTER_OTLP_*ENDPOINT variable is, or Stdout is off) and a stdout
// exporter (when Stdout is on). It does no network I/O: exporters connect
// when they first export. The Shutdown it returns flushes and shuts down
// those providers.
func New(ctx context.Context, cfg telemetry.ExportConfig) (telemetry.Providers, error) {
	var p telemetry.Providers
	var shutdowns []func(context.Context) error
	p.Shutdown = func(ctx context.Context) error {
		var errs []error
		for _, f := range shutdowns {
			errs = append(errs, f(ctx))
		}
		return errors.Join(errs...)
	}
	if err := create(ctx, cfg, &p, &shutdowns); err != nil {
		_ = p.Shutdown(ctx)
		return telemetry.Providers{}, err
	}
	return p, nil
}

func create(ctx context.Context, cfg telemetry.ExportConfig, p *telemetry.Providers, shutdowns *[]func(context.Context) error) error {
	res := engineResource(ctx)
	proto := cfg.OTLPProtocol
	if proto == "" {
		proto = protocolFromEnv()
	}
	if proto != telemetry.ProtocolGRPC && proto != telemetry.ProtocolHTTP {
		return fmt.Errorf("telemetry: OTLP protocol must be grpc or http, got %q", proto)
	}
	otlp := cfg.OTLPEndpoint != "" || !cfg.Stdout || endpointFromEnv()
	out := cfg.StdoutWriter
	if out == nil {
		out = os.Stdout
	}
	if cfg.Metrics {
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
		mp := sdkmetric.NewMeterProvider(append(opts, sdkmetric.WithResource(res))...)
		*shutdowns = append(*shutdowns, mp.Shutdown)
		p.MeterProvider = mp
	}
	if cfg.Traces {
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
		tp := sdktrace.NewTracerProvider(opts...)
		*shutdowns = append(*shutdowns, tp.Shutdown)
		p.TracerProvider = tp
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
		return telemetry.ProtocolHTTP
	default:
		return telemetry.ProtocolGRPC
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
	if proto == telemetry.ProtocolHTTP {
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
	if proto == telemetry.ProtocolHTTP {
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
