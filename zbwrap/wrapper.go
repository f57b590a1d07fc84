package zbwrap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
	"github.com/pyzerobus/pyzerobus/zbwrap/debugfiles"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/auth"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
)

// Version is the engine's version, sent in the user-agent as
// pyzerobus/<Version>.
const Version = "0.1.0"

// schemaCacheSize bounds the compiled schemas kept per Wrapper.
const schemaCacheSize = 64

// telemetryShare is the most of Close's deadline kept for telemetry's final
// export (a tenth of it when that is less).
const telemetryShare = 500 * time.Millisecond

// Wrapper sends Arrow record batches to one Zerobus table. It is safe for
// concurrent use; see the package documentation for the guarantees.
type Wrapper struct {
	cfg    Config
	set    settings
	cache  *arrowproto.Cache
	logger *slog.Logger
	hooks  wrapperHooks
	debug  *debugfiles.Writer   // nil unless debug files are on
	tel    *telemetry.Telemetry // nil unless telemetry is on

	tokens    *auth.Source    // nil with a HeadersProvider or the writer disabled
	transport *http.Transport // of token requests, when built here

	connMu    sync.Mutex
	cc        *grpc.ClientConn
	handshake handshakeResult // of cc's TLS handshakes

	mu        sync.Mutex
	closed    bool
	active    sync.WaitGroup        // SendBatchAsync calls in progress
	streams   map[string]liveStream // by descriptor bytes
	retired   stream.Stats          // counters of streams no longer in use
	described map[string]*arrowproto.Schema
	counts    counts

	amu       sync.Mutex
	nextAsync int64
	async     []*asyncBatch // unresolved async batches, ascending offset (done ones trimmed from the front)
	failed    []*asyncBatch // resolved with failures, not yet reported
}

// liveStream is a stream in use, with its telemetry observer (nil when
// telemetry is off).
type liveStream struct {
	*stream.Stream
	obs *telemetry.Stream
}

type counts struct {
	batches, rowsOK, rowsFailed int64
}

type asyncBatch struct {
	off     int64
	refs    atomic.Int32
	sub     *submission
	discard bool // failed before anything was queued: reported by the send call
	done    chan struct{}
	res     *TransmissionResult // set before done closes when the batch failed
}

