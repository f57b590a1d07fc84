package stream

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
)

// Defaults applied to zero Config fields.
const (
	DefaultMaxInflightRecords = 1_000_000
	DefaultMaxInflightBytes   = 64 << 20
	// DefaultMaxRequestBytes stays 64 KiB under the service's 10 MiB limit.
	DefaultMaxRequestBytes = 10<<20 - 64<<10
	DefaultAckTimeout      = 60 * time.Second
	DefaultFlushTimeout    = 5 * time.Minute
	DefaultCreateTimeout   = 15 * time.Second
	// DefaultMaxUnwrittenBytes keeps the records a sender queues ahead of
	// the writer within the CPU caches.
	DefaultMaxUnwrittenBytes = 1 << 20
	DefaultMaxAttempts       = 5
	DefaultBaseDelay         = 100 * time.Millisecond
	DefaultMaxDelay          = 30 * time.Second
)

// requestOverhead bounds the bytes an IngestRecordBatchRequest adds around
// its records: outer tag and length, offset_id, inner tag and length.
const requestOverhead = 32

// HeaderSource supplies the call headers when a call opens. refresh asks for
// fresh credentials (the previous ones were rejected). An error that has a
// Retryable() bool method returning true is retried with backoff; any other
// error stops the stream.
type HeaderSource interface {
	Headers(ctx context.Context, refresh bool) (map[string]string, error)
}

