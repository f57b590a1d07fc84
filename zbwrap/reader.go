package zbwrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// How a reader is sent
//
// The reader is read by one goroutine (the feeder) and cut into chunks of at
// most WithChunkRows rows and about WithChunkBytes of Arrow data. Each chunk
// gets a goroutine of its own once a slot is free (WithConcurrency, or a
// shared Limiter): the chunks convert in parallel (Prepare) but queue in
// input order (PreparedBatch.Enqueue), each after its predecessor has had
// its turn, so the reader's rows reach the stream in input order while up to
// that many chunks are converting or waiting for acknowledgement. Converting
// serially in front of the stream cost up to 20% of throughput at 220-byte
// rows; converting in parallel and queueing in order costs nothing.
//
// A chunk's outcome is added to the send's result as soon as the chunk is
// resolved: failed rows as runs (consecutive rows with the same error and
// may-have-landed flag), so a send of millions of rows with a broken column
// costs memory in the number of distinct errors, which is bounded, not in
// rows. Row numbers are the reader's: 0..N-1 in the order Next returned the
// rows, whatever chunk they travelled in.

// Defaults of the options of SendReader and StartReader.
const (
	// DefaultChunkRows is the largest chunk of rows sent as one batch.
	DefaultChunkRows = 10_000
	// DefaultChunkBytes is the Arrow data at which a chunk is cut.
	DefaultChunkBytes = 1 << 20
	// DefaultConcurrency is the number of chunks of one send in flight per
	// stream the Wrapper may use (streams, or max_streams with streams:
	// auto). Acknowledgements are cumulative, so a stream waits on its
	// slowest request: against the service's latency (median ~150 ms, p95
	// ~500 ms) 4 chunks of 10,000 rows moved 60% of one stream's quota and
	// 8 moved 99% (BenchmarkStreamsUnderQuota).
	DefaultConcurrency = 8
	// MaxDistinctErrors bounds the distinct errors of a ReaderResult; rows
	// failing with further errors share one error per kind.
	MaxDistinctErrors = 1000
)

// WithChunkRows sets the largest number of rows in one chunk (one batch on
// the stream). Default DefaultChunkRows (10,000); at least 1. Under a
// stream Limiter with streams: auto (the default), chunks grow to several
// times this once auto has opened 4 streams or more (see
// NewStreamLimiter).
func WithChunkRows(n int) SendOption { return func(s *sendSettings) { s.rows = n } }

// WithChunkBytes cuts chunks at about n bytes of Arrow data as well, so wide
// rows travel in smaller chunks: a record batch's rows are assumed to be of
// its average size. Only fixed-width, string and binary columns are
// counted; nested columns count nothing. Default DefaultChunkBytes (1 MiB);
// 0 cuts by rows only. A chunk has at least one row. Chunks grow as
// WithChunkRows says, by both bounds.
func WithChunkBytes(n int) SendOption { return func(s *sendSettings) { s.bytes = n } }

// WithConcurrency sets how many chunks of the send are in flight at once
// (converting, queued or waiting for acknowledgement). Default
// DefaultConcurrency (8) times the streams the Wrapper may use (streams,
// or max_streams with streams: auto); at least 1. WithLimiter overrides it.
func WithConcurrency(n int) SendOption {
	return func(s *sendSettings) { s.concurrency, s.concurrencySet = n, true }
}

// WithLimiter makes the send take its chunks' slots from l, shared with the
// other sends given l, instead of WithConcurrency slots of its own: to bound
// the chunks in flight of several concurrent sends together.
func WithLimiter(l *Limiter) SendOption { return func(s *sendSettings) { s.limiter = l } }

// A Limiter bounds the chunks in flight of the sends that share it (see
// WithLimiter). It counts slots: a chunk of the send's chunk size takes
// one, a grown chunk (see NewStreamLimiter) one per chunk size it spans,
// rounded to the nearest, so a Limiter bounds the data in flight whatever
// the chunks' size. It is safe for concurrent use.
type Limiter struct {
	hard int        // slots
	soft func() int // how many of the slots may be used now; nil: all
	grow func() int // how many chunk sizes a chunk may span now; nil: 1

	mu    sync.Mutex
	used  int           // slots taken
	freed chan struct{} // closed when a slot is given back
}

// NewLimiter returns a Limiter of n slots (at least 1).
func NewLimiter(n int) *Limiter { return &Limiter{hard: max(n, 1)} }

// limiterRecheck is how often a chunk waiting on a stream Limiter looks
// whether a stream opened.
const limiterRecheck = 2 * time.Millisecond

