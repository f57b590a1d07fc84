package telemetrytest

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/goleak"
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

// start runs a Collector for the test and closes it, checking that its
// goroutines end.
func start(t *testing.T, opts ...Option) *Collector {
	t.Helper()
	checkLeaks(t)
	c, err := NewCollector(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// exportCfg selects an exporter: protocol "grpc" or "http", and how it sends.
type exportCfg struct {
	protocol string
	gzip     bool
	json     bool          // OTLP/JSON (traces over HTTP only)
	delta    bool          // delta temporality (metrics)
	timeout  time.Duration // 0: the exporter's default
	noRetry  bool
}

func (e exportCfg) name() string {
	n := e.protocol
	if e.gzip {
		n += "+gzip"
	}
	if e.json {
		n += "+json"
	}
	return n
}

func testResource(service string) *resource.Resource {
	return resource.NewSchemaless(attribute.String("service.name", service), attribute.Int("shard", 3))
}

// meterProvider exports to c through a real OTLP exporter; metrics leave
// only on ForceFlush (the periodic interval is an hour).
func meterProvider(t *testing.T, c *Collector, e exportCfg) *sdkmetric.MeterProvider {
	t.Helper()
	var exp sdkmetric.Exporter
	var err error
	switch e.protocol {
	case "grpc":
		opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpointURL(c.GRPCURL())}
		if e.gzip {
			opts = append(opts, otlpmetricgrpc.WithCompressor("gzip"))
		}
		if e.delta {
			opts = append(opts, otlpmetricgrpc.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector))
		}
		if e.timeout > 0 {
			opts = append(opts, otlpmetricgrpc.WithTimeout(e.timeout))
		}
		if e.noRetry {
			opts = append(opts, otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
		}
		exp, err = otlpmetricgrpc.New(t.Context(), opts...)
	case "http":
		opts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpointURL(c.HTTPURL() + "/v1/metrics")}
		if e.gzip {
			opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
		}
		if e.delta {
			opts = append(opts, otlpmetrichttp.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector))
		}
		if e.timeout > 0 {
			opts = append(opts, otlpmetrichttp.WithTimeout(e.timeout))
		}
		if e.noRetry {
			opts = append(opts, otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
		}
		exp, err = otlpmetrichttp.New(t.Context(), opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(testResource("svc-"+e.name())),
		// Histograms named exp.* are exponential.
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "exp.*"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})),
	)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		mp.Shutdown(ctx)
	})
	return mp
}

// traceExporter is a real OTLP span exporter to c.
func traceExporter(t *testing.T, c *Collector, e exportCfg) *otlptrace.Exporter {
	t.Helper()
	var exp *otlptrace.Exporter
	var err error
	switch e.protocol {
	case "grpc":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.GRPCEndpoint()), otlptracegrpc.WithInsecure()}
		if e.gzip {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		exp, err = otlptracegrpc.New(t.Context(), opts...)
	case "http":
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(c.HTTPURL() + "/v1/traces")}
		if e.gzip {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		if e.json {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		exp, err = otlptracehttp.New(t.Context(), opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// tracerProvider exports each span to c when it ends.
func tracerProvider(t *testing.T, c *Collector, e exportCfg) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(traceExporter(t, c, e)),
		sdktrace.WithResource(testResource("svc-"+e.name())),
	)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tp.Shutdown(ctx)
	})
	return tp
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
