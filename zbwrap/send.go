package zbwrap

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/flightstream"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
)

// sendRequest is what every send form asks of submit and convert.
type sendRequest struct {
	rec    arrow.RecordBatch
	desc   *descriptorpb.DescriptorProto // nil: derived from rec's schema
	offset int64                         // async offset, -1 for a synchronous send
	block  bool                          // wait for room in the window (else fail at once)
	onDone func()                        // run when the stream resolves the batch, or nil
	span   *telemetry.Send               // the send's span, nil with telemetry off
}

// submission is one batch on its way.
type submission struct {
	offset   int64 // async offset, -1 for SendBatch
	start    time.Time
	rows     int
	enc      *arrowproto.Batch   // proto transport; nil when the whole batch failed to convert
	arrow    *flightstream.Batch // arrow transport; nil when the whole batch failed to encode
	convErr  *Error              // the whole batch failed to convert
	sb       *stream.Batch       // nil when nothing was sent
	queueErr error
	obs      *telemetry.Stream // the stream's observer, with telemetry on
}

// release drops the submission's hold on the encoded batch (the result's,
// until it is built); the stream holds its own (Batch.Retain) until it lets
// go of the records, and the last one gives the memory back.
func (s *submission) release() { s.enc.Release() }

// submit converts req.rec and queues its records, waiting for window room
// if req.block. req.onDone, if set, runs when the stream resolves the batch
// (only when sub.sb is set). The caller releases sub once its result is
// built. req.span gets the encode span, and ctx carries it.
func (w *Wrapper) submit(ctx context.Context, req sendRequest) (*submission, error) {
	sub, tgt, err := w.convert(req)
	if err != nil || tgt == nil {
		return sub, err
	}
	if err := w.queue(ctx, sub, tgt, req.block, req.onDone); err != nil {
		return nil, err
	}
	return sub, nil
}

// target is where a converted batch goes: the stream of its descriptor
// (proto) or of its Arrow schema (arrow).
type target struct {
	key    string                // of the stream in Wrapper.streams
	schema *arrowproto.Schema    // proto transport
	enc    *flightstream.Encoder // arrow transport
}

// convert checks that the Wrapper is open and converts rec. The target is
// nil when there is nothing to queue: the whole batch failed to convert
// (sub.convErr), the writer is disabled, or no row converted.
func (w *Wrapper) convert(req sendRequest) (*submission, *target, error) {
	rec, sp := req.rec, req.span
	if rec == nil {
		return nil, nil, &Error{Kind: KindConfiguration, Op: "send", Msg: "nil record batch"}
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return nil, nil, closedError("send")
	}
	sub := &submission{offset: req.offset, start: time.Now(), rows: int(rec.NumRows())}
	if w.arrowTransport() {
		return w.encodeArrow(req, sub)
	}
	schema, err := w.schemaFor(rec.Schema(), req.desc)
	if err == nil {
		// Framed as the records of a request: the stream sends ranges of
		// this buffer as they are.
		sub.enc, err = schema.EncodeFramed(rec, stream.RecordField)
	}
	if sp != nil {
		if err != nil {
			sp.Encoded(sub.start, 0, sub.rows, err)
		} else {
			sp.Encoded(sub.start, sub.enc.Bytes, len(sub.enc.Errors), nil)
		}
	}
	if err != nil {
		sub.convErr = &Error{Kind: KindConversion, Op: "convert", Err: err}
		return sub, nil, nil
	}
	for _, h := range w.hooks.encoded {
		h.OnBatchEncoded(rec, schema.DescriptorBytes(), sub.enc.Records)
	}
	if w.cfg.ZerobusWriterDisabled || len(sub.enc.Records) == 0 {
		return sub, nil, nil
	}
	return sub, &target{key: string(schema.DescriptorBytes()), schema: schema}, nil
}

// queue hands a converted batch to its stream, waiting for window room if
// block. On an error it releases sub.
func (w *Wrapper) queue(ctx context.Context, sub *submission, tgt *target, block bool, onDone func()) error {
	s, obs, err := w.streamFor(ctx, tgt)
	if err != nil {
		sub.release()
		return err
	}
	sub.obs = obs
	var cb func(*stream.Batch)
	if onDone != nil {
		cb = func(*stream.Batch) { onDone() }
	}
	out := outbound{onDone: cb, arrow: sub.arrow}
	if sub.enc != nil {
		sub.enc.Retain() // the stream's, released once it lets go of the records
		out.frames, out.records, out.onRelease = sub.enc.Frames, sub.enc.Records, sub.enc.Release
	}
	sub.sb, sub.queueErr = s.send(ctx, out, block)
	return nil
}

