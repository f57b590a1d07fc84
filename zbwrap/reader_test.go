package zbwrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// checkReaderLeaks fails the test if a goroutine it started (a send's
// included) outlives it.
func checkReaderLeaks(t testing.TB) { checkLeaks(t) }

// step is what a scriptReader's Next does: return a batch, block until a
// channel closes first, fail, or panic.
type step struct {
	rec   arrow.RecordBatch
	wait  chan struct{}
	err   error
	panic any
}

// scriptReader is an array.RecordReader that follows its steps, then
// ends. It records how many times Next was called.
type scriptReader struct {
	schema *arrow.Schema
	steps  []step
	cur    arrow.RecordBatch
	err    error
	calls  atomic.Int32
}

func (r *scriptReader) Retain()               {}
func (r *scriptReader) Release()              { r.drop() }
func (r *scriptReader) Schema() *arrow.Schema { return r.schema }
func (r *scriptReader) Err() error            { return r.err }
func (r *scriptReader) RecordBatch() arrow.RecordBatch {
	return r.cur
}
func (r *scriptReader) Record() arrow.RecordBatch { return r.cur }

func (r *scriptReader) drop() {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}

func (r *scriptReader) Next() bool {
	r.calls.Add(1)
	r.drop()
	for len(r.steps) > 0 {
		s := r.steps[0]
		r.steps = r.steps[1:]
		switch {
		case s.wait != nil:
			<-s.wait
		case s.err != nil:
			r.err = s.err
			return false
		case s.panic != nil:
			panic(s.panic)
		default:
			r.cur = s.rec
			return true
		}
	}
	return false
}

// idBatches are steps of count batches of n rows, ids consecutive from 0.
func idBatches(count, n, size int) []step {
	out := make([]step, count)
	for i := range out {
		out[i] = step{rec: makeBatch(i*n, n, size)}
	}
	return out
}

