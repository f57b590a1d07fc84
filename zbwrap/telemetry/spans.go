package telemetry

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys.
const (
	AttrRows       = attribute.Key("zerobus.rows")
	AttrRowsFailed = attribute.Key("zerobus.rows.failed")
	AttrBytes      = attribute.Key("zerobus.bytes")
	AttrAttempts   = attribute.Key("zerobus.attempts")
	AttrStreamID   = attribute.Key("zerobus.stream.id")
	AttrAttempt    = attribute.Key("zerobus.retry.attempt")
	AttrWait       = attribute.Key("zerobus.retry.wait_seconds")
	AttrOffset     = attribute.Key("zerobus.offset")
)

// Send traces one send call: its span, with children for the conversion,
// the wait for acknowledgements and each recovery during that wait.
type Send struct {
	t    *Telemetry
	ctx  context.Context // carries span
	span trace.Span

	obs  *Stream    // set while waiting for acks
	wait trace.Span // the wait span, while waiting
	// recovery is the open recovery span; guarded by obs.mu.
	recovery trace.Span
}

// StartSend starts the span of one send call (name is SpanSendBatch or
// SpanSendBatchAsync) as a child of ctx's span, and returns the context
// that carries it.
func (t *Telemetry) StartSend(ctx context.Context, name string, rows int) (context.Context, *Send) {
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(t.tableAttr, AttrRows.Int(rows)))
	return ctx, &Send{t: t, ctx: ctx, span: span}
}

// In returns ctx carrying the send's span, so that what ctx starts (a
// stream opening) is traced as part of the send.
func (s *Send) In(ctx context.Context) context.Context {
	return trace.ContextWithSpan(ctx, s.span)
}

// Encoded records the conversion that began at start: the encode span,
// ending now, and the encode-time histogram. err is set when the whole
// batch failed to convert; failedRows counts the rows it rejected.
func (s *Send) Encoded(start time.Time, bytes, failedRows int, err error) {
	now := time.Now()
	s.t.encoded(s.ctx, now.Sub(start))
	_, span := s.t.tracer.Start(s.ctx, SpanEncode, trace.WithTimestamp(start),
		trace.WithAttributes(AttrBytes.Int(bytes), AttrRowsFailed.Int(failedRows)))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(AttrErrorType.String("Conversion"))
	}
	span.End(trace.WithTimestamp(now))
}

// WaitStart starts the wait-for-acknowledgements span. While it lasts, each
// recovery of obs's stream gets a span under this send; a send that starts
// waiting during a recovery (its request failed the call before it got
// here) gets one at once, with the retry under way as its first event.
func (s *Send) WaitStart(obs *Stream) {
	_, s.wait = s.t.tracer.Start(s.ctx, SpanWaitForAcks)
	if obs == nil {
		return
	}
	s.obs = obs
	obs.mu.Lock()
	obs.waiters[s] = struct{}{}
	if obs.recovering {
		s.startRecoveryLocked(obs)
		if obs.lastRetry != nil {
			s.recovery.AddEvent("retry", trace.WithAttributes(obs.lastRetry...))
		}
	}
	obs.mu.Unlock()
}

// WaitEnd ends the wait span; kind is the error kind when rows failed.
func (s *Send) WaitEnd(kind string) {
	if s.obs != nil {
		s.obs.mu.Lock()
		delete(s.obs.waiters, s)
		if s.recovery != nil {
			if kind != "" {
				s.recovery.SetStatus(codes.Error, "the stream did not recover before the batch failed")
			}
			s.recovery.End()
			s.recovery = nil
		}
		s.obs.mu.Unlock()
	}
	if s.wait == nil {
		return
	}
	if kind != "" {
		s.wait.SetStatus(codes.Error, kind)
		s.wait.SetAttributes(AttrErrorType.String(kind))
	}
	s.wait.End()
}