// New validates the configuration (cfg, then opts applied in order) and
// returns a Wrapper. It opens no connection: the first send does.
func New(ctx context.Context, cfg Config, opts ...Option) (*Wrapper, error) {
	set := settings{cfg: cfg}
	for _, o := range opts {
		o(&set)
	}
	set.cfg = set.cfg.withDefaults()
	if err := set.cfg.validate(set.headers != nil); err != nil {
		return nil, err
	}
	if set.tls != nil && set.tls.InsecureSkipVerify {
		return nil, &Error{Kind: KindConfiguration, Op: "config", Setting: "tls",
			Msg: "TLS verification cannot be turned off; trust the server with WithRootCAs"}
	}
	w := &Wrapper{
		cfg:       set.cfg,
		set:       set,
		cache:     arrowproto.NewCache(schemaCacheSize),
		logger:    set.logger,
		hooks:     newWrapperHooks(set.hooks),
		streams:   map[string]liveStream{},
		described: map[string]*arrowproto.Schema{},
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	if telemetryCompiled {
		if err := w.openTelemetry(ctx); err != nil {
			return nil, err
		}
	}
	if !set.cfg.ZerobusWriterDisabled && set.headers == nil {
		client := set.http
		if client == nil {
			w.transport = http.DefaultTransport.(*http.Transport).Clone()
			w.transport.TLSClientConfig = w.tlsConfig()
			client = &http.Client{Transport: w.transport, Timeout: auth.DefaultFetchTimeout}
		}
		acfg := auth.Config{
			ClientID:     set.cfg.ClientID,
			ClientSecret: string(set.cfg.ClientSecret),
			WorkspaceURL: set.cfg.UnityCatalogURL,
			Endpoint:     set.cfg.ZerobusEndpoint,
			HTTPClient:   client,
		}
		if telemetryCompiled && w.tel != nil {
			acfg.OnFetch = func(refresh bool, err error) {
				kind := KindAuthentication
				if refresh {
					kind = KindTokenRefresh
				}
				w.tel.TokenFetched(kindID(kind), err)
			}
		}
		src, err := auth.New(acfg)
		if err != nil {
			_ = w.tel.Shutdown(ctx)
			return nil, &Error{Kind: KindConfiguration, Op: "config", Err: err}
		}
		w.tokens = src
	}
	if err := w.openDebug(); err != nil {
		if w.tokens != nil {
			w.tokens.Close()
		}
		_ = w.tel.Shutdown(ctx)
		return nil, err
	}
	return w, nil
}

// Config returns the effective configuration (defaults filled in).
func (w *Wrapper) Config() Config { return w.cfg }

func (w *Wrapper) tlsConfig() *tls.Config {
	var c *tls.Config
	if w.set.tls != nil {
		c = w.set.tls.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if w.set.roots != nil {
		c.RootCAs = w.set.roots
	}
	return c
}

// conn returns the gRPC client connection, creating it on first use.
func (w *Wrapper) conn() (*grpc.ClientConn, error) {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	if w.cc != nil {
		return w.cc, nil
	}
	u, err := parseEndpoint(w.cfg.ZerobusEndpoint, true)
	if err != nil {
		return nil, &Error{Kind: KindConfiguration, Op: "connect", Setting: "zerobus_endpoint", Err: err}
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	var creds credentials.TransportCredentials
	if u.Scheme == "http" {
		creds = insecure.NewCredentials() // validated: loopback only
	} else {
		creds = coalescing{credentials.NewTLS(w.tlsConfig()), &w.handshake}
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("pyzerobus/" + Version),
		// Large static windows: a 1 MB request should not wait for window
		// updates on a fast link.
		grpc.WithInitialWindowSize(16 << 20),
		grpc.WithInitialConnWindowSize(64 << 20),
		// One socket write per MiB (see coalescing): 512 KiB measured
		// slower, 2 MiB no faster.
		grpc.WithWriteBufferSize(1 << 20),
		// The client only reads acknowledgements: 32 KiB is plenty.
		grpc.WithReadBufferSize(32 << 10),
	}
	if w.set.dialer != nil {
		opts = append(opts, grpc.WithContextDialer(w.set.dialer))
	}
	opts = append(opts, w.set.dialOpts...)
	cc, err := grpc.NewClient(net.JoinHostPort(u.Hostname(), port), opts...)
	if err != nil {
		return nil, &Error{Kind: KindConnection, Op: "connect", Err: err}
	}
	w.cc = cc
	return cc, nil
}

// headerSource adapts a HeadersProvider to the stream.
type headerSource struct{ p HeadersProvider }

func (h headerSource) Headers(ctx context.Context, _ bool) (map[string]string, error) {
	return h.p.Headers(ctx)
}

// streamFor returns the live stream for a descriptor, creating it (and
// replacing a failed one) as needed, with its telemetry observer (nil when
// telemetry is off). ctx carries the span of the send that needs it.
func (w *Wrapper) streamFor(ctx context.Context, desc []byte) (*stream.Stream, *telemetry.Stream, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, closedError("send")
	}
	if ls := w.streams[string(desc)]; ls.Stream != nil {
		if ls.Err() == nil {
			return ls.Stream, ls.obs, nil
		}
		// A failed stream has resolved all its requests: retire it.
		_ = ls.Close(context.Background())
		w.retire(ls.Stats())
	}
	cc, err := w.conn()
	if err != nil {
		return nil, nil, err
	}
	hooks := w.set.hooks
	var obs *telemetry.Stream
	if telemetryCompiled && w.tel != nil {
		obs = w.tel.NewStream(ctx)
		hooks = append(slices.Clip(hooks), obs)
	}
	var hs stream.HeaderSource
	switch {
	case w.set.headers != nil:
		hs = headerSource{w.set.headers}
	case w.tokens != nil:
		hs = w.tokens.ForTable(w.cfg.TableName)
	}
	s := stream.New(cc, stream.Config{
		Table:              w.cfg.TableName,
		Descriptor:         desc,
		Headers:            hs,
		MaxInflightRecords: w.cfg.MaxInflightRecords,
		MaxInflightBytes:   w.cfg.MaxInflightBytes,
		MaxRequestBytes:    w.cfg.MaxRequestBytes,
		DisableRecovery:    w.cfg.RecoveryDisabled,
		MaxAttempts:        w.cfg.RetryMaxAttempts,
		BaseDelay:          ms(w.cfg.RetryBaseDelayMs),
		MaxDelay:           ms(w.cfg.RetryMaxDelayMs),
		AckTimeout:         ms(w.cfg.AckTimeoutMs),
		FlushTimeout:       ms(w.cfg.FlushTimeoutMs),
		CreateTimeout:      ms(w.cfg.StreamCreateTimeoutMs),
		HandshakeError:     w.handshake.Err,
		Hooks:              hooks,
		Logger:             w.logger,
	})
	w.streams[string(desc)] = liveStream{s, obs}
	return s, obs, nil
}

func closedError(op string) *Error {
	return &Error{Kind: KindTransmission, Op: op, Err: ErrClosed}
}

// submission is one batch on its way.
type submission struct {
	offset   int64 // async offset, -1 for SendBatch
	start    time.Time
	rows     int
	enc      *arrowproto.Batch // nil when the whole batch failed to convert
	convErr  *Error            // the whole batch failed to convert
	sb       *stream.Batch     // nil when nothing was sent
	queueErr error
	obs      *telemetry.Stream // the stream's observer, with telemetry on
	// refs counts the holders of enc's memory: the result (until it is
	// built) and the stream (until it lets go of the records). The last
	// one gives the memory back for the next batch.
	refs atomic.Int32
}

// release drops one hold on the encoded batch.
func (s *submission) release() {
	if s.refs.Add(-1) == 0 && s.enc != nil {
		s.enc.Release()
	}
}

// submit converts rec and queues its records, waiting for window room if
// block. onDone, if set, runs when the stream resolves the batch (only when
// sub.sb is set). The caller releases sub once its result is built.
//
// sp, the send's span (nil with telemetry off), gets the encode span, and ctx
// carries it.
func (w *Wrapper) submit(ctx context.Context, rec arrow.RecordBatch, desc *descriptorpb.DescriptorProto, offset int64, block bool, onDone func(), sp *telemetry.Send) (*submission, error) {
	sub, schema, err := w.convert(rec, desc, offset, sp)
	if err != nil || schema == nil {
		return sub, err
	}
	if err := w.queue(ctx, sub, schema, block, onDone); err != nil {
		return nil, err
	}
	return sub, nil
}

// convert checks that the Wrapper is open and converts rec. The schema is
// nil when there is nothing to queue: the whole batch failed to convert
// (sub.convErr), the writer is disabled, or no row converted.
func (w *Wrapper) convert(rec arrow.RecordBatch, desc *descriptorpb.DescriptorProto, offset int64, sp *telemetry.Send) (*submission, *arrowproto.Schema, error) {
	if rec == nil {
		return nil, nil, &Error{Kind: KindConfiguration, Op: "send", Msg: "nil record batch"}
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return nil, nil, closedError("send")
	}
	sub := &submission{offset: offset, start: time.Now(), rows: int(rec.NumRows())}
	sub.refs.Store(1)
	schema, err := w.schemaFor(rec.Schema(), desc)
	if err == nil {
		// Framed as the records of a request: the stream sends ranges of
		// this buffer as they are.
		sub.enc, err = schema.EncodeFramed(rec, stream.RecordField)
	}
	if telemetryCompiled && sp != nil {
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
	if debugHookCompiled {
		for _, h := range w.hooks.encoded {
			h.OnBatchEncoded(rec, schema.DescriptorBytes(), sub.enc.Records)
		}
	}
	if w.cfg.ZerobusWriterDisabled || len(sub.enc.Records) == 0 {
		return sub, nil, nil
	}
	return sub, schema, nil
}

// queue hands a converted batch to its stream, waiting for window room if
// block. On an error it releases sub.
func (w *Wrapper) queue(ctx context.Context, sub *submission, schema *arrowproto.Schema, block bool, onDone func()) error {
	s, obs, err := w.streamFor(ctx, schema.DescriptorBytes())
	if err != nil {
		sub.release()
		return err
	}
	sub.obs = obs
	var cb func(*stream.Batch)
	if onDone != nil {
		cb = func(*stream.Batch) { onDone() }
	}
	sub.refs.Add(1) // the stream's, dropped once it lets go of the records
	if block {
		sub.sb, sub.queueErr = s.SendFramed(ctx, sub.enc.Frames, sub.enc.Records, cb, sub.release)
	} else {
		sub.sb, sub.queueErr = s.TrySendFramed(sub.enc.Frames, sub.enc.Records, cb, sub.release)
	}
	return nil
}

// schemaFor compiles (or finds) the schema of a batch.
func (w *Wrapper) schemaFor(sc *arrow.Schema, desc *descriptorpb.DescriptorProto) (*arrowproto.Schema, error) {
	if desc == nil {
		return w.cache.Get(sc)
	}
	db, err := proto.MarshalOptions{Deterministic: true}.Marshal(desc)
	if err != nil {
		return nil, err
	}
	key := sc.Fingerprint() + "\x00" + string(db)
	w.mu.Lock()
	s := w.described[key]
	w.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err = arrowproto.NewSchemaWithDescriptor(sc, desc)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	if len(w.described) >= schemaCacheSize {
		clear(w.described)
	}
	w.described[key] = s
	w.mu.Unlock()
	return s, nil
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
func (w *Wrapper) SendBatch(ctx context.Context, rec arrow.RecordBatch) (*TransmissionResult, error) {
	return w.sendSync(ctx, rec, nil)
}

// SendBatchWithDescriptor is SendBatch with an explicit protobuf message
// descriptor (it must match rec's schema: field names, types and
// nullability) instead of the one derived from the schema.
func (w *Wrapper) SendBatchWithDescriptor(ctx context.Context, rec arrow.RecordBatch, desc *descriptorpb.DescriptorProto) (*TransmissionResult, error) {
	if desc == nil {
		return nil, &Error{Kind: KindConfiguration, Op: "send", Msg: "nil descriptor"}
	}
	return w.sendSync(ctx, rec, desc)
}

func (w *Wrapper) sendSync(ctx context.Context, rec arrow.RecordBatch, desc *descriptorpb.DescriptorProto) (*TransmissionResult, error) {
	p, err := w.enqueue(ctx, rec, desc)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
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
func (w *Wrapper) Enqueue(ctx context.Context, rec arrow.RecordBatch) (*PendingBatch, error) {
	return w.enqueue(ctx, rec, nil)
}

func (w *Wrapper) enqueue(ctx context.Context, rec arrow.RecordBatch, desc *descriptorpb.DescriptorProto) (*PendingBatch, error) {
	b, err := w.prepare(ctx, rec, desc)
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
func (w *Wrapper) Prepare(ctx context.Context, rec arrow.RecordBatch) (*PreparedBatch, error) {
	return w.prepare(ctx, rec, nil)
}

// PreparedBatch is a batch converted by Prepare and not yet queued.
type PreparedBatch struct {
	w      *Wrapper
	sub    *submission
	schema *arrowproto.Schema // nil: nothing to queue
	sp     *telemetry.Send
	mu     sync.Mutex
	done   bool // Enqueue was called
}

func (w *Wrapper) prepare(ctx context.Context, rec arrow.RecordBatch, desc *descriptorpb.DescriptorProto) (*PreparedBatch, error) {
	var sp *telemetry.Send
	if telemetryCompiled && w.tel != nil && rec != nil {
		_, sp = w.tel.StartSend(ctx, telemetry.SpanSendBatch, int(rec.NumRows()))
	}
	sub, schema, err := w.convert(rec, desc, -1, sp)
	if err != nil {
		if sp != nil {
			sp.End(outcome(nil, err))
		}
		return nil, err
	}
	return &PreparedBatch{w: w, sub: sub, schema: schema, sp: sp}, nil
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
	if b.schema != nil {
		if b.sp != nil {
			ctx = b.sp.In(ctx)
		}
		if err := b.w.queue(ctx, b.sub, b.schema, true, nil); err != nil {
			if b.sp != nil {
				b.sp.End(outcome(nil, err))
			}
			return nil, err
		}
	}
	return &PendingBatch{w: b.w, sub: b.sub, sp: b.sp}, nil
}

// PendingBatch is a batch queued by Enqueue.
type PendingBatch struct {
	w    *Wrapper
	sub  *submission
	sp   *telemetry.Send
	once sync.Once
	res  *TransmissionResult
}

// Wait returns when every row of the batch is durably acknowledged or has
// failed, with the result and error SendBatch would have returned. If ctx
// ends first, Wait returns at once as SendBatch does: requests not yet
// written are withdrawn, and rows of requests already written are reported
// failed with MayHaveLanded true. Later calls return the first result.
func (p *PendingBatch) Wait(ctx context.Context) (*TransmissionResult, error) {
	p.once.Do(func() { p.res = p.wait(ctx) })
	if !p.res.Success {
		return p.res, p.res.Error
	}
	return p.res, nil
}

func (p *PendingBatch) wait(ctx context.Context) *TransmissionResult {
	sub, sp := p.sub, p.sp
	if sub.sb != nil {
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
	res := p.w.result(sub)
	sub.release()
	if sp != nil {
		sp.End(outcome(res, res.Error))
	}
	return res
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
	if telemetryCompiled && w.tel != nil {
		w.recordResult(res)
	}
	return res
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
func (w *Wrapper) SendBatchAsync(ctx context.Context, rec arrow.RecordBatch) (int64, error) {
	return w.sendAsync(ctx, rec, true)
}

// TrySendBatchAsync is SendBatchAsync that fails at once (Retryable,
// wrapping an error that names the full window) instead of waiting when the
// in-flight window has no room for the batch's first request; it never
// waits for the writer.
func (w *Wrapper) TrySendBatchAsync(rec arrow.RecordBatch) (int64, error) {
	return w.sendAsync(context.Background(), rec, false)
}

func (w *Wrapper) sendAsync(ctx context.Context, rec arrow.RecordBatch, block bool) (int64, error) {
	// Close waits for calls in progress so that it reports their failures.
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return -1, closedError("send")
	}
	w.active.Add(1)
	w.mu.Unlock()
	defer w.active.Done()
	a := &asyncBatch{done: make(chan struct{})}
	// Two references: the stream resolving the batch and this call
	// returning; the last one finishes the batch.
	a.refs.Store(2)
	w.amu.Lock()
	a.off = w.nextAsync
	w.nextAsync++
	w.async = append(w.async, a)
	w.amu.Unlock()
	var sp *telemetry.Send
	if telemetryCompiled && w.tel != nil && rec != nil {
		ctx, sp = w.tel.StartSend(ctx, telemetry.SpanSendBatchAsync, int(rec.NumRows()))
	}
	off, err := w.queueAsync(ctx, rec, block, a, sp)
	if sp != nil {
		o := outcome(nil, err)
		o.Offset = off
		sp.End(o)
	}
	return off, err
}

// queueAsync submits the async batch a.
func (w *Wrapper) queueAsync(ctx context.Context, rec arrow.RecordBatch, block bool, a *asyncBatch, sp *telemetry.Send) (int64, error) {
	sub, err := w.submit(ctx, rec, nil, a.off, block, func() { w.releaseAsync(a) }, sp)
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
	switch {
	case a.discard:
	case !a.sub.succeeded() || len(w.hooks.done) > 0:
		if r := w.result(a.sub); !r.Success {
			res = r
		}
	default:
		w.mu.Lock()
		w.counts.batches++
		w.counts.rowsOK += int64(a.sub.rows)
		w.mu.Unlock()
		if telemetryCompiled && w.tel != nil {
			w.tel.BatchDone(context.Background(), a.sub.rows)
		}
	}
	if a.sub != nil {
		a.sub.release()
	}
	w.amu.Lock()
	a.res = res
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

// succeeded reports, once resolved, whether every row was acknowledged.
func (s *submission) succeeded() bool {
	if s.convErr != nil || len(s.enc.Errors) > 0 || s.queueErr != nil {
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
			e := a.res.Error.(*Error)
			errs = append(errs, &Error{Kind: e.Kind, Op: fmt.Sprintf("batch at offset %d", a.off),
				Msg: e.Msg, Err: e.Err, Result: a.res, retryable: e.retryable})
		} else {
			kept = append(kept, a)
		}
	}
	clear(w.failed[len(kept):])
	w.failed = kept
	w.amu.Unlock()
	return errors.Join(errs...)
}

// Flush waits until everything sent so far is resolved, bounded by ctx and
// flush_timeout_ms, and reports the async batches that failed since the
// last report (as WaitForOffset does). Concurrent SendBatch calls report
// their own failures.
func (w *Wrapper) Flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ms(w.cfg.FlushTimeoutMs))
	defer cancel()
	w.amu.Lock()
	last := w.nextAsync - 1
	w.amu.Unlock()
	var errs []error
	for _, s := range w.liveStreams() {
		if err := s.Flush(ctx); err != nil {
			errs = append(errs, fromStream("flush", err))
		}
	}
	if last >= 0 {
		if err := w.WaitForOffset(ctx, last); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (w *Wrapper) liveStreams() []*stream.Stream {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*stream.Stream, 0, len(w.streams))
	for _, ls := range w.streams {
		out = append(out, ls.Stream)
	}
	return out
}

// Close stops accepting batches, flushes, ends every stream, releases the
// connection and shuts telemetry down, all within one deadline: ctx's or
// flush_timeout_ms from now, the earlier; Close returns by it. Rows still
// unacknowledged when the streams must stop (with telemetry on, a tenth of
// the time left or 500 ms before the deadline, whichever is less, is kept
// for its final export) fail with ErrClosed (MayHaveLanded if they were
// written). Close returns the failures of async batches not yet reported.
// Calling it again is a no-op.
func (w *Wrapper) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	streams := make([]*stream.Stream, 0, len(w.streams))
	for _, ls := range w.streams {
		streams = append(streams, ls.Stream)
	}
	w.mu.Unlock()

	// One deadline for every step: ctx's or flush_timeout_ms, the earlier.
	// The streams stop a little before it, so that telemetry's final export,
	// which counts their last rows, gets a share of it.
	ctx, cancel := context.WithTimeout(ctx, ms(w.cfg.FlushTimeoutMs))
	defer cancel()
	sctx := ctx
	if telemetryCompiled && w.tel != nil {
		d, _ := ctx.Deadline()
		var scancel context.CancelFunc
		sctx, scancel = context.WithDeadline(ctx, d.Add(-min(telemetryShare, time.Until(d)/10)))
		defer scancel()
	}
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, s := range streams {
		wg.Go(func() {
			err := s.Close(sctx)
			w.mu.Lock()
			w.retire(s.Stats())
			w.mu.Unlock()
			if err != nil {
				emu.Lock()
				errs = append(errs, fromStream("close", err))
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	w.mu.Lock()
	clear(w.streams)
	w.mu.Unlock()
	w.active.Wait() // async calls still queueing finish at once now
	// Every stream batch is resolved now; async batches that never reached a
	// stream resolved at once.
	w.amu.Lock()
	last := w.nextAsync - 1
	w.amu.Unlock()
	if last >= 0 {
		if err := w.takeFailures(last); err != nil {
			errs = append(errs, err)
		}
	}
	w.connMu.Lock()
	if w.cc != nil {
		if err := w.cc.Close(); err != nil {
			errs = append(errs, &Error{Kind: KindConnection, Op: "close", Err: err})
		}
	}
	w.connMu.Unlock()
	if w.tokens != nil {
		w.tokens.Close()
	}
	if w.transport != nil {
		w.transport.CloseIdleConnections()
	}
	w.closeDebug()
	if telemetryCompiled && w.tel != nil {
		// After the streams: the last batches are counted before the final
		// export.
		if err := w.tel.Shutdown(ctx); err != nil {
			w.logger.Warn("zerobus telemetry shutdown", "err", err)
		}
	}
	return errors.Join(errs...)
}

// Stats counts what a Wrapper did.
type Stats struct {
	Batches    int64 `json:"batches"`    // batches resolved
	RowsAcked  int64 `json:"rows_acked"` // rows acknowledged (or converted, writer disabled)
	RowsFailed int64 `json:"rows_failed"`
	Streams    int   `json:"streams"` // streams open now

	CallsOpened      int64 `json:"calls_opened"` // stream calls opened (reconnections included)
	OpenFailures     int64 `json:"open_failures"`
	CallFailures     int64 `json:"call_failures"`
	CloseSignals     int64 `json:"close_signals"`
	RequestsWritten  int64 `json:"requests_written"` // request writes, replays included
	RequestsAcked    int64 `json:"requests_acked"`
	ReplayedRequests int64 `json:"replayed_requests"` // writes of a request already written on a failed call
	ReplayedRecords  int64 `json:"replayed_records"`
	// RecordsMaybeDuplicated counts acknowledged records whose request was
	// written on more than one call: the table may hold them twice. This is
	// the only way duplicates arise.
	RecordsMaybeDuplicated int64 `json:"records_maybe_duplicated"`
}

// Stats returns a snapshot.
func (w *Wrapper) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := stats(w.retired)
	for _, s := range w.streams {
		add(&st, s.Stats())
	}
	st.Batches, st.RowsAcked, st.RowsFailed = w.counts.batches, w.counts.rowsOK, w.counts.rowsFailed
	st.Streams = len(w.streams)
	return st
}

func stats(s stream.Stats) Stats {
	var st Stats
	add(&st, s)
	return st
}

func add(st *Stats, s stream.Stats) {
	st.CallsOpened += s.Opens
	st.OpenFailures += s.OpenFailures
	st.CallFailures += s.CallFailures
	st.CloseSignals += s.CloseSignals
	st.RequestsWritten += s.RequestsWritten
	st.RequestsAcked += s.RequestsAcked
	st.ReplayedRequests += s.ReplayedRequests
	st.ReplayedRecords += s.ReplayedRecords
	st.RecordsMaybeDuplicated += s.RecordsMaybeDup
}

// retire folds a finished stream's counters in; w.mu held.
func (w *Wrapper) retire(s stream.Stats) {
	r := &w.retired
	r.Opens += s.Opens
	r.OpenFailures += s.OpenFailures
	r.CallFailures += s.CallFailures
	r.CloseSignals += s.CloseSignals
	r.RequestsWritten += s.RequestsWritten
	r.RequestsAcked += s.RequestsAcked
	r.ReplayedRequests += s.ReplayedRequests
	r.ReplayedRecords += s.ReplayedRecords
	r.RecordsMaybeDup += s.RecordsMaybeDup
}
