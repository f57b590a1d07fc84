package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
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
	env := environment(cfg.Getenv)
	if env == nil {
		env = os.LookupEnv
	}
	res := env.resource(ctx)
	proto := cfg.OTLPProtocol
	if proto == "" {
		proto = env.protocol()
	}
	if proto != telemetry.ProtocolGRPC && proto != telemetry.ProtocolHTTP {
		return fmt.Errorf("telemetry: OTLP protocol must be grpc or http, got %q", proto)
	}
	otlp := cfg.OTLPEndpoint != "" || !cfg.Stdout || env.hasEndpoint()
	out := cfg.StdoutWriter
	if out == nil {
		out = os.Stdout
	}
	if cfg.Metrics {
		var opts []sdkmetric.Option
		if otlp {
			exp, err := metricExporter(ctx, proto, env.otlp(signalMetrics, proto, cfg.OTLPEndpoint))
			if err != nil {
				return err
			}
			opts = append(opts, sdkmetric.WithReader(env.periodic(exp, cfg.MetricInterval)))
		}
		if cfg.Stdout {
			exp, err := stdoutmetric.New(stdoutmetric.WithWriter(out))
			if err != nil {
				return fmt.Errorf("telemetry: stdout metric exporter: %w", err)
			}
			opts = append(opts, sdkmetric.WithReader(env.periodic(exp, cfg.MetricInterval)))
		}
		mp := sdkmetric.NewMeterProvider(append(opts, sdkmetric.WithResource(res))...)
		*shutdowns = append(*shutdowns, mp.Shutdown)
		p.MeterProvider = mp
	}
	if cfg.Traces {
		opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
		if otlp {
			exp, err := traceExporter(ctx, proto, env.otlp(signalTraces, proto, cfg.OTLPEndpoint))
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

func metricExporter(ctx context.Context, proto string, o otlpOptions) (sdkmetric.Exporter, error) {
	var exp sdkmetric.Exporter
	var err error
	if proto == telemetry.ProtocolHTTP {
		opts := []otlpmetrichttp.Option{otlpmetrichttp.WithHeaders(o.headers), otlpmetrichttp.WithTimeout(o.timeout)}
		if o.url != "" {
			opts = append(opts, otlpmetrichttp.WithEndpointURL(o.url))
		} else {
			opts = append(opts, otlpmetrichttp.WithEndpoint(o.hostPort))
			if o.insecure {
				opts = append(opts, otlpmetrichttp.WithInsecure())
			}
		}
		exp, err = otlpmetrichttp.New(ctx, opts...)
	} else {
		opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithHeaders(o.headers), otlpmetricgrpc.WithTimeout(o.timeout)}
		if o.url != "" {
			opts = append(opts, otlpmetricgrpc.WithEndpointURL(o.url))
		} else {
			opts = append(opts, otlpmetricgrpc.WithEndpoint(o.hostPort))
			if o.insecure {
				opts = append(opts, otlpmetricgrpc.WithInsecure())
			}
		}
		exp, err = otlpmetricgrpc.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP metric exporter: %w", err)
	}
	return exp, nil
}

func traceExporter(ctx context.Context, proto string, o otlpOptions) (sdktrace.SpanExporter, error) {
	var exp sdktrace.SpanExporter
	var err error
	if proto == telemetry.ProtocolHTTP {
		opts := []otlptracehttp.Option{otlptracehttp.WithHeaders(o.headers), otlptracehttp.WithTimeout(o.timeout)}
		if o.url != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(o.url))
		} else {
			opts = append(opts, otlptracehttp.WithEndpoint(o.hostPort))
			if o.insecure {
				opts = append(opts, otlptracehttp.WithInsecure())
			}
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	} else {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithHeaders(o.headers), otlptracegrpc.WithTimeout(o.timeout)}
		if o.url != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(o.url))
		} else {
			opts = append(opts, otlptracegrpc.WithEndpoint(o.hostPort))
			if o.insecure {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP span exporter: %w", err)
	}
	return exp, nil
}