// MaxChunkGrowth is the most chunk sizes one chunk spans under a stream
// Limiter (see NewStreamLimiter).
const MaxChunkGrowth = 8

// NewStreamLimiter returns a Limiter for sends through w that follows the
// streams w has open: perStream slots for each, plus one stream's worth so
// that streams: auto can press the next one open, at least least, and at
// most perStream times the streams w may use. With streams: auto, a load
// that one stream carries thus keeps only what one stream needs in flight
// (and in memory), and a backfill gets more as the streams open.
//
// With streams: auto, chunks also grow with the streams open: from 4
// streams, a record batch is cut into chunks of up to half as many chunk
// sizes as streams are open (at most MaxChunkGrowth, and at most 7/8 of
// max_request_bytes of Arrow data), each taking a slot per chunk size.
// Auto only opens streams while acknowledgements wait 100 ms or more, and
// there fewer, larger requests move more: each request waits its own
// time to durability, and a send ends with its slowest request, so fewer
// requests mean a shorter wait at the end (under the databricks profile's
// latency alone, 2,000,000 rows of 220 B from Python moved about 1.4x
// more in 8 MiB requests than in 1 MiB ones, the same data in flight).
// On a fast server auto keeps to one or two streams and chunks keep their
// size, which pipelines best there.
func NewStreamLimiter(w *Wrapper, perStream, least int) *Limiter {
	perStream = max(perStream, 1)
	l := &Limiter{hard: max(least, perStream*w.streamsMax(), 1)}
	if w.cfg.Streams == StreamsAuto {
		l.soft = func() int { return max(least, perStream*(w.openStreams()+1)) }
		l.grow = func() int { return chunkGrowth(w.openStreams()) }
	}
	return l
}

// chunkGrowth is how many chunk sizes a chunk may span under streams: auto
// with open streams open: 1 up to 3 streams, then half the streams, at most
// MaxChunkGrowth.
func chunkGrowth(open int) int { return min(max(open/2, 1), MaxChunkGrowth) }

// growth is how many chunk sizes a chunk may span now: at least 1.
func (l *Limiter) growth() int {
	if l.grow == nil {
		return 1
	}
	return max(l.grow(), 1)
}

// acquire takes n slots, or reports false once ctx ends. n slots are
// taken at once, never some of them; a chunk of more slots than the
// Limiter allows goes when nothing else is in flight.
func (l *Limiter) acquire(ctx context.Context, n int) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		l.mu.Lock()
		limit := l.hard
		if l.soft != nil {
			limit = min(limit, l.soft())
		}
		if l.used == 0 || l.used+n <= limit {
			l.used += n
			l.mu.Unlock()
			return true
		}
		if l.freed == nil {
			l.freed = make(chan struct{})
		}
		freed := l.freed
		l.mu.Unlock()
		// soft grows when a stream opens, which no slot tells: look again
		// after a while too.
		var recheck *time.Timer
		var recheckC <-chan time.Time // nil, never ready, without soft
		if l.soft != nil {
			recheck = time.NewTimer(limiterRecheck)
			recheckC = recheck.C
		}
		select {
		case <-freed:
		case <-recheckC:
		case <-ctx.Done():
		}
		if recheck != nil {
			recheck.Stop()
		}
	}
}

// release gives back n slots acquire took.
func (l *Limiter) release(n int) {
	l.mu.Lock()
	l.used -= n
	if l.freed != nil {
		close(l.freed)
		l.freed = nil
	}
	l.mu.Unlock()
}

// SendReader sends every record batch of r, in order, and returns when each
// row is durably acknowledged or has failed, with one result for them all
// (see ReaderResult); it is StartReader followed by ReaderSend.Wait. The
// error is non-nil when the send did not fully succeed, and is then the
// result's Error; with a result of nil it is a bad option or a nil reader.
//
// If ctx ends, the send is cancelled as ReaderSend.Cancel does and
// SendReader returns the result of what was read so far: no later than the
// reader's Next returns, since a call in progress cannot be interrupted.
func (w *Wrapper) SendReader(ctx context.Context, r array.RecordReader, opts ...SendOption) (*ReaderResult, error) {
	s, err := w.StartReader(ctx, r, opts...)
	if err != nil {
		return nil, err
	}
	<-s.done
	return s.result()
}

// streamsMax is the most streams one schema may use.
func (w *Wrapper) streamsMax() int {
	if w.cfg.Streams == StreamsAuto {
		return w.cfg.MaxStreams
	}
	return w.cfg.Streams
}