func dryWrapper(t testing.TB) *Wrapper {
	t.Helper()
	w, err := New(context.Background(), Config{}, WithTableName(testTable), WithWriterDisabled(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

// Many chunks, several in flight behind a small window, reach the table in
// the reader's order, and the result counts them all.
func TestSendReaderKeepsOrder(t *testing.T) {
	checkReaderLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv, WithMaxInflightRecords(300), WithStreams(1)) // total order
	r := &scriptReader{schema: testSchema, steps: idBatches(10, 700, 20)}
	s, err := w.StartReader(context.Background(), r, WithChunkRows(150), WithConcurrency(4))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Wait(context.Background())
	if err != nil || !res.Success || res.Error != nil || res.InputError != nil || res.Cancelled {
		t.Fatalf("SendReader: %v %v", res, err)
	}
	// 700 rows a batch in chunks of 150: 5 chunks a batch.
	if res.TotalRows != 7000 || res.SuccessfulCount != 7000 || res.FailedCount != 0 || res.Batches != 50 ||
		res.Attempts != 1 || res.BatchSizeBytes == 0 || len(res.Failed) != 0 || len(res.Errors) != 0 {
		t.Fatalf("result %v", res)
	}
	if s.Resolved() != 7000 {
		t.Fatalf("resolved %d", s.Resolved())
	}
	if res.IsPartialSuccess() || !strings.Contains(res.String(), "rows=7000") {
		t.Fatal(res.String())
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkIDsInOrder(t, srv, 7000)
}

// Wide rows travel in chunks cut by bytes; a Limiter bounds the chunks of
// several sends together.
func TestSendReaderChunksByBytes(t *testing.T) {
	w := dryWrapper(t)
	recs := idBatches(2, 2500, 1000)
	per := chunkRows(recs[0].rec, DefaultChunkRows, 100_000) // rows of about 1,012 bytes
	if per != 98 {
		t.Fatalf("%d rows a chunk", per)
	}
	lim := NewLimiter(2)
	res, err := w.SendReader(context.Background(), &scriptReader{schema: testSchema, steps: recs},
		WithChunkBytes(100_000), WithLimiter(lim))
	if err != nil || res.SuccessfulCount != 5000 {
		t.Fatalf("SendReader: %v %v", res, err)
	}
	if want := 2 * ((2500 + per - 1) / per); res.Batches != want {
		t.Fatalf("%d batches, want %d", res.Batches, want)
	}
	if lim.used != 0 {
		t.Fatalf("%d slots still held", lim.used)
	}
	// Rows only.
	res, err = w.SendReader(context.Background(), &scriptReader{schema: testSchema, steps: idBatches(1, 2500, 1000)},
		WithChunkBytes(0), WithChunkRows(1000))
	if err != nil || res.Batches != 3 {
		t.Fatalf("SendReader: %v %v", res, err)
	}
}

func TestChunkRows(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	wide := strings.Repeat("w", 996) // 1,000 bytes a row with its offset
	for range 5000 {
		b.Field(0).(*array.StringBuilder).Append(wide)
	}
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()
	for _, c := range []struct {
		rows, bytes, want int
	}{
		{10_000, 1 << 20, 1048}, // 1 MiB / ~1,000 bytes
		{500, 1 << 20, 500},     // rows bind first
		{10_000, 0, 10_000},     // no byte bound
		{10_000, 10, 1},         // at least one row
	} {
		if got := chunkRows(rec, c.rows, c.bytes); got != c.want {
			t.Errorf("chunkRows(rows %d, bytes %d) = %d, want %d", c.rows, c.bytes, got, c.want)
		}
	}
	empty := rec.NewSlice(0, 0)
	defer empty.Release()
	if got := chunkRows(empty, 7, 1<<20); got != 7 {
		t.Errorf("empty batch: %d", got)
	}
	// A slice counts its own rows, not the buffers it shares.
	slice := rec.NewSlice(1000, 1100)
	defer slice.Release()
	if got := chunkRows(slice, 10_000, 1<<20); got != 1048 {
		t.Errorf("slice: %d rows a chunk, want 1048", got)
	}
	// Every binary layout and fixed-width types count; nested ones do not.
	mem := memory.DefaultAllocator
	for _, c := range []struct {
		arr  arrow.Array
		want int64
	}{
		{func() arrow.Array {
			b := array.NewLargeStringBuilder(mem)
			b.AppendValues([]string{"ab", "cde"}, nil)
			return b.NewArray()
		}(), 5 + 16},
		{func() arrow.Array {
			b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
			b.AppendValues([][]byte{{1}, {2, 3}}, nil)
			return b.NewArray()
		}(), 3 + 8},
		{func() arrow.Array {
			b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.LargeBinary)
			b.AppendValues([][]byte{{1}, {2, 3}}, nil)
			return b.NewArray()
		}(), 3 + 16},
		{func() arrow.Array {
			b := array.NewInt32Builder(mem)
			b.AppendValues([]int32{1, 2}, nil)
			return b.NewArray()
		}(), 8},
		{func() arrow.Array {
			b := array.NewListBuilder(mem, arrow.PrimitiveTypes.Int64)
			b.Append(true)
			return b.NewArray()
		}(), 0},
		{func() arrow.Array {
			b := array.NewStringBuilder(mem)
			return b.NewArray()
		}(), 0},
	} {
		if got := valueBytes(c.arr); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.arr.DataType(), got, c.want)
		}
		c.arr.Release()
	}
}