// Outcome is what a send span reports when it ends.
type Outcome struct {
	Offset     int64 // async offset, -1 for a synchronous send
	Bytes      int
	Attempts   int
	RowsFailed int
	// Kind and Msg describe the failure; Kind is empty on success.
	Kind, Msg string
}

// End ends the send span with its outcome.
func (s *Send) End(o Outcome) {
	attrs := []attribute.KeyValue{AttrBytes.Int(o.Bytes), AttrRowsFailed.Int(o.RowsFailed)}
	if o.Attempts > 0 {
		attrs = append(attrs, AttrAttempts.Int(o.Attempts))
	}
	if o.Offset >= 0 {
		attrs = append(attrs, AttrOffset.Int64(o.Offset))
	}
	if o.Kind != "" {
		attrs = append(attrs, AttrErrorType.String(o.Kind))
		s.span.SetStatus(codes.Error, o.Msg)
	}
	s.span.SetAttributes(attrs...)
	s.span.End()
}

// Stream observes one ingest stream. It implements the stream's hook
// interfaces (calls opened, requests written and acknowledged, retries).
type Stream struct {
	t      *Telemetry
	parent trace.SpanContext // of the send that created the stream

	mu         sync.Mutex
	opened     bool
	recovering bool
	lastRetry  []attribute.KeyValue // the event of the retry under way while recovering
	waiters    map[*Send]struct{}
}

// NewStream returns the observer of a new stream created by the send whose
// span ctx carries: that send is the parent of the stream's first open.
func (t *Telemetry) NewStream(ctx context.Context) *Stream {
	return &Stream{t: t, parent: trace.SpanContextFromContext(ctx), waiters: map[*Send]struct{}{}}
}

// OnCallOpened records the open span: the stream's first open under the
// send that created it, a reopen under each recovery span it ends.
func (o *Stream) OnCallOpened(streamID string, took time.Duration) {
	end := time.Now()
	start := end.Add(-took)
	open := func(parent context.Context) {
		_, span := o.t.tracer.Start(parent, SpanStreamOpen, trace.WithTimestamp(start),
			trace.WithAttributes(AttrStreamID.String(streamID)))
		span.End(trace.WithTimestamp(end))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case !o.opened:
		o.opened = true
		open(trace.ContextWithSpanContext(context.Background(), o.parent))
	case o.recovering:
		o.recovering, o.lastRetry = false, nil
		o.t.recoveries.Add(context.Background(), 1, o.t.addOpts...)
		for s := range o.waiters {
			if s.recovery == nil {
				continue
			}
			open(trace.ContextWithSpan(s.ctx, s.recovery))
			s.recovery.End(trace.WithTimestamp(end))
			s.recovery = nil
		}
	}
}

// OnRequestWritten counts the bytes written.
func (o *Stream) OnRequestWritten(_, bytes int, _ bool) {
	o.t.bytesSent.Add(context.Background(), int64(bytes), o.t.addOpts...)
}

// OnRequestAcked records the acknowledgement latency.
func (o *Stream) OnRequestAcked(_, _ int, latency time.Duration) {
	o.t.ackLatency.Record(context.Background(), latency.Seconds(), o.t.recOpts...)
}

// OnRetry counts the attempt and records it on the recovery span of every
// send waiting on the stream, starting those spans at the first attempt.
func (o *Stream) OnRetry(attempt int, wait time.Duration, err error) {
	o.t.retries.Add(context.Background(), 1, o.t.addOpts...)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recovering = true
	ev := []attribute.KeyValue{AttrAttempt.Int(attempt), AttrWait.Float64(wait.Seconds())}
	if err != nil {
		ev = append(ev, attribute.String("exception.message", err.Error()))
	}
	o.lastRetry = ev
	for s := range o.waiters {
		if s.recovery == nil {
			s.startRecoveryLocked(o)
		}
		s.recovery.AddEvent("retry", trace.WithAttributes(ev...))
	}
}

func (s *Send) startRecoveryLocked(o *Stream) {
	_, s.recovery = o.t.tracer.Start(s.ctx, SpanRecovery)
}