// StartReader starts sending r as SendReader does and returns at once; the
// send goes on in goroutines of its own until r ends, fails, or the send is
// cancelled (Cancel, or ctx ending), and every chunk read is resolved.
//
// r is read only by the send, from its own goroutine: do not use r until
// Done is closed. The send neither retains nor releases r, and keeps a
// batch r returned (retained) only while its rows are in flight. A panic
// in r's Next (malformed input, say from a C data stream) ends the reading
// with an input error instead of crashing the process.
//
// The error is for a nil r or an invalid option (KindConfiguration).
func (w *Wrapper) StartReader(ctx context.Context, r array.RecordReader, opts ...SendOption) (*ReaderSend, error) {
	set := sendOptions(opts)
	if !set.concurrencySet {
		set.concurrency = DefaultConcurrency * w.streamsMax()
		if set.limiter == nil && w.cfg.Streams == StreamsAuto {
			set.limiter = NewStreamLimiter(w, DefaultConcurrency, DefaultConcurrency)
		}
	}
	switch {
	case r == nil:
		return nil, &Error{Kind: KindConfiguration, Op: "send reader", Msg: "nil record reader"}
	case set.rows < 1:
		return nil, &Error{Kind: KindConfiguration, Op: "send reader", Msg: fmt.Sprintf("chunk rows %d: must be at least 1", set.rows)}
	case set.bytes < 0:
		return nil, &Error{Kind: KindConfiguration, Op: "send reader", Msg: fmt.Sprintf("chunk bytes %d: must not be negative", set.bytes)}
	case set.concurrency < 1 && set.limiter == nil:
		return nil, &Error{Kind: KindConfiguration, Op: "send reader", Msg: fmt.Sprintf("concurrency %d: must be at least 1", set.concurrency)}
	}
	s := &ReaderSend{w: w, r: r, set: set, start: time.Now(), done: make(chan struct{}),
		seen: map[*Error]bool{}, more: map[Kind]*Error{}}
	s.slots = set.limiter
	if s.slots == nil {
		s.slots = NewLimiter(set.concurrency)
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	go s.run()
	return s, nil
}

// ReaderSend is a send started by StartReader.
//
// Goroutines: the feeder (run) reads the reader and starts one goroutine
// per chunk (sendChunk), at most as many as the send has slots; it waits
// for them all, builds the result and closes done. Cancel or the context
// ending stops the feeder at its next chunk and makes the chunks give up
// waiting, so everything ends as soon as the reader's Next returns.
type ReaderSend struct {
	w      *Wrapper
	r      array.RecordReader
	set    sendSettings
	slots  *Limiter // one slot per chunk in flight
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time
	done   chan struct{}

	resolved atomic.Int64 // rows acknowledged or failed so far
	closed   atomic.Bool  // a chunk found the Wrapper closed: read no more

	mu       sync.Mutex
	total    int // rows taken from the reader
	attempts int
	bytes    int
	batches  int
	runs     []FailedRun
	errs     []*Error
	seen     map[*Error]bool
	more     map[Kind]*Error // the shared errors past MaxDistinctErrors
	inputErr *Error
	stopped  bool // reading stopped before the end: cancelled or closed

	res *ReaderResult // set before done closes
}

// Done is closed when the send has ended and its result is ready.
func (s *ReaderSend) Done() <-chan struct{} { return s.done }

// Resolved returns how many rows are resolved (acknowledged or failed) so
// far. It only grows; once Done is closed it is the result's TotalRows.
func (s *ReaderSend) Resolved() int64 { return s.resolved.Load() }

// Cancel ends the send early: no more input is read, rows not yet written
// to the network fail (MayHaveLanded false), rows already written fail as
// possibly stored (MayHaveLanded true). The Wrapper stays usable. Wait
// still returns the result.
func (s *ReaderSend) Cancel() { s.cancel() }

// Wait returns the send's result when it has ended, with the result's
// Error when it did not fully succeed. If ctx ends first it returns nil and
// ctx's error; the send goes on (Cancel stops it).
func (s *ReaderSend) Wait(ctx context.Context) (*ReaderResult, error) {
	select {
	case <-s.done:
		return s.result()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *ReaderSend) result() (*ReaderResult, error) {
	if !s.res.Success {
		return s.res, s.res.Error
	}
	return s.res, nil
}

// run is the feeder goroutine.
func (s *ReaderSend) run() {
	var chunks sync.WaitGroup
	s.feed(&chunks)
	chunks.Wait()
	s.finish()
}

// feed reads the reader and starts a goroutine per chunk, holding a slot
// per chunk in flight, until the reader ends, fails or the send stops.
func (s *ReaderSend) feed(chunks *sync.WaitGroup) {
	defer func() {
		if r := recover(); r != nil {
			s.setInputErr(&Error{Kind: KindConversion, Op: "read input", Msg: fmt.Sprintf("malformed Arrow data: %v", r)})
		}
	}()
	var prev chan struct{} // closed once the previous chunk had its turn to queue
	for {
		if s.ctx.Err() != nil || s.closed.Load() {
			s.stop()
			return
		}
		if !s.r.Next() {
			if err := s.r.Err(); err != nil && !errors.Is(err, io.EOF) {
				s.setInputErr(&Error{Kind: KindConversion, Op: "read input", Err: err})
			}
			return
		}
		rec := s.r.RecordBatch()
		n := int(rec.NumRows())
		size := chunkRows(rec, s.set.rows, s.set.bytes)
		for off := 0; off < n; {
			end := min(off+size*s.growth(), n)
			weight := max((end-off+size/2)/size, 1) // chunk sizes, rounded
			if !s.acquire(weight) {
				// Read but never sent: these rows certainly did not land.
				base := s.take(n - off)
				s.addRun(base, n-off, &Error{Kind: KindTransmission, Op: "send",
					Msg: fmt.Sprintf("cancelled before rows %d..%d were sent", base, base+n-off-1), retryable: true}, false)
				s.stop()
				return
			}
			var chunk arrow.RecordBatch
			if off == 0 && end == n {
				rec.Retain()
				chunk = rec
			} else {
				chunk = rec.NewSlice(int64(off), int64(end))
			}
			base := s.take(end - off)
			turn := make(chan struct{})
			chunks.Add(1)
			go s.sendChunk(chunk, base, weight, prev, turn, chunks)
			prev = turn
			off = end
		}
	}
}

// acquire takes a chunk's slots, or reports false once the send is
// cancelled (even if slots are free).
func (s *ReaderSend) acquire(n int) bool {
	if s.ctx.Err() != nil {
		return false
	}
	return s.slots.acquire(s.ctx, n)
}

// growth is how many chunk sizes the next chunk may span (see
// NewStreamLimiter): at most what keeps it within 7/8 of a request when
// chunks are cut by bytes.
func (s *ReaderSend) growth() int {
	g := s.slots.growth()
	if g > 1 && s.set.bytes > 0 {
		g = min(g, max(s.w.cfg.MaxRequestBytes/8*7/s.set.bytes, 1))
	}
	return g
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
// count nothing, so they never make chunks smaller than the row bound.
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
// turn) and waits for the chunk's result, which it adds to the send's. The
// turn passes on whatever happens to the chunk; its slots are given back
// once it is resolved.
func (s *ReaderSend) sendChunk(chunk arrow.RecordBatch, base, slots int, prev, turn chan struct{}, chunks *sync.WaitGroup) {
	rows := int(chunk.NumRows())
	defer chunks.Done()
	defer s.slots.release(slots)
	pass := sync.OnceFunc(func() {
		if prev != nil {
			<-prev
		}
		close(turn)
	})
	defer pass()
	defer func() {
		if r := recover(); r != nil {
			s.addRun(base, rows, &Error{Kind: KindConversion, Op: "convert",
				Msg: fmt.Sprintf("unexpected failure: %v\n%s", r, debug.Stack())}, false)
		}
	}()
	b, err := func() (*PreparedBatch, error) {
		defer chunk.Release() // converted: the chunk is no longer needed
		return s.w.Prepare(s.ctx, chunk, WithDescriptor(s.set.desc))
	}()
	if err != nil {
		s.fail(base, rows, err)
		return
	}
	if prev != nil {
		<-prev
	}
	p, err := b.Enqueue(s.ctx)
	pass()
	if err != nil {
		s.fail(base, rows, err)
		return
	}
	res, _ := p.Wait(s.ctx)
	s.addResult(base, res)
}

// fail fails a chunk that was not queued; after Close, reading stops.
func (s *ReaderSend) fail(base, rows int, err error) {
	if errors.Is(err, ErrClosed) {
		s.closed.Store(true)
	}
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Kind: KindTransmission, Op: "send", Err: err}
	}
	s.addRun(base, rows, e, false)
}

// take reserves the row numbers of n rows read from the reader.
func (s *ReaderSend) take(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := s.total
	s.total += n
	return base
}

func (s *ReaderSend) setInputErr(e *Error) {
	s.mu.Lock()
	s.inputErr = e
	s.mu.Unlock()
}

func (s *ReaderSend) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

// errorRef returns the error to record for e: e itself while fewer than
// MaxDistinctErrors are listed, else one shared error of e's kind; s.mu
// held.
func (s *ReaderSend) errorRef(e *Error) *Error {
	if s.seen[e] {
		return e
	}
	if len(s.errs) >= MaxDistinctErrors {
		if m := s.more[e.Kind]; m != nil {
			return m
		}
		m := &Error{Kind: e.Kind, retryable: e.retryable,
			Msg: fmt.Sprintf("further %s errors (only the first %d distinct errors are listed)", e.Kind, MaxDistinctErrors)}
		s.more[e.Kind] = m
		e = m
	}
	s.seen[e] = true
	s.errs = append(s.errs, e)
	return e
}

// addRun fails rows base..base+n-1 with one error.
func (s *ReaderSend) addRun(base, n int, e *Error, mayHaveLanded bool) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.runs = append(s.runs, FailedRun{Start: base, Count: n, Error: s.errorRef(e), MayHaveLanded: mayHaveLanded})
	s.mu.Unlock()
	s.resolved.Add(int64(n))
}

