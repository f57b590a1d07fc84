package telemetrytest

import (
	"encoding/base64"
	"strconv"
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// A Span is one received span with where it came from.
type Span struct {
	Resource map[string]string // resource attributes, as by Attributes
	Scope    string            // instrumentation scope name
	Attrs    map[string]string // the span's attributes, as by Attributes
	Proto    *tracepb.Span     // ids, parent, kind, times, status, events
}

// Spans returns the spans named name (every span when name is ""), in
// arrival order.
func (c *Collector) Spans(name string) []Span {
	var out []Span
	for _, rs := range c.ResourceSpans() {
		var res map[string]string
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				if name != "" && s.GetName() != name {
					continue
				}
				if res == nil {
					res = Attributes(rs.GetResource().GetAttributes())
				}
				out = append(out, Span{
					Resource: res,
					Scope:    ss.GetScope().GetName(),
					Attrs:    Attributes(s.GetAttributes()),
					Proto:    s,
				})
			}
		}
	}
	return out
}

// Metric returns every received instance of the metric named name, one per
// export that carried it, in arrival order.
func (c *Collector) Metric(name string) []*metricspb.Metric {
	var out []*metricspb.Metric
	for _, rm := range c.ResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m.GetName() == name {
					out = append(out, m)
				}
			}
		}
	}
	return out
}

// SumValue is the current value of the Sum (counter or up-down counter)
// named name for the series whose attributes are exactly attrs (nil for a
// series without attributes): the latest point when the sum is cumulative,
// all points added up when it is delta. Integer sums are converted to
// float64 (exact up to 2^53). ok is false when no point matched.
func (c *Collector) SumValue(name string, attrs map[string]string) (value float64, ok bool) {
	var l latest
	for _, m := range c.Metric(name) {
		delta := m.GetSum().GetAggregationTemporality() == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
		for _, p := range m.GetSum().GetDataPoints() {
			if Match(p.GetAttributes(), attrs) {
				l.add(delta, p.GetTimeUnixNano(), number(p), 0)
			}
		}
	}
	return l.value, l.ok
}

// GaugeValue is the latest value of the gauge named name for the series
// whose attributes are exactly attrs.
func (c *Collector) GaugeValue(name string, attrs map[string]string) (value float64, ok bool) {
	var l latest
	for _, m := range c.Metric(name) {
		for _, p := range m.GetGauge().GetDataPoints() {
			if Match(p.GetAttributes(), attrs) {
				l.add(false, p.GetTimeUnixNano(), number(p), 0)
			}
		}
	}
	return l.value, l.ok
}

// HistogramValue is the count and sum of the histogram (explicit-bucket or
// exponential) named name for the series whose attributes are exactly
// attrs: the latest point when cumulative, all points added up when delta.
func (c *Collector) HistogramValue(name string, attrs map[string]string) (count uint64, sum float64, ok bool) {
	const delta = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
	var l latest
	for _, m := range c.Metric(name) {
		h, eh := m.GetHistogram(), m.GetExponentialHistogram()
		for _, p := range h.GetDataPoints() {
			if Match(p.GetAttributes(), attrs) {
				l.add(h.GetAggregationTemporality() == delta, p.GetTimeUnixNano(), p.GetSum(), p.GetCount())
			}
		}
		for _, p := range eh.GetDataPoints() {
			if Match(p.GetAttributes(), attrs) {
				l.add(eh.GetAggregationTemporality() == delta, p.GetTimeUnixNano(), p.GetSum(), p.GetCount())
			}
		}
	}
	return l.count, l.value, l.ok
}

// latest folds data points of one series into its current value.
type latest struct {
	ok    bool
	time  uint64
	value float64
	count uint64
}

func (l *latest) add(delta bool, t uint64, v float64, n uint64) {
	switch {
	case delta:
		l.value += v
		l.count += n
	case !l.ok || t >= l.time: // ties go to the later arrival
		l.time, l.value, l.count = t, v, n
	}
	l.ok = true
}

func number(p *metricspb.NumberDataPoint) float64 {
	if v, ok := p.GetValue().(*metricspb.NumberDataPoint_AsInt); ok {
		return float64(v.AsInt)
	}
	return p.GetAsDouble()
}

// Match reports whether kvs are exactly attrs, comparing values as
// Attributes renders them.
func Match(kvs []*commonpb.KeyValue, attrs map[string]string) bool {
	if len(kvs) != len(attrs) {
		return false
	}
	for _, kv := range kvs {
		want, ok := attrs[kv.GetKey()]
		if !ok || want != Value(kv.GetValue()) {
			return false
		}
	}
	return true
}

// Attributes renders attributes as strings (see Value), keyed by name.
func Attributes(kvs []*commonpb.KeyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		out[kv.GetKey()] = Value(kv.GetValue())
	}
	return out
}

// Value renders an attribute value as a string: strings as they are,
// integers in decimal, doubles in the shortest form that reads back
// exactly, booleans as true/false, bytes in standard base64, arrays as
// [a,b] and maps as {k=v,k2=v2}. An empty value is "".
func Value(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		parts := make([]string, len(x.ArrayValue.GetValues()))
		for i, e := range x.ArrayValue.GetValues() {
			parts[i] = Value(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *commonpb.AnyValue_KvlistValue:
		parts := make([]string, len(x.KvlistValue.GetValues()))
		for i, kv := range x.KvlistValue.GetValues() {
			parts[i] = kv.GetKey() + "=" + Value(kv.GetValue())
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return ""
}
