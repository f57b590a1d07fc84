package telemetrytest

import (
	"context"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Collect reads a metric reader (typically an sdkmetric.ManualReader given
// to the code under test through its MeterProvider) and returns the
// metrics by name, across scopes.
func Collect(ctx context.Context, r sdkmetric.Reader) (map[string]metricdata.Metrics, error) {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(ctx, &rm); err != nil {
		return nil, err
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out, nil
}