// addResult adds the outcome of a chunk whose first row is row base.
func (s *ReaderSend) addResult(base int, res *TransmissionResult) {
	s.mu.Lock()
	s.batches++
	s.attempts = max(s.attempts, res.Attempts)
	s.bytes += res.BatchSizeBytes
	var cur *FailedRun
	for _, f := range res.FailedRows { // ascending by index
		row := base + f.Index
		e := s.errorRef(renumber(f.Error, f.Index, row))
		if cur != nil && cur.Start+cur.Count == row && cur.Error == e && cur.MayHaveLanded == f.MayHaveLanded {
			cur.Count++
			continue
		}
		s.runs = append(s.runs, FailedRun{Start: row, Count: 1, Error: e, MayHaveLanded: f.MayHaveLanded})
		cur = &s.runs[len(s.runs)-1]
	}
	s.mu.Unlock()
	s.resolved.Add(int64(res.TotalRows))
}

// renumber returns a row error whose message names the row by its number
// in the reader (row) rather than in its chunk (index).
func renumber(e *Error, index, row int) *Error {
	prefix := fmt.Sprintf("row %d", index)
	if index == row || e.Kind != KindConversion || !strings.HasPrefix(e.Msg, prefix) {
		return e
	}
	c := *e
	c.Msg = fmt.Sprintf("row %d", row) + e.Msg[len(prefix):]
	return &c
}