// Config describes one stream. Zero fields take the defaults above.
type Config struct {
	// Table is catalog.schema.table.
	Table string
	// Descriptor is one serialized google.protobuf.DescriptorProto.
	Descriptor []byte
	// Headers supplies authorization and any other call headers; nil sends
	// only the table header.
	Headers HeaderSource

	MaxInflightRecords int
	MaxInflightBytes   int64
	MaxRequestBytes    int
	// MaxUnwrittenBytes bounds the record bytes queued but not yet written
	// to the call: Send waits while the writer is that far behind, so that
	// records go out while they are still in the CPU caches. The in-flight
	// window bounds written but unacknowledged requests separately.
	MaxUnwrittenBytes int

	// DisableRecovery fails every pending request on the first retryable
	// failure instead of reconnecting. A rejected request is not such a
	// failure: the requests behind it go on a new call regardless.
	DisableRecovery bool
	// MaxAttempts is how many reconnections follow consecutive failures
	// before the stream gives up (RetryExhausted). A call that gets an ack
	// resets the count.
	MaxAttempts int
	// BaseDelay and MaxDelay shape the full-jitter exponential backoff: the
	// n-th retry waits a random time in [0, min(MaxDelay, BaseDelay*2^(n-1))).
	BaseDelay, MaxDelay time.Duration

	AckTimeout    time.Duration
	FlushTimeout  time.Duration
	CreateTimeout time.Duration

	// HandshakeError, if set, reports why the latest TLS handshake of the
	// connection failed certificate verification (nil if it did not): gRPC
	// passes only the text of a handshake failure on to the call. A call
	// that fails to open with Unavailable while it reports one fails the
	// stream at once (ErrUntrustedCertificate).
	HandshakeError func() error

	// Dial, if set, opens the calls of another transport instead of the
	// Zerobus protobuf service (see Call); requests are then queued with
	// SendParts, and Descriptor is not used.
	Dial DialFunc

	// Hooks receive events; each is type-asserted once to the Hook*
	// interfaces it implements.
	Hooks  []any
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxInflightRecords <= 0 {
		c.MaxInflightRecords = DefaultMaxInflightRecords
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxUnwrittenBytes <= 0 {
		c.MaxUnwrittenBytes = DefaultMaxUnwrittenBytes
	}
	c.MaxRequestBytes = max(c.MaxRequestBytes, requestOverhead+64)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = DefaultBaseDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.CreateTimeout <= 0 {
		c.CreateTimeout = DefaultCreateTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats counts what a stream did. Replayed requests were written on more
// than one call: if they are acknowledged, the server may hold them twice.
type Stats struct {
	Opens            int64 // calls opened (create_stream answered)
	OpenFailures     int64 // attempts to open a call that failed
	CallFailures     int64 // opened calls that ended with an error
	CloseSignals     int64 // CloseStreamSignal messages obeyed
	RequestsWritten  int64 // request writes, replays included
	RecordsWritten   int64
	RequestsAcked    int64
	RecordsAcked     int64
	RequestsFailed   int64
	RecordsFailed    int64
	ReplayedRequests int64 // writes of a request already written on an earlier call
	ReplayedRecords  int64
	AckedAfterReplay int64 // acknowledged requests written on more than one call that may have ingested them
	RecordsMaybeDup  int64 // records of those requests
}

// Stream is one ingest stream to one table with one descriptor. Its first
// Send starts a supervisor goroutine that opens calls, serves them (one send
// and one receive goroutine per call) and recovers from failures, until Close
// or a fatal error. All methods are safe for concurrent use.
type Stream struct {
	cfg    Config
	client wire.ZerobusClient
	flow   *flow
	hooks  hooks

	life       context.Context // cancelled when the stream is finished
	cancelLife context.CancelFunc
	closingCtx context.Context // cancelled when Close begins
	stopSends  context.CancelFunc
	done       chan struct{} // closed when the supervisor returns
	work       chan struct{} // wakes an idle supervisor

	mu       sync.Mutex
	pending  []*request    // unresolved requests, ascending logical offset
	queued   int           // record bytes of pending
	ahead    chan struct{} // closed when the writer catches up; nil without waiters
	next     int64         // next logical offset
	conn     *conn         // the current call, nil between calls
	started  bool
	closing  bool
	err      *Error // set once the stream is finished by a failure
	waiters  []*flushWaiter
	stats    Stats
	serverID string
}

type flushWaiter struct {
	target int64
	ch     chan struct{}
}

// New returns a stream that opens its first call on the first Send. cc is
// the client connection to the Zerobus endpoint; the stream never closes it.
func New(cc grpc.ClientConnInterface, cfg Config) *Stream {
	cfg.setDefaults()
	s := &Stream{
		cfg:    cfg,
		client: wire.NewZerobusClient(cc),
		flow:   newFlow(int64(cfg.MaxInflightRecords), cfg.MaxInflightBytes),
		hooks:  newHooks(cfg.Hooks),
		done:   make(chan struct{}),
		work:   make(chan struct{}, 1),
	}
	s.life, s.cancelLife = context.WithCancel(context.Background())
	s.closingCtx, s.stopSends = context.WithCancel(context.Background())
	return s
}

// request is one IngestRecordBatchRequest: a run of a batch's records.
type request struct {
	batch      *Batch
	start, end int   // the records' indexes in the batch
	offset     int64 // logical offset; -1 if never queued
	records    [][]byte
	frames     []byte // the records framed (SendFramed), or nil
	payload    any    // the request of another transport (SendParts), or nil
	bytes      int    // sum of record lengths
	queued     bool

	msg       *wire.EphemeralStreamRequest // without frames
	wireOff   int64                        // offset_id of the current write; owned by the sender
	writtenAt time.Time                    // of the current write, kept only for HookRequestAcked

	// Guarded by Stream.mu.
	attempts int // calls it was written on
	// voided counts the calls it was written on that certainly did not
	// ingest it: the server rejected it, or rejected a request before it.
	// attempts-voided calls may hold it.
	voided    int
	abandoned bool // written, then its caller gave up (Batch.Abandon)
	resolved  bool
	err       error // nil when acknowledged
}

// mayHaveLanded reports whether a call that may have ingested r was given
// it (or is being given it now).
func (r *request) mayHaveLanded() bool { return r.attempts > r.voided }

// count is the number of records of the request.
func (r *request) count() int { return r.end - r.start }

// Batch is the handle of one Send: the requests its records went into.
type Batch struct {
	s         *Stream
	reqs      []*request
	remaining atomic.Int64
	done      chan struct{}
	onDone    func(*Batch)
	abandoned error // the cause given to Abandon; guarded by Stream.mu

	// holds is 1 until the batch is resolved, plus one per write of its
	// frames that gRPC has not let go of; onRelease runs when it drops to 0.
	holds     atomic.Int64
	onRelease func()
}

// unhold drops one hold on the batch's records.
func (b *Batch) unhold() {
	if b.holds.Add(-1) == 0 && b.onRelease != nil {
		b.onRelease()
	}
}

// Outcome is the fate of records [Start, End) of a batch.
type Outcome struct {
	Start, End int
	// Offset is the logical offset of the request, -1 if it was never queued.
	Offset int64
	// Err is nil when the server acknowledged the records.
	Err error
	// Attempts is how many calls the request was written on.
	Attempts int
	// MayHaveLanded is true for a failed request that reached the network at
	// least once (written on a call that then failed before acknowledging
	// it), or that is still queued: the server may hold its records. A call
	// that failed at the request (rejected it) or at one before it did not
	// ingest it.
	MayHaveLanded bool
	// Pending is true when the request is still unresolved (only after
	// Abandon).
	Pending bool
}

// Done is closed when every request of the batch is resolved.
func (b *Batch) Done() <-chan struct{} { return b.done }

// Wait blocks until the batch is resolved or ctx ends.
func (b *Batch) Wait(ctx context.Context) error {
	select {
	case <-b.done:
		return nil
	default:
	}
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Outcomes reports each request of the batch in record order. Before the
// batch is done, unresolved requests are reported Pending.
func (b *Batch) Outcomes() []Outcome {
	select {
	case <-b.done:
	default:
		b.s.mu.Lock()
		defer b.s.mu.Unlock()
	}
	out := make([]Outcome, len(b.reqs))
	for i, r := range b.reqs {
		o := Outcome{Start: r.start, End: r.end, Offset: r.offset, Attempts: r.attempts}
		switch {
		case !r.resolved:
			o.Pending = true
			o.MayHaveLanded = true
			err := ErrPending
			if b.abandoned != nil {
				err = fmt.Errorf("%w: %w", ErrPending, b.abandoned)
			}
			o.Err = &Error{Kind: KindTransmission, Retryable: true, Msg: "outcome unknown", Err: err}
		case r.err != nil:
			o.Err = r.err
			o.MayHaveLanded = r.mayHaveLanded()
		}
		out[i] = o
	}
	return out
}

// abandonedAckTimeout is how long a call may go without an ack while the
// oldest request in flight on it was abandoned (capped by AckTimeout). Its
// caller has given up, and requests queued behind it should not wait out
// the full ack timeout of a call that stalled before they came.
const abandonedAckTimeout = time.Second

// Abandon is called when the caller stops waiting for the batch. Requests
// never written to the network are withdrawn and fail with cause (they will
// never land). Requests already written may be held by the server: they stay
// until the call they were written on ends, and Outcomes reports them
// Pending; then, unless acknowledged in the meantime, they fail
// (MayHaveLanded) instead of being written again. A call whose oldest
// request in flight was abandoned is ended if nothing is acknowledged for a
// second (abandonedAckTimeout) rather than AckTimeout, so that the requests
// behind it move to a new call soon.
func (b *Batch) Abandon(cause error) {
	s := b.s
	var withdrawn []*request
	s.mu.Lock()
	b.abandoned = cause
	c := s.conn
	for _, r := range b.reqs {
		if r.resolved || !r.queued {
			continue
		}
		i := sort.Search(len(s.pending), func(i int) bool { return s.pending[i].offset >= r.offset })
		if i == len(s.pending) || s.pending[i] != r {
			continue
		}
		if c != nil && i < c.sentIdx {
			r.abandoned = true // in flight: its call decides
			continue
		}
		last := len(s.pending) - 1
		copy(s.pending[i:], s.pending[i+1:])
		s.pending[last] = nil
		s.pending = s.pending[:last]
		r.resolved = true
		r.err = abandonedError(r, cause)
		s.queued -= r.bytes
		withdrawn = append(withdrawn, r)
	}
	if len(withdrawn) > 0 {
		s.stats.RequestsFailed += int64(len(withdrawn))
		for _, r := range withdrawn {
			s.stats.RecordsFailed += int64(r.count())
		}
		s.checkWaitersLocked()
		s.wakeWaitersLocked()
	}
	if c != nil && c.sentIdx > 0 && s.pending[0].abandoned {
		c.armAckTimerLocked()
	}
	s.mu.Unlock()
	s.finish(withdrawn, false)
}

// abandonedError is the failure of a request its caller gave up on.
func abandonedError(r *request, cause error) *Error {
	if r.mayHaveLanded() {
		return &Error{Kind: KindTransmission, Retryable: true, Msg: "abandoned after it was written; not written again",
			Err: fmt.Errorf("%w: %w", ErrPending, cause)}
	}
	return &Error{Kind: KindTransmission, Retryable: true, Msg: "request withdrawn",
		Err: fmt.Errorf("%w: %w", ErrAbandoned, cause)}
}

// dropAbandonedLocked fails the abandoned requests still pending when the
// call they were written on has ended, and appends them to failed.
func (s *Stream) dropAbandonedLocked(failed []*request) []*request {
	kept := s.pending[:0]
	for _, r := range s.pending {
		if !r.abandoned {
			kept = append(kept, r)
			continue
		}
		r.resolved = true
		r.err = abandonedError(r, r.batch.abandoned)
		s.queued -= r.bytes
		s.stats.RequestsFailed++
		s.stats.RecordsFailed += int64(r.count())
		failed = append(failed, r)
	}
	clear(s.pending[len(kept):])
	s.pending = kept
	return failed
}

// Send splits records into requests under the size limit and queues them,
// waiting for room in the in-flight window until ctx ends. It returns once
// everything is queued; wait on the Batch for the acknowledgements. The
// records must not change until the batch is done.
//
// If queueing stops early (ctx ended, stream closed or failed), the error says
// why and the records not queued are failed outcomes of the batch; what was
// queued goes on regardless of ctx. A record that alone exceeds the request
// limit fails (ErrTooLarge) without stopping the others. onDone, if not nil,
// runs once when the batch is resolved, on an internal goroutine: it must be
// quick and must not call the stream.
func (s *Stream) Send(ctx context.Context, records [][]byte, onDone func(*Batch)) (*Batch, error) {
	return s.send(ctx, records, false, nil, onDone, nil, true)
}

// TrySend is Send without waiting: if the window has no room for a request
// it fails with ErrWindowFull. Requests queued before that point stay queued.
func (s *Stream) TrySend(records [][]byte, onDone func(*Batch)) (*Batch, error) {
	return s.send(context.Background(), records, false, nil, onDone, nil, false)
}

// SendFramed is Send for records already framed: frames holds every record
// of records, in order, each preceded by RecordTag and its length, back to
// back (arrowproto's EncodeFramed(rec, 1)); records gives their count and
// lengths. Each request is then a range of frames that gRPC reads in place:
// nothing is copied. frames must not change until onRelease, if not nil,
// runs: once the batch is resolved and gRPC holds no part of frames (which
// may come after onDone). If frames does not frame records, every record
// fails with ErrBadFrames.
func (s *Stream) SendFramed(ctx context.Context, frames []byte, records [][]byte, onDone func(*Batch), onRelease func()) (*Batch, error) {
	return s.send(ctx, records, true, frames, onDone, onRelease, true)
}

// TrySendFramed is SendFramed without waiting, as TrySend.
func (s *Stream) TrySendFramed(frames []byte, records [][]byte, onDone func(*Batch), onRelease func()) (*Batch, error) {
	return s.send(context.Background(), records, true, frames, onDone, onRelease, false)
}

func recordWireSize(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

func (s *Stream) send(ctx context.Context, records [][]byte, framed bool, frames []byte, onDone func(*Batch), onRelease func(), block bool) (*Batch, error) {
	b := &Batch{s: s, done: make(chan struct{}), onDone: onDone, onRelease: onRelease}
	b.remaining.Store(1) // held by this call until every request exists
	b.holds.Store(1)     // released when the batch is resolved
	var queueErr error
	if framed {
		if err := checkFrames(frames, records); err != nil {
			queueErr = &Error{Kind: KindTransmission, Msg: "send", Err: err}
			b.failRange(0, len(records), queueErr)
			records = nil
		}
	}
	limit := s.cfg.MaxRequestBytes - requestOverhead
	pos := 0 // where record i's frame starts
	for i := 0; i < len(records); {
		if sz := recordWireSize(len(records[i])); sz > limit {
			b.failRange(i, i+1, &Error{Kind: KindTransmission, Msg: fmt.Sprintf(
				"record %d is %d bytes, over the %d-byte request limit", i, len(records[i]), s.cfg.MaxRequestBytes),
				Err: ErrTooLarge})
			pos += sz
			i++
			continue
		}
		j, size, nbytes := i, 0, 0
		for j < len(records) {
			sz := recordWireSize(len(records[j]))
			if size+sz > limit {
				break
			}
			size += sz
			nbytes += len(records[j])
			j++
		}
		r := &request{batch: b, start: i, end: j, offset: -1, bytes: nbytes}
		if framed {
			r.frames = frames[pos : pos+size : pos+size]
		} else {
			r.records = records[i:j:j]
		}
		pos += size
		if err := s.admit(ctx, r, block); err != nil {
			queueErr = err
			b.failRange(i, len(records), err)
			break
		}
		i = j
	}
	if b.remaining.Add(-1) == 0 {
		b.complete()
	}
	return b, queueErr
}

// failRange records a run of records that fails without being queued.
func (b *Batch) failRange(start, end int, err error) {
	b.reqs = append(b.reqs, &request{batch: b, start: start, end: end, offset: -1, resolved: true, err: err})
}

func (b *Batch) complete() {
	close(b.done)
	if b.onDone != nil {
		b.onDone(b)
	}
	b.unhold()
}

// admit takes room in the window for r and appends it to the queue.
func (s *Stream) admit(ctx context.Context, r *request, block bool) error {
	n := r.count()
	if err := ctx.Err(); err != nil {
		return &Error{Kind: KindTransmission, Retryable: true, Msg: "send", Err: err}
	}
	if block {
		if err := s.awaitWriter(ctx); err != nil {
			return err
		}
	}
	if !s.flow.tryAcquire(n, r.bytes) {
		if !block {
			return &Error{Kind: KindTransmission, Retryable: true, Msg: "no room to queue", Err: ErrWindowFull}
		}
		if err := s.closingCtx.Err(); err != nil {
			return s.closedError()
		}
		wctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(s.closingCtx, cancel)
		err := s.flow.acquire(wctx, n, r.bytes)
		stop()
		cancel()
		if err != nil {
			if s.closingCtx.Err() != nil && ctx.Err() == nil {
				return s.closedError()
			}
			return &Error{Kind: KindTransmission, Retryable: true, Msg: "waiting for room in the in-flight window", Err: ctx.Err()}
		}
	}
	if r.frames == nil && r.payload == nil {
		r.msg = &wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_IngestRecordBatch{
			IngestRecordBatch: &wire.IngestRecordBatchRequest{
				OffsetId: &r.wireOff,
				Batch: &wire.IngestRecordBatchRequest_ProtoEncodedBatch{
					ProtoEncodedBatch: &wire.ProtoEncodedRecordBatch{Records: r.records},
				},
			},
		}}
	}
	s.mu.Lock()
	if s.err != nil || s.closing {
		var err error = s.closedError()
		if s.err != nil {
			err = s.err
		}
		s.mu.Unlock()
		s.flow.release(n, r.bytes)
		return err
	}
	r.offset = s.next
	s.next++
	s.queued += r.bytes
	r.queued = true
	r.batch.remaining.Add(1)
	r.batch.reqs = append(r.batch.reqs, r)
	s.pending = append(s.pending, r)
	if !s.started {
		s.started = true
		go s.run()
	}
	if s.conn != nil {
		s.conn.wakeSender()
	}
	s.mu.Unlock()
	select {
	case s.work <- struct{}{}:
	default:
	}
	return nil
}

// awaitWriter waits until the writer is less than MaxUnwrittenBytes behind.
func (s *Stream) awaitWriter(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.err != nil || s.closing || s.unwrittenLocked() < s.cfg.MaxUnwrittenBytes {
			s.mu.Unlock()
			return nil // admit reports a finished stream
		}
		if s.ahead == nil {
			s.ahead = make(chan struct{})
		}
		ch := s.ahead
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return &Error{Kind: KindTransmission, Retryable: true, Msg: "waiting for the writer", Err: ctx.Err()}
		case <-s.closingCtx.Done():
			return s.closedError()
		}
	}
}

// unwrittenLocked is the record bytes queued and not written on the
// current call.
func (s *Stream) unwrittenLocked() int {
	if s.conn == nil {
		return s.queued
	}
	return s.queued - s.conn.written
}

// wakeWaitersLocked wakes the senders waiting for the writer if it caught
// up (or the stream is finished).
func (s *Stream) wakeWaitersLocked() {
	if s.ahead != nil && (s.err != nil || s.unwrittenLocked() < s.cfg.MaxUnwrittenBytes) {
		close(s.ahead)
		s.ahead = nil
	}
}

func (s *Stream) closedError() *Error {
	return &Error{Kind: KindTransmission, Msg: "send", Err: ErrClosed}
}

// finish releases resolved requests: window room, hooks, then batch
// counts, so that a caller woken by its batch finds the acknowledgement
// already counted in telemetry.
func (s *Stream) finish(reqs []*request, acked bool) {
	if len(reqs) == 0 {
		return
	}
	defer func() {
		for _, r := range reqs {
			if r.batch.remaining.Add(-1) == 0 {
				r.batch.complete()
			}
		}
	}()
	records := 0
	for _, r := range reqs {
		records += r.count()
		if r.queued {
			s.flow.release(r.count(), r.bytes)
		}
	}
	if acked {
		for _, h := range s.hooks.acked {
			h.OnAcked(len(reqs), records)
		}
		if len(s.hooks.reqAcked) > 0 {
			now := time.Now()
			for _, r := range reqs {
				for _, h := range s.hooks.reqAcked {
					h.OnRequestAcked(r.count(), r.bytes, now.Sub(r.writtenAt))
				}
			}
		}
	}
}

// checkWaitersLocked wakes the flushes whose target is resolved.
func (s *Stream) checkWaitersLocked() {
	if len(s.waiters) == 0 {
		return
	}
	low := s.next // lowest unresolved offset
	if len(s.pending) > 0 {
		low = s.pending[0].offset
	}
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if w.target < low || s.err != nil {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	clear(s.waiters[len(kept):])
	s.waiters = kept
}

// Flush waits until every request queued before it is resolved (acknowledged
// or failed), bounded by ctx and the flush timeout. Failures are reported
// per batch, not here; Flush fails only when the wait is cut short.
func (s *Stream) Flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.next - 1
	if s.err != nil || len(s.pending) == 0 || s.pending[0].offset > target {
		s.mu.Unlock()
		return nil
	}
	w := &flushWaiter{target: target, ch: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()

	timer := time.NewTimer(s.cfg.FlushTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		err = &Error{Kind: KindTransmission, Retryable: true, Msg: "flush", Err: ctx.Err()}
	case <-timer.C:
		err = &Error{Kind: KindTransmission, Retryable: true,
			Msg: fmt.Sprintf("flush timed out after %s", s.cfg.FlushTimeout), Err: context.DeadlineExceeded}
	}
	s.mu.Lock()
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	return err
}

// Close stops new sends (sends waiting for room fail with ErrClosed),
// flushes, half-closes the call and waits for the server to end it. If the
// flush is cut short by ctx or the flush timeout, every unresolved request
// fails with ErrClosed (MayHaveLanded if it was written) and the call is
// cancelled. Close always returns with every request resolved and the
// stream's goroutines gone.
func (s *Stream) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	started := s.started
	if s.conn != nil {
		s.conn.wakeSender()
	}
	s.mu.Unlock()
	// A supervisor between calls waits for work: tell it to look again and
	// find the stream closing, or Close would wait AckTimeout for it.
	select {
	case s.work <- struct{}{}:
	default:
	}
	s.stopSends()
	if !started {
		s.cancelLife()
		return nil
	}
	var cerr error
	if ferr := s.Flush(ctx); ferr != nil {
		e := &Error{Kind: KindTransmission, Msg: "closed before acknowledgement",
			Err: fmt.Errorf("%w: %w", ErrClosed, ferr)}
		s.terminate(e)
		cerr = e
	} else {
		// Everything is resolved: the sender half-closes and the server ends
		// the call. Bound that wait too.
		timer := time.NewTimer(min(s.cfg.AckTimeout, s.cfg.FlushTimeout))
		select {
		case <-s.done:
		case <-ctx.Done():
		case <-timer.C:
		}
		timer.Stop()
	}
	s.cancelLife()
	<-s.done
	return cerr
}

// Err returns the failure that finished the stream, or nil.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return nil
	}
	return s.err
}

