package bindings

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyzerobus/pyzerobus/zbwrap"
)

// maxDistinctErrors bounds the distinct errors listed in one result; the
// rows of further errors share one entry per kind.
const maxDistinctErrors = 1000

// operation is one send: its input is read and its chunks are sent by
// goroutines the operation owns; it ends when all have returned.
type operation struct {
	id       int64
	ctx      context.Context
	cancel   context.CancelFunc
	start    time.Time
	done     chan struct{}
	resolved atomic.Int64 // rows acknowledged or failed so far

	mu       sync.Mutex
	total    int // rows taken from the input
	attempts int
	bytes    int
	batches  int
	runs     []failedRun
	errs     []errorInfo
	errIndex map[any]int // *zbwrap.Error, or a kind name past maxDistinctErrors
	inputErr error

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
// pyzerobus._result.
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

func newOperation(id int64) *operation {
	ctx, cancel := context.WithCancel(context.Background())
	return &operation{
		id: id, ctx: ctx, cancel: cancel, start: time.Now(),
		done: make(chan struct{}), errIndex: map[any]int{},
	}
}

func (o *operation) finished() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// run reads src, sends its chunks and finishes the operation.
func (w *Wrapper) run(o *operation, src source) {
	var chunks sync.WaitGroup
	func() {
		defer func() {
			if r := recover(); r != nil {
				o.setInputErr(panicError(r))
			}
		}()
		w.feed(o, src, &chunks)
	}()
	chunks.Wait()
	func() {
		defer func() { _ = recover() }() // a producer's release callback failing changes no result
		src.Release()
	}()
	w.finish(o)
}

// feed reads batches from src and starts a goroutine per chunk of at most
// batch_rows rows and about batch_bytes of Arrow data, holding one of the
// Wrapper's slots per chunk in flight. The chunks convert in parallel and
// queue in input order: each waits for its predecessor's turn.
func (w *Wrapper) feed(o *operation, src source, chunks *sync.WaitGroup) {
	var prev chan struct{} // closed once the previous chunk had its turn to queue
	for o.ctx.Err() == nil {
		rec, err := readBatch(src)
		if err != nil {
			o.setInputErr(err)
			return
		}
		if rec == nil {
			return
		}
		n := int(rec.NumRows())
		step := chunkRows(rec, w.ext.BatchRows, w.ext.BatchBytes)
		for off := 0; off < n; off += step {
			end := min(off+step, n)
			select {
			case w.slots <- struct{}{}:
			case <-o.ctx.Done():
				// Read but never sent: these rows certainly did not land.
				o.addError(n-off, func(base int) error {
					return newError(kindTransmission, "send", "cancelled before rows %d..%d were sent", base, base+n-off-1)
				}, false)
				return
			}
			var chunk arrow.RecordBatch
			if off == 0 && end == n {
				rec.Retain()
				chunk = rec
			} else {
				chunk = rec.NewSlice(int64(off), int64(end))
			}
			base := o.take(end - off)
			turn := make(chan struct{})
			chunks.Add(1)
			go w.sendChunk(o, chunk, base, prev, turn, chunks)
			prev = turn
		}
	}
}

// chunkRows is how many rows of rec go in one chunk: at most maxRows, and
// about maxBytes of rec's Arrow data, at least one row.
func chunkRows(rec arrow.RecordBatch, maxRows, maxBytes int) int {
	n := rec.NumRows()
	if n == 0 || maxBytes <= 0 {
		return maxRows
	}
	var size int64
	for _, c := range rec.Columns() {
		size += valueBytes(c)
	}
	perRow := max(size/n, 1)
	return int(max(min(int64(maxRows), int64(maxBytes)/perRow), 1))
}

// valueBytes is the size of the values of a's rows, for fixed-width and
// binary/string columns: those of a slice only, not of the buffers it shares
// (pyarrow's chunks are often slices of one large buffer). Other columns
// count nothing, so they never make chunks smaller than batch_rows.
func valueBytes(a arrow.Array) int64 {
	n := int64(a.Len())
	switch v := a.(type) {
	case *array.String:
		return spanned(v.ValueOffsets()) + 4*n
	case *array.Binary:
		return spanned(v.ValueOffsets()) + 4*n
	case *array.LargeString:
		return spanned(v.ValueOffsets()) + 8*n
	case *array.LargeBinary:
		return spanned(v.ValueOffsets()) + 8*n
	}
	if fw, ok := a.DataType().(arrow.FixedWidthDataType); ok {
		return int64(fw.BitWidth()) * n / 8
	}
	return 0
}

func spanned[O int32 | int64](offs []O) int64 {
	if len(offs) == 0 {
		return 0
	}
	return int64(offs[len(offs)-1] - offs[0])
}

// sendChunk converts one chunk, queues it once the previous chunk had its
// turn (prev closed; nil for the first), then passes the turn on (closes
// turn) and waits for the chunk's result, which it adds to the operation.
// The turn passes on whatever happens to the chunk.
func (w *Wrapper) sendChunk(o *operation, chunk arrow.RecordBatch, base int, prev, turn chan struct{}, chunks *sync.WaitGroup) {
	rows := int(chunk.NumRows())
	defer chunks.Done()
	defer func() { <-w.slots }()
	pass := sync.OnceFunc(func() {
		if prev != nil {
			<-prev
		}
		close(turn)
	})
	defer pass()
	defer func() {
		if r := recover(); r != nil {
			o.addRun(base, rows, panicError(r), false)
		}
	}()
	b, err := func() (*zbwrap.PreparedBatch, error) {
		defer chunk.Release() // converted: the chunk is no longer needed
		return w.zw.Prepare(o.ctx, chunk)
	}()
	if err != nil {
		o.addRun(base, rows, err, false)
		return
	}
	if prev != nil {
		<-prev
	}
	p, err := b.Enqueue(o.ctx)
	pass()
	if err != nil {
		o.addRun(base, rows, err, false)
		return
	}
	res, _ := p.Wait(o.ctx)
	o.addResult(base, res)
}

// take reserves the row numbers of n rows read from the input.
func (o *operation) take(n int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	base := o.total
	o.total += n
	return base
}

// addError takes n more rows from the input and fails them all with the
// error that mk builds from their first row number.
func (o *operation) addError(n int, mk func(base int) error, mayHaveLanded bool) {
	base := o.take(n)
	o.addRun(base, n, mk(base), mayHaveLanded)
}

func (o *operation) setInputErr(err error) {
	o.mu.Lock()
	o.inputErr = err
	o.mu.Unlock()
}

// errorRef returns the index of err in o.errs, adding it; o.mu held.
func (o *operation) errorRef(err error) int {
	if err == nil {
		err = newError(kindInternal, "send", "the engine returned neither a result nor an error")
	}
	var key any = err
	if !reflect.TypeOf(err).Comparable() {
		key = "msg:" + err.Error()
	}
	if i, ok := o.errIndex[key]; ok {
		return i
	}
	info := wrapError(err).(*facadeError).info
	if len(o.errs) >= maxDistinctErrors {
		key = "more:" + info.Kind
		if i, ok := o.errIndex[key]; ok {
			return i
		}
		info = errorInfo{Kind: info.Kind, Retryable: info.Retryable,
			Message: fmt.Sprintf("further %s errors (only the first %d distinct errors are listed)", info.Kind, maxDistinctErrors)}
	}
	o.errs = append(o.errs, info)
	o.errIndex[key] = len(o.errs) - 1
	return len(o.errs) - 1
}

// addRun fails rows base..base+n-1 with one error.
func (o *operation) addRun(base, n int, err error, mayHaveLanded bool) {
	if n == 0 {
		return
	}
	o.mu.Lock()
	o.runs = append(o.runs, failedRun{start: base, count: n, err: o.errorRef(err), mayHaveLanded: mayHaveLanded})
	o.mu.Unlock()
	o.resolved.Add(int64(n))
}

// addResult adds the outcome of a chunk whose first row is row base.
func (o *operation) addResult(base int, res *zbwrap.TransmissionResult) {
	o.mu.Lock()
	o.batches++
	o.attempts = max(o.attempts, res.Attempts)
	o.bytes += res.BatchSizeBytes
	var cur *failedRun
	for _, f := range res.FailedRows { // ascending by index
		row := base + f.Index
		idx := o.errorRef(renumber(f.Error, f.Index, row))
		if cur != nil && cur.start+cur.count == row && cur.err == idx && cur.mayHaveLanded == f.MayHaveLanded {
			cur.count++
			continue
		}
		o.runs = append(o.runs, failedRun{start: row, count: 1, err: idx, mayHaveLanded: f.MayHaveLanded})
		cur = &o.runs[len(o.runs)-1]
	}
	o.mu.Unlock()
	o.resolved.Add(int64(res.TotalRows))
}

// renumber returns a row error whose message names the row by its number
// in the operation (row) rather than in its chunk (index).
func renumber(e *zbwrap.Error, index, row int) error {
	prefix := fmt.Sprintf("row %d", index)
	if index == row || e.Kind != zbwrap.KindConversion || !strings.HasPrefix(e.Msg, prefix) {
		return e
	}
	c := *e
	c.Msg = fmt.Sprintf("row %d", row) + e.Msg[len(prefix):]
	return &c
}

// finish builds the result, marks the operation done and logs the
// completion.
func (w *Wrapper) finish(o *operation) {
	o.mu.Lock()
	slices.SortFunc(o.runs, func(a, b failedRun) int { return a.start - b.start })
	failed := 0
	for _, r := range o.runs {
		failed += r.count
	}
	res := &resultJSON{
		Op: o.id, TotalRows: o.total, FailedCount: failed, SuccessfulCount: o.total - failed,
		Attempts: o.attempts, LatencyS: time.Since(o.start).Seconds(), BatchSizeBytes: o.bytes,
		Batches: o.batches, Failed: o.runs, Errors: o.errs, Cancelled: o.ctx.Err() != nil,
	}
	if res.Failed == nil {
		res.Failed = []failedRun{}
	}
	if res.Errors == nil {
		res.Errors = []errorInfo{}
	}
	if o.inputErr != nil {
		info := wrapError(o.inputErr).(*facadeError).info
		res.InputError = &info
	}
	if len(o.runs) > 0 {
		first := o.runs[0]
		summary := o.errs[first.err]
		summary.Message = fmt.Sprintf("%d of %d rows failed; row %d: %s", failed, o.total, first.start, summary.Message)
		res.Error = &summary
	}
	res.Success = res.Error == nil && res.InputError == nil
	o.result = res
	o.mu.Unlock()
	o.cancel() // release the context's resources

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