// finish builds the result and closes done.
func (s *ReaderSend) finish() {
	s.mu.Lock()
	slices.SortFunc(s.runs, func(a, b FailedRun) int { return a.Start - b.Start })
	runs := s.runs[:0]
	failed := 0
	for _, r := range s.runs { // join runs that chunks cut apart
		failed += r.Count
		if k := len(runs) - 1; k >= 0 && runs[k].Start+runs[k].Count == r.Start &&
			runs[k].Error == r.Error && runs[k].MayHaveLanded == r.MayHaveLanded {
			runs[k].Count += r.Count
			continue
		}
		runs = append(runs, r)
	}
	res := &ReaderResult{
		TotalRows: s.total, FailedCount: failed, SuccessfulCount: s.total - failed,
		Failed: slices.Clip(runs), Errors: s.errs, Attempts: s.attempts, BatchSizeBytes: s.bytes,
		Batches: s.batches, Latency: time.Since(s.start), Cancelled: s.ctx.Err() != nil,
	}
	if s.inputErr != nil {
		res.InputError = s.inputErr
	}
	switch {
	case len(runs) > 0:
		first := runs[0].Error
		res.Error = &Error{Kind: first.Kind, Op: "send reader",
			Msg: fmt.Sprintf("%d of %d rows failed; row %d", failed, s.total, runs[0].Start),
			Err: first, retryable: first.retryable}
	case s.inputErr != nil:
		res.Error = s.inputErr
	case s.stopped:
		res.Error = &Error{Kind: KindTransmission, Op: "send reader", retryable: true,
			Msg: fmt.Sprintf("stopped after %d rows, before the end of the input", s.total), Err: context.Cause(s.ctx)}
	}
	res.Success = res.Error == nil
	s.res = res
	s.mu.Unlock()
	s.cancel() // release the context's resources
	close(s.done)
}
