package bindings

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pyzerobus/pyzerobus/zbwrap"
)

// operation is one send: the engine reads its input and sends its chunks
// (zbwrap.Wrapper.StartReader); the operation's goroutine (run) waits for
// the send, releases the input and records the result.
type operation struct {
	id     int64
	send   *zbwrap.ReaderSend
	done   chan struct{}
	result *resultJSON // set before done closes
}

// failedRun is a run of consecutive failed rows sharing an error; in JSON
// it is [start, count, error index, may have landed (0 or 1)].
type failedRun struct {
	start, count, err int
	mayHaveLanded     bool
}

func (r failedRun) MarshalJSON() ([]byte, error) {
	land := 0
	if r.mayHaveLanded {
		land = 1
	}
	return fmt.Appendf(nil, "[%d,%d,%d,%d]", r.start, r.count, r.err, land), nil
}

// resultJSON is the JSON form of an operation's result, read by
// pyzerobus.result.
type resultJSON struct {
	Op              int64       `json:"op"`
	Success         bool        `json:"success"`
	TotalRows       int         `json:"total_rows"`
	SuccessfulCount int         `json:"successful_count"`
	FailedCount     int         `json:"failed_count"`
	Attempts        int         `json:"attempts"`
	LatencyS        float64     `json:"latency_s"`
	BatchSizeBytes  int         `json:"batch_size_bytes"`
	Batches         int         `json:"batches"`
	Failed          []failedRun `json:"failed"`
	Errors          []errorInfo `json:"errors"`
	Error           *errorInfo  `json:"error"`
	Cancelled       bool        `json:"cancelled"`
	InputError      *errorInfo  `json:"input_error"`
}

// cancel ends the operation's send early (zbwrap.ReaderSend.Cancel).
func (o *operation) cancel() { o.send.Cancel() }

func (o *operation) finished() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// readerOptions are the engine's options of a send: chunks of batch_rows
// rows and about batch_bytes, up to max_concurrent_batches of the Wrapper's
// chunks (all operations together) in flight.
func (w *Wrapper) readerOptions() []zbwrap.SendOption {
	return []zbwrap.SendOption{
		zbwrap.WithChunkRows(w.chunk[0]),
		zbwrap.WithChunkBytes(w.chunk[1]),
		zbwrap.WithLimiter(w.limiter),
	}
}

// run waits for the operation's send, releases its input and finishes the
// operation.
func (w *Wrapper) run(o *operation, src source) {
	res, _ := o.send.Wait(context.Background()) // a result whatever the error
	func() {
		defer func() { _ = recover() }() // a producer's release callback failing changes no result
		src.Release()
	}()
	var out *resultJSON
	func() {
		defer func() {
			if r := recover(); r != nil {
				out = &resultJSON{Op: o.id, Failed: []failedRun{}, Errors: []errorInfo{}}
				info := wrapError(panicError(r)).(*facadeError).info
				out.Error = &info
			}
		}()
		out = resultOf(o.id, res)
	}()
	w.finish(o, out)
}

// resultOf is the JSON form of the engine's result.
func resultOf(id int64, res *zbwrap.ReaderResult) *resultJSON {
	out := &resultJSON{
		Op: id, TotalRows: res.TotalRows, SuccessfulCount: res.SuccessfulCount, FailedCount: res.FailedCount,
		Attempts: res.Attempts, LatencyS: res.Latency.Seconds(), BatchSizeBytes: res.BatchSizeBytes,
		Batches: res.Batches, Cancelled: res.Cancelled,
		Failed: make([]failedRun, len(res.Failed)), Errors: make([]errorInfo, len(res.Errors)),
	}
	index := make(map[*zbwrap.Error]int, len(res.Errors))
	for i, e := range res.Errors {
		index[e] = i
		out.Errors[i] = infoOf(e)
	}
	for i, r := range res.Failed {
		out.Failed[i] = failedRun{start: r.Start, count: r.Count, err: index[r.Error], mayHaveLanded: r.MayHaveLanded}
	}
	if res.InputError != nil {
		info := infoOf(res.InputError)
		out.InputError = &info
	}
	if len(out.Failed) > 0 {
		first := out.Failed[0]
		summary := out.Errors[first.err]
		summary.Message = fmt.Sprintf("%d of %d rows failed; row %d: %s", out.FailedCount, out.TotalRows, first.start, summary.Message)
		out.Error = &summary
	}
	out.Success = out.Error == nil && out.InputError == nil
	return out
}

// infoOf is the JSON form of an engine error.
func infoOf(err error) errorInfo { return wrapError(err).(*facadeError).info }

// finish records the result, marks the operation done and logs the
// completion.
func (w *Wrapper) finish(o *operation, res *resultJSON) {
	o.result = res
	w.mu.Lock()
	close(o.done)
	if w.notify {
		w.doneLog = append(w.doneLog, o.id)
	}
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	w.running.Done()
}

// sloggerOf makes the engine's logger.
func sloggerOf(h *logHandler) *slog.Logger { return slog.New(h) }
