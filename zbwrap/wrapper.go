package zbwrap

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
	"github.com/pyzerobus/pyzerobus/zbwrap/debugfiles"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/auth"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/flightstream"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/transport"
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

	conn *transport.Conn // nil with the writer disabled

	mu         sync.Mutex
	closed     bool
	active     sync.WaitGroup        // SendBatchAsync calls in progress
	streams    map[string]liveStream // by descriptor bytes
	streamIdle time.Duration         // streams: auto closes an extra stream idle this long (0: defaultStreamIdle); set by tests
	retired    stream.Stats          // counters of streams no longer in use
	described  map[string]*arrowproto.Schema
	encoders   map[string]*flightstream.Encoder // by Arrow schema fingerprint (arrow transport)
	counts     counts

	amu       sync.Mutex
	nextAsync int64
	async     []*asyncBatch // unresolved async batches, ascending offset (done ones trimmed from the front)
	failed    []*asyncBatch // resolved with failures, not yet reported
}

// batchStream is the seam between the Wrapper and a transport: one stream
// of encoded requests to the table, which owns their offsets, the in-flight
// window, acknowledgements, recovery and replay, and resolves each batch's
// requests exactly once. protoStream (protobuf records over the Zerobus
// gRPC service) and arrowStream (Arrow IPC over Flight DoPut) implement it,
// and multiStream spreads batches over several of either; openStream makes
// the one the configuration asks for, and the send path does not know
// which.
type batchStream interface {
	// send queues a converted batch, waiting for window room (bounded by
	// ctx) if block, else failing at once when there is none. out.onDone
	// runs when every request is resolved, out.onRelease once the stream no
	// longer reads the batch's memory.
	send(ctx context.Context, out outbound, block bool) (*stream.Batch, error)
	// Flush waits until every queued request is resolved.
	Flush(ctx context.Context) error
	// Close flushes (bounded by ctx), ends the stream and resolves whatever
	// is left; every goroutine of the stream is gone when it returns.
	Close(ctx context.Context) error
	// Err is the failure that finished the stream, nil while it is usable.
	Err() error
	Stats() stream.Stats
	// Inflight is what the window holds now.
	Inflight() (records, bytes int64)
}

// outbound is a converted batch on its way to a stream: framed protobuf
// records (proto transport) or Arrow IPC messages (arrow transport).
type outbound struct {
	frames    []byte
	records   [][]byte
	arrow     *flightstream.Batch
	onDone    func(*stream.Batch)
	onRelease func()
}

// protoStream is the proto transport's stream: framed records, each request
// a range of the batch's buffer.
type protoStream struct{ *stream.Stream }

func (p protoStream) send(ctx context.Context, out outbound, block bool) (*stream.Batch, error) {
	if block {
		return p.SendFramed(ctx, out.frames, out.records, out.onDone, out.onRelease)
	}
	return p.TrySendFramed(out.frames, out.records, out.onDone, out.onRelease)
}

// arrowStream is the arrow transport's stream: Arrow IPC messages over
// Flight DoPut.
type arrowStream struct{ *flightstream.Stream }

func (a arrowStream) send(ctx context.Context, out outbound, block bool) (*stream.Batch, error) {
	if block {
		return a.Send(ctx, out.arrow, out.onDone, out.onRelease)
	}
	return a.TrySend(out.arrow, out.onDone, out.onRelease)
}

var (
	_ batchStream = protoStream{}
	_ batchStream = arrowStream{}
)

// liveStream is a stream in use, with its telemetry observer (nil when
// telemetry is off).
type liveStream struct {
	batchStream
	obs *telemetry.Stream
}