// Stats returns a snapshot of the counters.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Inflight is what the in-flight window holds now: records and record
// bytes queued and not yet resolved. It takes no lock.
func (s *Stream) Inflight() (records, bytes int64) {
	return s.flow.heldRecords.Load(), s.flow.heldBytes.Load()
}

// WriterBehind reports whether the writer is MaxUnwrittenBytes or more
// behind what was queued: the call cannot take requests as fast as they
// come (the server paces it, or the stream is reconnecting), so a blocking
// Send would wait for it.
func (s *Stream) WriterBehind() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && s.unwrittenLocked() >= s.cfg.MaxUnwrittenBytes
}

// ServerStreamID is the stream id of the latest call, "" before the first.
func (s *Stream) ServerStreamID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serverID
}

// terminate finishes the stream: every unresolved request fails with e.
func (s *Stream) terminate(e *Error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = e
	}
	failed := s.pending
	s.pending = nil
	s.queued = 0
	records := 0
	for _, r := range failed {
		r.resolved = true
		r.err = e
		records += r.count()
	}
	s.stats.RequestsFailed += int64(len(failed))
	s.stats.RecordsFailed += int64(records)
	if s.conn != nil {
		s.conn.endLocked(e)
	}
	s.checkWaitersLocked()
	s.wakeWaitersLocked()
	s.mu.Unlock()
	s.stopSends()
	s.cancelLife()
	s.finish(failed, false)
	if len(failed) > 0 {
		s.cfg.Logger.Warn("zerobus stream failed", "table", s.cfg.Table, "requests", len(failed), "err", e)
	}
}

