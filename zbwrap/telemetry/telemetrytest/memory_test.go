package telemetrytest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
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
		if v, ok := Int64Sum(ms, name); !ok || v != 3 {
			t.Errorf("%s: %d %v, want 3", name, v, ok)
		}
	}
	if _, ok := Int64Sum(ms, "a.count", attribute.String("k", "v")); ok {
		t.Error("a series with other attributes matched")
	}
	if _, ok := Int64Sum(ms, "missing"); ok {
		t.Error("a missing metric matched")
	}
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(ctx, reader); err == nil {
		t.Error("Collect of a shut-down reader reported no error")
	}
}
