package otelsetup_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/otelsetup"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/telemetrytest"
)

// Export to an OTLP collector (here a local test receiver) and read what
// arrived. The engine does this itself when observability_enabled is set
// and zbwrap.WithExporters(otelsetup.New) is among its options.
func Example() {
	ctx := context.Background()
	col, err := telemetrytest.NewCollector(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer col.Close()

	p, err := otelsetup.New(ctx, telemetry.ExportConfig{
		OTLPEndpoint: col.GRPCURL(), // http://: plaintext
		OTLPProtocol: telemetry.ProtocolGRPC,
		Metrics:      true,
		Traces:       true,
	})
	if err != nil {
		log.Fatal(err)
	}
	tel, err := telemetry.New(ctx, telemetry.Config{
		Table:          "main.default.events",
		MeterProvider:  p.MeterProvider,
		TracerProvider: p.TracerProvider,
		Shutdown:       p.Shutdown, // tel.Shutdown shuts the providers down
	})
	if err != nil {
		log.Fatal(err)
	}
	sctx, send := tel.StartSend(ctx, telemetry.SpanSendBatch, 100)
	_ = sctx // the engine passes it down: child spans, stream opens
	tel.BatchDone(ctx, 100)
	send.End(telemetry.Outcome{Offset: -1})
	if err := tel.Shutdown(ctx); err != nil { // flushes
		log.Fatal(err)
	}

	rows, _ := col.SumValue(telemetry.MetricRowsAcknowledged, map[string]string{"zerobus.table": "main.default.events"})
	fmt.Println(rows, len(col.Spans(telemetry.SpanSendBatch)))
	// Output: 100 1
}
