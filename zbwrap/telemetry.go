package zbwrap

import (
	"context"
	"errors"
	"strings"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
)

// errNoExporters is why New refuses observability_enabled without
// WithExporters.
const errNoExporters = "observability_enabled needs exporters: pass zbwrap.WithExporters(otelsetup.New) " +
	"(package github.com/pyzerobus/pyzerobus/zbwrap/telemetry/otelsetup), or WithMeterProvider and WithTracerProvider"

// openTelemetry builds the telemetry the configuration and options ask
// for: on with observability_enabled or a caller's provider.
func (w *Wrapper) openTelemetry(ctx context.Context) error {
	c := w.cfg
	mp, tp := w.set.meters, w.set.tracers
	var shutdown func(context.Context) error
	switch {
	case !c.ObservabilityEnabled && mp == nil && tp == nil:
		return nil
	case c.ObservabilityEnabled && (mp == nil || tp == nil):
		if w.set.exporter == nil {
			return &Error{Kind: KindConfiguration, Op: "config", Setting: "observability_enabled", Msg: errNoExporters}
		}
		p, err := w.set.exporter(ctx, telemetry.ExportConfig{
			OTLPEndpoint: c.ObservabilityOTLPEndpoint,
			OTLPProtocol: c.ObservabilityOTLPProtocol,
			Stdout:       c.ObservabilityStdout,
			Metrics:      mp == nil,
			Traces:       tp == nil,
			Getenv:       w.set.getenv,
		})
		if err != nil {
			return &Error{Kind: KindConfiguration, Op: "config", Setting: "observability", Err: err}
		}
		if mp == nil {
			mp = p.MeterProvider
		}
		if tp == nil {
			tp = p.TracerProvider
		}
		shutdown = p.Shutdown
	}
	// A signal left without a provider records nothing.
	t, err := telemetry.New(ctx, telemetry.Config{
		Table:          c.TableName,
		Version:        Version,
		MeterProvider:  mp,
		TracerProvider: tp,
		Shutdown:       shutdown,
		Inflight:       w.inflight,
		Logger:         w.logger,
	})
	if err != nil {
		return &Error{Kind: KindConfiguration, Op: "config", Setting: "observability", Err: err}
	}
	w.tel = t
	return nil
}

// inflight sums what the live streams' windows hold.
func (w *Wrapper) inflight() (records, bytes int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.streams {
		r, b := s.Inflight()
		records += r
		bytes += b
	}
	return records, bytes
}

// kindID is a Kind as a metric and span attribute value: "retry_exhausted".
func kindID(k Kind) string { return strings.ReplaceAll(k.String(), " ", "_") }

// recordResult counts a resolved batch's rows.
func (w *Wrapper) recordResult(res *TransmissionResult) {
	ctx := context.Background()
	w.tel.BatchDone(ctx, res.SuccessfulCount)
	if res.FailedCount == 0 {
		return
	}
	// Few kinds per batch: count runs instead of building a map.
	var kinds [8]int
	for _, f := range res.FailedRows {
		if k := int(f.Error.Kind); k > 0 && k < len(kinds) {
			kinds[k]++
		}
	}
	for k, n := range kinds {
		w.tel.RowsFailed(ctx, kindID(Kind(k)), n)
	}
}

// outcome is what a send span reports.
func outcome(res *TransmissionResult, err error) telemetry.Outcome {
	o := telemetry.Outcome{Offset: -1}
	if res != nil {
		o.Offset, o.Bytes, o.Attempts, o.RowsFailed = res.Offset, res.BatchSizeBytes, res.Attempts, res.FailedCount
	}
	if err != nil {
		o.Msg = err.Error()
		o.Kind = "transmission"
		var e *Error
		if errors.As(err, &e) {
			o.Kind = kindID(e.Kind)
		}
	}
	return o
}