// run is the supervisor: open a call, serve it until it ends, recover.
func (s *Stream) run() {
	defer close(s.done)
	attempts := 0 // consecutive failures without an ack
	refresh := false
	for s.awaitWork() {
		c, err := s.open(refresh)
		if err != nil {
			if s.life.Err() != nil {
				return
			}
			e := classify("open stream", err)
			s.mu.Lock()
			s.stats.OpenFailures++
			s.mu.Unlock()
			if e.Code == codes.Unauthenticated && !refresh {
				refresh = true // one forced token refresh, at once
				continue
			}
			if final, ok := s.backoff(&attempts, e); !ok {
				s.failed(final)
				return
			}
			continue
		}
		refresh = false
		e, acked := s.serve(c)
		if s.life.Err() != nil {
			return
		}
		if acked {
			attempts = 0
		}
		if e == nil {
			// A graceful end (close signal, server ended an idle call):
			// reconnect at once if it made progress or nobody waits; a call
			// ended without any ack while requests wait counts as a failed
			// attempt, so a server that keeps closing cannot spin us.
			if acked || !s.hasPending() {
				continue
			}
			e = &Error{Kind: KindConnection, Retryable: true, Msg: "call closed by the server before acknowledging anything", Err: ErrCallEnded}
		}
		if e.Code == codes.Unauthenticated {
			// Credentials expired on an open call: reopen with fresh ones.
			e = &Error{Kind: KindConnection, Retryable: true, Code: e.Code, Msg: e.Msg, Err: e.Err}
			refresh = true
		}
		if !s.hasPending() {
			continue // nobody waits on that call: reopen when work comes
		}
		if final, ok := s.backoff(&attempts, e); !ok {
			s.failed(final)
			return
		}
	}
}

