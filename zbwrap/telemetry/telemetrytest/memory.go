package telemetrytest

import (
	"context"

	"go.opentelemetry.io/otel/attribute"

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

// Int64Sum is the value of an int64 counter's data point whose attributes
// are exactly attrs, from metrics returned by Collect; ok is false if there
// is none.
func Int64Sum(ms map[string]metricdata.Metrics, name string, attrs ...attribute.KeyValue) (value int64, ok bool) {
	sum, isSum := ms[name].Data.(metricdata.Sum[int64])
	if !isSum {
		return 0, false
	}
	want := attribute.NewSet(attrs...)
	for _, dp := range sum.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value, true
		}
	}
	return 0, false
}
