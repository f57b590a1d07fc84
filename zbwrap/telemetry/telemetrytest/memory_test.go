package telemetrytest

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestCollect(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	for _, scope := range []string{"a", "b"} {
		c, err := mp.Meter(scope).Int64Counter(scope + ".count")
		if err != nil {
			t.Fatal(err)
		}
		c.Add(ctx, 3)
	}
	ms, err := Collect(ctx, reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.count", "b.count"} {
		dps := ms[name].Data.(metricdata.Sum[int64]).DataPoints
		if len(dps) != 1 || dps[0].Value != 3 {
			t.Errorf("%s: %+v", name, dps)
		}
	}
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(ctx, reader); err == nil {
		t.Error("Collect of a shut-down reader reported no error")
	}
}
