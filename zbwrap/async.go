package zbwrap

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
)

// asyncBatch is a batch of SendBatchAsync: a PendingBatch that its stream
// resolves instead of a caller waiting on it, with an offset. Two owners
// hold it, the stream resolving it and the call returning; the last one
// settles it.
type asyncBatch struct {
	PendingBatch
	off     int64
	refs    atomic.Int32
	discard bool // failed before anything was queued: reported by the send call
	done    chan struct{}
	failed  *TransmissionResult // set before done closes when the batch failed
}

// SendBatchAsync converts rec and queues its records, waiting only for room
// in the in-flight window, and for the stream's writer when it is more than
// 1 MiB behind (bounded by ctx). It returns the batch's offset:
// calls are numbered 0, 1, 2, ... in the order they reached this Wrapper (a
// call that fails without queueing anything returns -1 and its number is
// skipped). Wait with WaitForOffset or Flush, which also report failed
// batches. rec is not retained. Once queued, a batch goes on regardless of
// ctx. If ctx ends after part of the batch was queued, the offset comes with
// an error and WaitForOffset reports the rows that did not go.
//
// Options: WithDescriptor.
func (w *Wrapper) SendBatchAsync(ctx context.Context, rec arrow.RecordBatch, opts ...SendOption) (int64, error) {
	return w.sendAsync(ctx, sendRequest{rec: rec, desc: sendOptions(opts).desc, block: true})
}

// TrySendBatchAsync is SendBatchAsync that fails at once (Retryable,
// wrapping an error that names the full window) instead of waiting when the
// in-flight window has no room for the batch's first request; it never
// waits for the writer.
func (w *Wrapper) TrySendBatchAsync(rec arrow.RecordBatch, opts ...SendOption) (int64, error) {
	return w.sendAsync(context.Background(), sendRequest{rec: rec, desc: sendOptions(opts).desc})
}

func (w *Wrapper) sendAsync(ctx context.Context, req sendRequest) (int64, error) {
	rec := req.rec
	// Close waits for calls in progress so that it reports their failures.
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return -1, closedError("send")
	}
	w.active.Add(1)
	w.mu.Unlock()
	defer w.active.Done()
	a := &asyncBatch{PendingBatch: PendingBatch{w: w}, done: make(chan struct{})}
	// Two references: the stream resolving the batch and this call
	// returning; the last one finishes the batch.
	a.refs.Store(2)
	w.amu.Lock()
	a.off = w.nextAsync
	w.nextAsync++
	w.async = append(w.async, a)
	w.amu.Unlock()
	var sp *telemetry.Send
	if w.tel != nil && rec != nil {
		ctx, sp = w.tel.StartSend(ctx, telemetry.SpanSendBatchAsync, int(rec.NumRows()))
	}
	req.offset, req.span = a.off, sp
	req.onDone = func() { w.releaseAsync(a) }
	off, err := w.queueAsync(ctx, req, a)
	if sp != nil {
		o := outcome(nil, err)
		o.Offset = off
		sp.End(o)
	}
	return off, err
}

// queueAsync submits the async batch a.
func (w *Wrapper) queueAsync(ctx context.Context, req sendRequest, a *asyncBatch) (int64, error) {
	sub, err := w.submit(ctx, req)
	a.sub = sub
	switch {
	case err != nil:
		a.discard = true
		a.refs.Add(-1)
		w.releaseAsync(a)
		return -1, err
	case sub.sb == nil:
		a.refs.Add(-1) // no stream reference
	case sub.queueErr != nil:
		queued := 0
		for _, o := range sub.sb.Outcomes() {
			if o.Offset >= 0 {
				queued++
			}
		}
		e := fromStream("send", sub.queueErr)
		if queued == 0 {
			a.discard = true // reported here, not again
			w.releaseAsync(a)
			return -1, e
		}
		w.releaseAsync(a)
		return a.off, &Error{Kind: e.Kind, Op: "send", Msg: fmt.Sprintf(
			"batch at offset %d only partly queued; WaitForOffset reports its failed rows", a.off), Err: e, retryable: e.retryable}
	}
	w.releaseAsync(a)
	return a.off, nil
}

// releaseAsync drops one reference of an async batch; the last one
// finishes it.
func (w *Wrapper) releaseAsync(a *asyncBatch) {
	if a.refs.Add(-1) != 0 {
		return
	}
	var res *TransmissionResult
	if a.discard { // the send call reported it
		a.once.Do(func() {
			if a.sub != nil {
				a.sub.release()
			}
		})
	} else if res = a.settle(true); res != nil && res.Success {
		res = nil
	}
	w.amu.Lock()
	a.failed = res
	close(a.done)
	if res != nil {
		w.failed = append(w.failed, a)
	}
	n := 0
	for n < len(w.async) && isClosed(w.async[n].done) {
		n++
	}
	clear(w.async[:n])
	w.async = w.async[n:]
	w.amu.Unlock()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// WaitForOffset waits until the async batch at off and every async batch
// queued before it are resolved, and reports those of them that failed
// (each failure is reported once, by the first WaitForOffset or Flush that
// covers it): errors.Join of *Error values whose Result says which rows
// failed. If ctx ends first it returns ctx's error (KindTransmission); the
// batches go on.
func (w *Wrapper) WaitForOffset(ctx context.Context, off int64) error {
	w.amu.Lock()
	if off < 0 || off >= w.nextAsync {
		next := w.nextAsync
		w.amu.Unlock()
		return &Error{Kind: KindConfiguration, Op: "wait for offset",
			Msg: fmt.Sprintf("offset %d was not returned by SendBatchAsync (next is %d)", off, next)}
	}
	var waits []chan struct{}
	for _, a := range w.async {
		if a.off > off {
			break
		}
		waits = append(waits, a.done)
	}
	w.amu.Unlock()
	for _, c := range waits {
		select {
		case <-c:
		case <-ctx.Done():
			return &Error{Kind: KindTransmission, Op: "wait for offset", Err: ctx.Err(), retryable: true}
		}
	}
	return w.takeFailures(off)
}

// takeFailures removes and reports the failed async batches up to off.
func (w *Wrapper) takeFailures(off int64) error {
	w.amu.Lock()
	var errs []error
	kept := w.failed[:0]
	for _, a := range w.failed {
		if a.off <= off {
			e := a.failed.Error.(*Error)
			errs = append(errs, &Error{Kind: e.Kind, Op: fmt.Sprintf("batch at offset %d", a.off),
				Msg: e.Msg, Err: e.Err, Result: a.failed, retryable: e.retryable})
		} else {
			kept = append(kept, a)
		}
	}
	clear(w.failed[len(kept):])
	w.failed = kept
	w.amu.Unlock()
	return errors.Join(errs...)
}