func (s *Stream) hasPending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) > 0
}

// failed terminates the stream after a failure the supervisor will not
// retry.
func (s *Stream) failed(e *Error) {
	if s.life.Err() != nil {
		return
	}
	s.terminate(e)
}

// awaitWork waits until there are requests to send; false means stop.
func (s *Stream) awaitWork() bool {
	for {
		s.mu.Lock()
		switch {
		case s.err != nil:
			s.mu.Unlock()
			return false
		case len(s.pending) > 0:
			s.mu.Unlock()
			return true
		case s.closing:
			s.mu.Unlock()
			return false
		}
		s.mu.Unlock()
		select {
		case <-s.work:
		case <-s.life.Done():
			return false
		}
	}
}

// backoff counts a failed attempt and sleeps before the next one. When the
// stream must give up instead it returns false and the error to fail with.
func (s *Stream) backoff(attempts *int, e *Error) (*Error, bool) {
	if !e.Retryable || s.cfg.DisableRecovery {
		return e, false
	}
	*attempts++
	if *attempts > s.cfg.MaxAttempts {
		return &Error{Kind: KindRetryExhausted, Code: e.Code,
			Msg: fmt.Sprintf("gave up after %d attempts", s.cfg.MaxAttempts), Err: e}, false
	}
	d := fullJitter(s.cfg.BaseDelay, s.cfg.MaxDelay, *attempts)
	s.cfg.Logger.Info("zerobus stream reconnecting", "table", s.cfg.Table, "attempt", *attempts, "after", d, "err", e)
	for _, h := range s.hooks.retry {
		h.OnRetry(*attempts, d, e)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, true
	case <-s.life.Done():
		return e, false
	}
}

// fullJitter returns a random wait in [0, min(max, base*2^(n-1))).
func fullJitter(base, maxDelay time.Duration, n int) time.Duration {
	ceil := maxDelay
	if n-1 < 62 && base <= maxDelay>>(n-1) {
		ceil = base << (n - 1)
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}