// SendBatch converts rec and sends it, returning when every row is durably
// acknowledged or has failed. Rows the encoder rejects fail with
// KindConversion; the others still go. rec is not retained.
//
// The result is non-nil whenever rec was accepted, even with an error; err
// is non-nil when any row failed (err == res.Error). If ctx ends first,
// SendBatch returns at once: requests not yet written are withdrawn (their
// rows fail, MayHaveLanded false); rows of requests already written are
// reported failed with MayHaveLanded true, since they may still land (they
// are not written again on a later call).
//
// Options: WithDescriptor.
func (w *Wrapper) SendBatch(ctx context.Context, rec arrow.RecordBatch, opts ...SendOption) (*TransmissionResult, error) {
	p, err := w.Enqueue(ctx, rec, opts...)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// SendBatchWithDescriptor is SendBatch with WithDescriptor(desc).
//
// Deprecated: use SendBatch(ctx, rec, WithDescriptor(desc)), which every
// send form takes.
func (w *Wrapper) SendBatchWithDescriptor(ctx context.Context, rec arrow.RecordBatch, desc *descriptorpb.DescriptorProto) (*TransmissionResult, error) {
	if desc == nil {
		return nil, &Error{Kind: KindConfiguration, Op: "send", Msg: "nil descriptor"}
	}
	return w.SendBatch(ctx, rec, WithDescriptor(desc))
}

// Enqueue converts rec and queues its records as SendBatch does, waiting
// only for room in the in-flight window (bounded by ctx), and returns once
// they are queued. Batches enqueued one after another by one goroutine go
// on the stream in that order, while earlier ones are still in flight:
// this is how to keep a sequence of batches in order without waiting for
// each. rec is not retained. Enqueue is Prepare followed by
// PreparedBatch.Enqueue.
//
// Wait on the returned PendingBatch for the result SendBatch would have
// given; waiting also gives the batch's memory back for reuse. The error
// is that of SendBatch when nothing was queued (a closed Wrapper, a nil
// batch, a stream that cannot open).
func (w *Wrapper) Enqueue(ctx context.Context, rec arrow.RecordBatch, opts ...SendOption) (*PendingBatch, error) {
	b, err := w.Prepare(ctx, rec, opts...)
	if err != nil {
		return nil, err
	}
	return b.Enqueue(ctx)
}

// Prepare converts rec into the records of one batch without queueing
// them; rec is not retained. Conversions may run in parallel, and the order
// of their PreparedBatch.Enqueue calls sets the order on the stream: to
// keep a sequence in order while converting on several cores, prepare
// concurrently and enqueue in sequence. The error is that of SendBatch for
// a closed Wrapper or a nil batch; rows that fail to convert are reported
// by the result, as with SendBatch.
func (w *Wrapper) Prepare(ctx context.Context, rec arrow.RecordBatch, opts ...SendOption) (*PreparedBatch, error) {
	set := sendOptions(opts)
	var sp *telemetry.Send
	if w.tel != nil && rec != nil {
		_, sp = w.tel.StartSend(ctx, telemetry.SpanSendBatch, int(rec.NumRows()))
	}
	sub, tgt, err := w.convert(sendRequest{rec: rec, desc: set.desc, offset: -1, block: true, span: sp})
	if err != nil {
		if sp != nil {
			sp.End(outcome(nil, err))
		}
		return nil, err
	}
	return &PreparedBatch{w: w, sub: sub, tgt: tgt, sp: sp}, nil
}

// PreparedBatch is a batch converted by Prepare and not yet queued.
type PreparedBatch struct {
	w    *Wrapper
	sub  *submission
	tgt  *target // nil: nothing to queue
	sp   *telemetry.Send
	mu   sync.Mutex
	done bool // Enqueue was called
}

// Enqueue queues the prepared records, waiting only for room in the
// in-flight window (bounded by ctx), and returns once they are queued; see
// Wrapper.Enqueue. It may be called once: a second call fails with
// KindConfiguration.
func (b *PreparedBatch) Enqueue(ctx context.Context) (*PendingBatch, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil, &Error{Kind: KindConfiguration, Op: "send", Msg: "prepared batch already enqueued"}
	}
	b.done = true
	if b.tgt != nil {
		if b.sp != nil {
			ctx = b.sp.In(ctx)
		}
		if err := b.w.queue(ctx, b.sub, b.tgt, true, nil); err != nil {
			if b.sp != nil {
				b.sp.End(outcome(nil, err))
			}
			return nil, err
		}
	}
	return &PendingBatch{w: b.w, sub: b.sub, sp: b.sp}, nil
}

// PendingBatch is a batch queued by Enqueue. It is the engine's one
// future: SendBatchAsync's batches are PendingBatches too, which their
// stream resolves instead of a caller waiting (asyncBatch).
type PendingBatch struct {
	w    *Wrapper
	sub  *submission
	sp   *telemetry.Send
	once sync.Once // settles the batch: its result built, its memory given back, its span ended
	res  *TransmissionResult
}

// Wait returns when every row of the batch is durably acknowledged or has
// failed, with the result and error SendBatch would have returned. If ctx
// ends first, Wait returns at once as SendBatch does: requests not yet
// written are withdrawn, and rows of requests already written are reported
// failed with MayHaveLanded true. Later calls return the first result.
func (p *PendingBatch) Wait(ctx context.Context) (*TransmissionResult, error) {
	p.once.Do(func() {
		p.wait(ctx)
		p.finish(false)
	})
	if !p.res.Success {
		return p.res, p.res.Error
	}
	return p.res, nil
}