type counts struct {
	batches, rowsOK, rowsFailed int64
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
		encoders:  map[string]*flightstream.Encoder{},
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	if err := w.openTelemetry(ctx); err != nil {
		return nil, err
	}
	if !set.cfg.ZerobusWriterDisabled {
		w.conn = transport.New(transportConfig(set))
	}
	if !set.cfg.ZerobusWriterDisabled && set.headers == nil {
		client := set.http
		if client == nil {
			w.transport = http.DefaultTransport.(*http.Transport).Clone()
			w.transport.TLSClientConfig = transport.TLSConfig(set.tls, set.roots)
			client = &http.Client{Transport: w.transport, Timeout: auth.DefaultFetchTimeout}
		}
		acfg := auth.Config{
			ClientID:     set.cfg.ClientID,
			ClientSecret: string(set.cfg.ClientSecret),
			WorkspaceURL: set.cfg.UnityCatalogURL,
			Endpoint:     set.cfg.ZerobusEndpoint,
			HTTPClient:   client,
		}
		if w.tel != nil {
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

// userAgent is the user agent of every call: the engine's, then the
// application's name when one is set.
func userAgent(c Config) string {
	if c.ApplicationName == "" {
		return "pyzerobus/" + Version
	}
	return "pyzerobus/" + Version + " " + c.ApplicationName
}

// transportConfig is the connection of a validated configuration.
func transportConfig(set settings) transport.Config {
	u, _ := parseEndpoint(set.cfg.ZerobusEndpoint, true) // validated
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return transport.Config{
		Target:      net.JoinHostPort(u.Hostname(), port),
		Plaintext:   u.Scheme == "http", // validated: loopback only
		TLS:         set.tls,
		RootCAs:     set.roots,
		UserAgent:   userAgent(set.cfg),
		Dialer:      set.dialer,
		DialOptions: set.dialOpts,
	}
}

// headerSource adapts a HeadersProvider to the stream.
type headerSource struct{ p HeadersProvider }

func (h headerSource) Headers(ctx context.Context, _ bool) (map[string]string, error) {
	return h.p.Headers(ctx)
}

// streamFor returns the live stream for a target (a descriptor, or an
// Arrow schema), creating it (and replacing a failed one) as needed, with
// its telemetry observer (nil when telemetry is off). ctx carries the span
// of the send that needs it.
func (w *Wrapper) streamFor(ctx context.Context, tgt *target) (batchStream, *telemetry.Stream, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, closedError("send")
	}
	if ls := w.streams[tgt.key]; ls.batchStream != nil {
		if ls.Err() == nil {
			return ls.batchStream, ls.obs, nil
		}
		// A failed stream has resolved all its requests: retire it.
		_ = ls.Close(context.Background())
		w.retire(ls.Stats())
	}
	var obs *telemetry.Stream
	if w.tel != nil {
		obs = w.tel.NewStream(ctx)
	}
	var s batchStream
	open := func() (batchStream, error) { return w.openStream(tgt, obs) }
	switch {
	case w.cfg.Streams == StreamsAuto:
		m := newAutoStream(w.cfg.MaxStreams, int64(w.cfg.MaxInflightRecords), w.cfg.MaxInflightBytes, open)
		if w.streamIdle > 0 {
			m.idle = w.streamIdle
		}
		s = m
	case w.cfg.Streams > 1:
		s = newMultiStream(w.cfg.Streams, open)
	default:
		var err error
		if s, err = open(); err != nil {
			return nil, nil, err
		}
	}
	w.streams[tgt.key] = liveStream{s, obs}
	return s, obs, nil
}

// openStream makes a stream of the configured transport for a target; it
// connects on its first send. obs, if set, observes it for telemetry.
func (w *Wrapper) openStream(tgt *target, obs *telemetry.Stream) (batchStream, error) {
	cc, err := w.conn.Get()
	if err != nil {
		return nil, &Error{Kind: KindConnection, Op: "connect", Err: err}
	}
	hooks := w.set.hooks
	if obs != nil {
		hooks = append(slices.Clip(hooks), obs)
	}
	var hs stream.HeaderSource
	switch {
	case w.set.headers != nil:
		hs = headerSource{w.set.headers}
	case w.tokens != nil:
		hs = w.tokens.ForTable(w.cfg.TableName)
	}
	cfg := stream.Config{
		Table:              w.cfg.TableName,
		Headers:            hs,
		MaxInflightRecords: w.cfg.MaxInflightRecords,
		MaxInflightBytes:   w.cfg.MaxInflightBytes,
		MaxRequestBytes:    w.cfg.MaxRequestBytes,
		DisableRecovery:    w.cfg.RecoveryDisabled,
		MaxAttempts:        w.cfg.RetryMaxAttempts,
		BaseDelay:          w.cfg.RetryBaseDelay,
		MaxDelay:           w.cfg.RetryMaxDelay,
		AckTimeout:         w.cfg.AckTimeout,
		FlushTimeout:       w.cfg.FlushTimeout,
		CreateTimeout:      w.cfg.StreamCreateTimeout,
		HandshakeError:     w.conn.HandshakeError,
		Hooks:              hooks,
		Logger:             w.logger,
	}
	if tgt.enc != nil {
		return arrowStream{flightstream.New(cc, tgt.enc, cfg)}, nil
	}
	cfg.Descriptor = tgt.schema.DescriptorBytes()
	return protoStream{stream.New(cc, cfg)}, nil
}

func closedError(op string) *Error {
	return &Error{Kind: KindTransmission, Op: op, Err: ErrClosed}
}

// Flush waits until everything sent so far is resolved, bounded by ctx and
// flush_timeout_ms, and reports the async batches that failed since the
// last report (as WaitForOffset does). Concurrent SendBatch calls report
// their own failures. It also writes out the debug files' buffers (their
// failures are logged and counted, as the debug writer's always are).
func (w *Wrapper) Flush(ctx context.Context) error {
	defer func() { _ = w.debug.Flush() }()
	ctx, cancel := context.WithTimeout(ctx, w.cfg.FlushTimeout)
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

func (w *Wrapper) liveStreams() []batchStream {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]batchStream, 0, len(w.streams))
	for _, ls := range w.streams {
		out = append(out, ls.batchStream)
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
	streams := make([]batchStream, 0, len(w.streams))
	for _, ls := range w.streams {
		streams = append(streams, ls.batchStream)
	}
	w.mu.Unlock()

	// One deadline for every step: ctx's or flush_timeout_ms, the earlier.
	// The streams stop a little before it, so that telemetry's final export,
	// which counts their last rows, gets a share of it.
	ctx, cancel := context.WithTimeout(ctx, w.cfg.FlushTimeout)
	defer cancel()
	sctx := ctx
	if w.tel != nil {
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
	if w.conn != nil {
		if err := w.conn.Close(); err != nil {
			errs = append(errs, &Error{Kind: KindConnection, Op: "close", Err: err})
		}
	}
	if w.tokens != nil {
		w.tokens.Close()
	}
	if w.transport != nil {
		w.transport.CloseIdleConnections()
	}
	w.closeDebug()
	if w.tel != nil {
		// After the streams: the last batches are counted before the final
		// export.
		if err := w.tel.Shutdown(ctx); err != nil {
			w.logger.Warn("zerobus telemetry shutdown", "err", err)
		}
	}
	return errors.Join(errs...)
}
