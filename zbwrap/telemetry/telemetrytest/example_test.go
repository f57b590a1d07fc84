package telemetrytest_test

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/telemetrytest"
)

// Export a counter over OTLP/gRPC and read its value back.
func Example() {
	ctx := context.Background()
	col, err := telemetrytest.NewCollector(ctx)
	if err != nil {
		panic(err)
	}
	defer col.Close()

	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpointURL(col.GRPCURL()))
	if err != nil {
		panic(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	defer mp.Shutdown(ctx)

	sent, _ := mp.Meter("example").Int64Counter("records.sent")
	sent.Add(ctx, 3, metric.WithAttributes(attribute.String("table", "main.default.events")))
	sent.Add(ctx, 4, metric.WithAttributes(attribute.String("table", "main.default.events")))
	if err := mp.ForceFlush(ctx); err != nil {
		panic(err)
	}

	v, ok := col.SumValue("records.sent", map[string]string{"table": "main.default.events"})
	fmt.Println(v, ok)
	// Output: 7 true
}

// Spans exported in the background: wait for them instead of sleeping.
func ExampleCollector_WaitFor() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	col, err := telemetrytest.NewCollector(ctx)
	if err != nil {
		panic(err)
	}
	defer col.Close()

	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(col.HTTPURL()+"/v1/traces"))
	if err != nil {
		panic(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(10*time.Millisecond)))
	defer tp.Shutdown(ctx)

	ctx2, parent := tp.Tracer("example").Start(ctx, "ingest")
	_, child := tp.Tracer("example").Start(ctx2, "flush")
	child.End()
	parent.End()

	err = col.WaitFor(ctx, func(c *telemetrytest.Collector) bool { return len(c.Spans("")) == 2 })
	fmt.Println(err)
	flush := col.Spans("flush")[0]
	fmt.Println(flush.Scope, string(flush.Proto.GetParentSpanId()) == string(col.Spans("ingest")[0].Proto.GetSpanId()))
	// Output:
	// <nil>
	// example true
}