// Rows the encoder rejects fail with their number in the reader, the
// others go; past MaxDistinctErrors, errors are shared by kind and their
// rows form runs.
func TestSendReaderRowErrors(t *testing.T) {
	w := dryWrapper(t)
	vals := make([]uint64, 3000)
	for i := range vals {
		vals[i] = uint64(i)
		if i >= 1500 && i < 2700 { // 1200 rows, beyond the distinct-error cap
			vals[i] = 1 << 63
		}
	}
	vals[10] = 1<<63 + 1
	rec := u64Batch(vals...)
	defer rec.Release()
	rec.Retain() // the reader's, released as it moves on
	r := &scriptReader{schema: rec.Schema(), steps: []step{{rec: rec}}}
	res, err := w.SendReader(context.Background(), r, WithChunkRows(1000))
	if res.Success || res.TotalRows != 3000 || res.FailedCount != 1201 || res.SuccessfulCount != 1799 || !res.IsPartialSuccess() {
		t.Fatalf("counts %v", res)
	}
	var e *Error
	if err != res.Error || !errors.As(err, &e) || e.Kind != KindConversion ||
		!strings.Contains(e.Error(), "1201 of 3000 rows failed; row 10: zbwrap: conversion error: convert: row 10,") {
		t.Fatalf("summary %v", err)
	}
	if len(res.Errors) != MaxDistinctErrors+1 || !strings.Contains(res.Errors[MaxDistinctErrors].Msg, "further conversion errors") {
		t.Fatalf("%d distinct errors, last %v", len(res.Errors), res.Errors[len(res.Errors)-1])
	}
	var failed []int
	for _, run := range res.Failed {
		if run.Error != res.Errors[MaxDistinctErrors] && !strings.HasPrefix(run.Error.Msg, fmt.Sprintf("row %d,", run.Start)) {
			t.Fatalf("run %+v has error %q, not naming its row", run, run.Error.Msg)
		}
	}
	// The rows past the cap (in the order chunks resolved) share an error
	// and form runs: at most one per chunk.
	further, furtherRuns := 0, 0
	for _, run := range res.Failed {
		if run.Error == res.Errors[MaxDistinctErrors] {
			further += run.Count
			furtherRuns++
		}
	}
	if further != 1201-MaxDistinctErrors || furtherRuns > 3 {
		t.Fatalf("%d rows in %d runs past the cap", further, furtherRuns)
	}
	for i := range res.FailedIndices() {
		failed = append(failed, i)
	}
	want := []int{10}
	for i := 1500; i < 2700; i++ {
		want = append(want, i)
	}
	if !slices.Equal(failed, want) {
		t.Fatalf("failed rows %v...", failed[:5])
	}
	for i := range res.FailedIndices() { // stopping early
		if i != 10 {
			t.Fatal(i)
		}
		break
	}

	// The failed rows of a batch holding rows 1000..2999.
	part := rec.NewSlice(1000, 3000)
	defer part.Release()
	out, err := res.ExtractFailedRows(part, 1000)
	if err != nil || out.NumRows() != 1200 || out.Column(0).(*array.Uint64).Value(0) != 1<<63 {
		t.Fatalf("ExtractFailedRows: %v %v", out, err)
	}
	out.Release()
	if _, err := res.ExtractFailedRows(part, 1001); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("rows past the result: %v", err)
	}
	if _, err := res.ExtractFailedRows(nil, 0); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("nil batch: %v", err)
	}
}