// wait waits for the stream to resolve the batch, abandoning it if ctx
// ends first.
func (p *PendingBatch) wait(ctx context.Context) {
	sub, sp := p.sub, p.sp
	if sub.sb == nil {
		return
	}
	if sp != nil {
		sp.WaitStart(sub.obs)
	}
	if werr := sub.sb.Wait(ctx); werr != nil {
		sub.sb.Abandon(werr)
	}
	if sp != nil {
		sp.WaitEnd(waitKind(sub.sb))
	}
}

// settle finishes a batch its stream has resolved (see finish) and returns
// its result.
func (p *PendingBatch) settle(quiet bool) *TransmissionResult {
	p.once.Do(func() { p.finish(quiet) })
	return p.res
}

// finish ends the life of a resolved batch: its result built (and
// counted), its memory given back, its span ended. quiet, for async
// batches, which report only failures, skips building the result when
// every row was acknowledged and no hook wants it (res stays nil).
func (p *PendingBatch) finish(quiet bool) {
	w, sub := p.w, p.sub
	if quiet && sub.succeeded() && len(w.hooks.done) == 0 {
		w.mu.Lock()
		w.counts.batches++
		w.counts.rowsOK += int64(sub.rows)
		w.mu.Unlock()
		if w.tel != nil {
			w.tel.BatchDone(context.Background(), sub.rows)
		}
	} else {
		p.res = w.result(sub)
	}
	sub.release()
	if p.sp != nil && p.res != nil {
		p.sp.End(outcome(p.res, p.res.Error))
	}
}

// waitKind is the error kind of a batch's first failed request, "" if none.
func waitKind(sb *stream.Batch) string {
	for _, o := range sb.Outcomes() {
		if o.Err != nil {
			return kindID(fromStream("send", o.Err).Kind)
		}
	}
	return ""
}

// result builds the TransmissionResult of a submission.
func (w *Wrapper) result(sub *submission) *TransmissionResult {
	res := &TransmissionResult{TotalRows: sub.rows, Offset: sub.offset}
	if sub.convErr != nil {
		res.FailedRows = make([]FailedRow, sub.rows)
		for i := range res.FailedRows {
			res.FailedRows[i] = FailedRow{Index: i, Error: sub.convErr}
		}
	} else if sub.enc == nil {
		w.arrowOutcomes(sub, res)
	} else {
		enc := sub.enc
		res.BatchSizeBytes = enc.Bytes
		for _, re := range enc.Errors {
			res.FailedRows = append(res.FailedRows, FailedRow{Index: re.Row,
				Error: &Error{Kind: KindConversion, Op: "convert", Msg: re.Error()}})
		}
		switch {
		case sub.sb == nil:
			res.SuccessfulRows = slices.Clone(enc.Rows) // enc's memory is reused
		default:
			res.SuccessfulRows = make([]int, 0, len(enc.Records))
			for _, o := range sub.sb.Outcomes() {
				res.Attempts = max(res.Attempts, o.Attempts)
				rows := enc.Rows[o.Start:o.End]
				if o.Err == nil {
					res.SuccessfulRows = append(res.SuccessfulRows, rows...)
					continue
				}
				e := fromStream("send", o.Err)
				for _, row := range rows {
					res.FailedRows = append(res.FailedRows, FailedRow{Index: row, Error: e, MayHaveLanded: o.MayHaveLanded})
				}
			}
		}
		if len(enc.Errors) > 0 && len(res.FailedRows) > len(enc.Errors) {
			slices.SortFunc(res.FailedRows, func(a, b FailedRow) int { return a.Index - b.Index })
		}
	}
	res.SuccessfulCount = len(res.SuccessfulRows)
	res.FailedCount = len(res.FailedRows)
	res.Success = res.FailedCount == 0
	res.Latency = time.Since(sub.start)
	if !res.Success {
		first := res.FailedRows[0].Error
		res.Error = &Error{Kind: first.Kind, Op: "send batch",
			Msg:       fmt.Sprintf("%d of %d rows failed", res.FailedCount, res.TotalRows),
			Err:       first,
			Result:    res,
			retryable: first.retryable,
		}
	}
	w.mu.Lock()
	w.counts.batches++
	w.counts.rowsOK += int64(res.SuccessfulCount)
	w.counts.rowsFailed += int64(res.FailedCount)
	w.mu.Unlock()
	for _, h := range w.hooks.done {
		h.OnBatchDone(res)
	}
	if w.tel != nil {
		w.recordResult(res)
	}
	return res
}

// succeeded reports, once resolved, whether every row was acknowledged.
func (s *submission) succeeded() bool {
	if s.convErr != nil || (s.enc != nil && len(s.enc.Errors) > 0) || s.queueErr != nil {
		return false
	}
	if s.sb == nil {
		return true
	}
	for _, o := range s.sb.Outcomes() {
		if o.Err != nil {
			return false
		}
	}
	return true
}