// A batch that cannot be converted at all fails as one run per chunk.
func TestSendReaderWholeChunkFailures(t *testing.T) {
	w := dryWrapper(t)
	sc := arrow.NewSchema([]arrow.Field{{Name: "iv", Type: arrow.FixedWidthTypes.MonthInterval}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	for i := range 1000 {
		b.Field(0).(*array.MonthIntervalBuilder).Append(arrow.MonthInterval(i))
	}
	rec := b.NewRecordBatch()
	b.Release()
	res, err := w.SendReader(context.Background(), &scriptReader{schema: sc, steps: []step{{rec: rec}}}, WithChunkRows(100))
	if !errors.Is(err, ErrConversion) || res.FailedCount != 1000 || res.Batches != 10 || len(res.Failed) != 10 {
		t.Fatalf("%v %v", res, err)
	}
	for i, run := range res.Failed {
		if run.Start != 100*i || run.Count != 100 || run.MayHaveLanded {
			t.Fatalf("run %d: %+v", i, run)
		}
	}
}

// Cancelling a send whose reader blocks: the reader is read no more once
// Next returns, the rows on the wire fail as possibly stored, the rows read
// but never sent as certainly not stored.
func TestSendReaderCancel(t *testing.T) {
	checkReaderLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultDelayAcks, Delay: 2 * time.Second}))
	w := newWrapper(t, srv)
	gate := make(chan struct{})
	steps := idBatches(1, 100, 20)
	steps = append(steps, step{wait: gate}, step{rec: makeBatch(100, 100, 20)}, step{rec: makeBatch(200, 100, 20)})
	r := &scriptReader{schema: testSchema, steps: steps}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var res *ReaderResult
	var err error
	go func() {
		defer close(done)
		res, err = w.SendReader(ctx, r)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().RequestsWritten == 0 && time.Now().Before(deadline) { // the first chunk is on the wire
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	close(gate)
	<-done
	if !res.Cancelled || res.TotalRows != 200 || res.FailedCount != 200 || len(res.Failed) != 2 || r.calls.Load() != 2 {
		t.Fatalf("result %v, %d calls of Next", res, r.calls.Load())
	}
	inFlight, unsent := res.Failed[0], res.Failed[1]
	if inFlight.Start != 0 || inFlight.Count != 100 || !inFlight.MayHaveLanded ||
		unsent.Start != 100 || unsent.Count != 100 || unsent.MayHaveLanded ||
		!strings.Contains(unsent.Error.Msg, "cancelled before rows 100..199") || !unsent.Error.Retryable() {
		t.Fatalf("runs %+v", res.Failed)
	}
	if !errors.Is(err, ErrTransmission) || err != res.Error {
		t.Fatalf("err %v", err)
	}
}

// A send cancelled while waiting for the reader, with nothing failed, is
// not a success.
func TestSendReaderCancelBetweenBatches(t *testing.T) {
	w := dryWrapper(t)
	gate := make(chan struct{})
	steps := append(idBatches(1, 10, 0), step{wait: gate})
	steps = append(steps, idBatches(2, 10, 0)...)
	s, err := w.StartReader(context.Background(), &scriptReader{schema: testSchema, steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	for s.Resolved() < 10 {
		time.Sleep(time.Millisecond)
	}
	// Waiting gives up; the send goes on until cancelled.
	short, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	if res, err := s.Wait(short); res != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v %v", res, err)
	}
	s.Cancel()
	close(gate)
	<-s.Done()
	res, err := s.Wait(context.Background())
	var e *Error
	if !res.Cancelled || res.Success || res.TotalRows != 20 || res.FailedCount != 10 || !errors.As(err, &e) || !e.Retryable() {
		t.Fatalf("result %v, err %v", res, err)
	}
	// Cancelled before any chunk: stopped, nothing failed.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err = w.SendReader(ctx, &scriptReader{schema: testSchema, steps: idBatches(1, 10, 0)})
	if res.Success || res.TotalRows != 0 || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped after 0 rows") {
		t.Fatalf("result %v, err %v", res, err)
	}
}

// A reader that fails part way: the rows read before are sent and
// reported, and the reader's error is the input error.
func TestSendReaderInputError(t *testing.T) {
	srv := newServer(t)
	w := newWrapper(t, srv)
	broken := errors.New("truncated stream")
	steps := append(idBatches(2, 100, 20), step{err: broken})
	res, err := w.SendReader(context.Background(), &scriptReader{schema: testSchema, steps: steps})
	if res.Success || res.TotalRows != 200 || res.SuccessfulCount != 200 || !errors.Is(res.InputError, broken) ||
		!errors.Is(res.InputError, ErrConversion) || err != res.InputError {
		t.Fatalf("result %v, err %v", res, err)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkIDsInOrder(t, srv, 200)
}

// A reader that panics in Next (malformed input) ends the send with an
// input error, never a crash; so does a batch that panics when converted.
func TestSendReaderPanics(t *testing.T) {
	w := dryWrapper(t)
	steps := append(idBatches(1, 100, 20), step{panic: "index out of range"})
	res, err := w.SendReader(context.Background(), &scriptReader{schema: testSchema, steps: steps})
	if res.TotalRows != 100 || res.SuccessfulCount != 100 || err == nil ||
		!strings.Contains(err.Error(), "read input: malformed Arrow data: index out of range") {
		t.Fatalf("result %v, err %v", res, err)
	}

	rec := makeBatch(0, 10, 0)
	bad := panickyBatch{rec}
	res, err = w.SendReader(context.Background(), &scriptReader{schema: testSchema, steps: []step{{rec: bad}}}, WithChunkBytes(0))
	if res.FailedCount != 10 || !errors.Is(err, ErrConversion) || !strings.Contains(err.Error(), "unexpected failure: bad column") {
		t.Fatalf("result %v, err %v", res, err)
	}
}

// panickyBatch panics when its columns are read.
type panickyBatch struct{ arrow.RecordBatch }

func (panickyBatch) Column(int) arrow.Array { panic("bad column") }
func (panickyBatch) Columns() []arrow.Array { panic("bad column") }

// A closed Wrapper fails the rows read, and reading stops.
func TestSendReaderClosed(t *testing.T) {
	w := dryWrapper(t)
	_ = w.Close(context.Background())
	r := &scriptReader{schema: testSchema, steps: idBatches(50, 10, 0)}
	res, err := w.SendReader(context.Background(), r, WithConcurrency(1))
	if !errors.Is(err, ErrClosed) || res.FailedCount != res.TotalRows || r.calls.Load() > 3 {
		t.Fatalf("result %v, err %v, %d calls of Next", res, err, r.calls.Load())
	}
}

func TestStartReaderOptions(t *testing.T) {
	w := dryWrapper(t)
	r := &scriptReader{schema: testSchema}
	for _, c := range []struct {
		r    array.RecordReader
		opts []SendOption
		msg  string
	}{
		{nil, nil, "nil record reader"},
		{r, []SendOption{WithChunkRows(0)}, "chunk rows 0"},
		{r, []SendOption{WithChunkBytes(-1)}, "chunk bytes -1"},
		{r, []SendOption{WithConcurrency(0)}, "concurrency 0"},
	} {
		if _, err := w.SendReader(context.Background(), c.r, c.opts...); !errors.Is(err, ErrConfiguration) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: %v", c.opts, err)
		}
	}
	// An empty reader is a success with no rows.
	res, err := w.SendReader(context.Background(), r, WithConcurrency(0), WithLimiter(NewLimiter(0)))
	if err != nil || !res.Success || res.TotalRows != 0 || res.Batches != 0 {
		t.Fatalf("%v %v", res, err)
	}
}

// A Limiter for streams: auto follows the streams open: perStream slots
// for each plus one stream's worth, at most perStream per stream the
// Wrapper may use; a waiting chunk goes once slots are given back, and a
// chunk of several slots takes them all at once.
func TestStreamLimiterFollowsOpenStreams(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv, WithMaxStreams(4))
	lim := NewStreamLimiter(w, 2, 1)
	if lim.hard != 8 {
		t.Fatalf("hard bound %d, want 2 per stream auto may open (4)", lim.hard)
	}
	if n := lim.soft(); n != 2 {
		t.Fatalf("%d slots with no stream open, want 2", n)
	}
	rec := makeBatch(0, 10, 10)
	defer rec.Release()
	if _, err := w.SendBatch(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if g := lim.growth(); g != 1 {
		t.Fatalf("chunks grow %dx with one stream open, want 1x", g)
	}
	ctx := context.Background()
	for i := range 3 { // one stream open: 2 for it, 2 for the next
		if !lim.acquire(ctx, 1) {
			t.Fatalf("acquire %d of 3 refused", i)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if lim.acquire(short, 2) {
		t.Fatal("2 slots with 3 of 4 used")
	}
	if lim.used != 3 {
		t.Fatalf("%d slots held after a refused acquire, want 3", lim.used)
	}
	got := make(chan bool)
	go func() { got <- lim.acquire(ctx, 2) }()
	select {
	case <-got:
		t.Fatal("acquire did not wait for its slots")
	case <-time.After(20 * time.Millisecond):
	}
	lim.release(1)
	if !<-got {
		t.Fatal("acquire refused after a release")
	}
	lim.release(2)
	lim.release(2)
	if lim.used != 0 {
		t.Fatalf("%d used after every release", lim.used)
	}
	// More slots than the bound: only alone.
	if !lim.acquire(ctx, 9) {
		t.Fatal("a chunk of 9 slots refused with nothing in flight")
	}
	if lim.acquire(short, 1) {
		t.Fatal("a slot while a chunk over the bound is in flight")
	}
	lim.release(9)
	// A fixed count has no soft bound and no growth: perStream per stream,
	// at least least.
	fixed := NewStreamLimiter(newWrapper(t, srv, WithStreams(3)), 2, 10)
	if fixed.soft != nil || fixed.hard != 10 || fixed.growth() != 1 {
		t.Fatalf("fixed streams: soft %v, %d slots, growth %d; want none, 10, 1",
			fixed.soft != nil, fixed.hard, fixed.growth())
	}
}

// Chunks grow with the streams auto has open: half as many chunk sizes as
// streams, from 4 streams, at most MaxChunkGrowth.
func TestChunkGrowth(t *testing.T) {
	for open, want := range map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 7: 3, 8: 4, 16: 8, 64: 8} {
		if got := chunkGrowth(open); got != want {
			t.Errorf("%d streams open: chunks grow %dx, want %dx", open, got, want)
		}
	}
}

// A send under a Limiter that lets chunks grow cuts a record batch into
// fewer, larger chunks, each taking a slot per chunk size it spans; cut by
// bytes, a chunk stays within 7/8 of a request. Rows keep their numbers.
func TestReaderChunksGrow(t *testing.T) {
	checkLeaks(t)
	w := dryWrapper(t)
	send := func(lim *Limiter, rows int, opts ...SendOption) *ReaderResult {
		t.Helper()
		rdr := &scriptReader{schema: testSchema, steps: idBatches(1, rows, 10)}
		res, err := w.SendReader(context.Background(), rdr, append(opts, WithLimiter(lim))...)
		if err != nil || res.SuccessfulCount != rows {
			t.Fatalf("SendReader: %v %v", res, err)
		}
		if lim.used != 0 {
			t.Fatalf("%d slots still held", lim.used)
		}
		return res
	}
	// 10,000 rows in chunks of 1,000 that may grow 4x: 4,000, 4,000, 2,000,
	// taking 4, 4 and 2 of 8 slots.
	if res := send(&Limiter{hard: 8, grow: func() int { return 4 }}, 10_000, WithChunkRows(1000), WithChunkBytes(0)); res.Batches != 3 {
		t.Fatalf("%d chunks, want 3 of up to 4,000 rows", res.Batches)
	}
	// Cut by bytes, growth stops at 7/8 of max_request_bytes: 16 KiB
	// chunks in 64 KiB requests grow 3x, not 4x: 7 chunk sizes go in 3
	// (3, 3, 1), not 2 (4, 3).
	small, err := New(context.Background(), Config{}, WithTableName(testTable), WithWriterDisabled(true),
		WithMaxRequestBytes(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close(context.Background())
	one := makeBatch(0, 1, 10)
	size := chunkRows(one, 1<<30, 16<<10)
	one.Release()
	rdr := &scriptReader{schema: testSchema, steps: idBatches(1, 7*size, 10)}
	lim := &Limiter{hard: 8, grow: func() int { return 4 }}
	res, err := small.SendReader(context.Background(), rdr, WithChunkRows(1<<30), WithChunkBytes(16<<10), WithLimiter(lim))
	if err != nil || res.SuccessfulCount != 7*size || res.Batches != 3 {
		t.Fatalf("SendReader: %v %v; want 3 chunks (growth 3x)", res, err)
	}
}
