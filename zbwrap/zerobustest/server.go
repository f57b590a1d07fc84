package zerobustest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest/internal/lake"
)

// Server is a local Zerobus Ingest server: the gRPC ingest service on one
// listener and the workspace URL (OAuth tokens, Unity Catalog tables, admin
// endpoints) on another. Its methods are safe for concurrent use.
type Server struct {
	cfg     config
	log     *slog.Logger
	lake    *lake.Lake // nil in discard mode
	dataDir string
	ownDir  bool
	ca      *certAuthority
	caFile  string
	tokens  *tokenStore
	faults  faultSet

	grpcLn       *connListener
	httpLn       net.Listener
	grpc         *grpc.Server
	http         *http.Server
	endpoint     string
	workspaceURL string
	serving      sync.WaitGroup // the two Serve goroutines
	readers      sync.WaitGroup // the request readers of the calls

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	counters map[string]*tableCounters
	declared map[string][]Column // discard mode: declared tables
	calls    map[*call]struct{}  // open streams
	closed   []StreamStats       // the last maxClosedStreams closed streams, oldest first

	streamsActive atomic.Int64
	tokensGranted atomic.Int64
	hook          atomic.Pointer[func(where string)] // panics injected by tests
}

// tableCounters count the traffic of one table.
type tableCounters struct {
	streamsOpened   atomic.Int64
	recordsReceived atomic.Int64
	bytesReceived   atomic.Int64
	recordsAcked    atomic.Int64
	faultsFired     atomic.Int64
	throttled       atomic.Int64 // nanoseconds its streams waited on a quota (waits that ended)
	rate            rateWindow
	created         time.Time
	quota           quota // the table quota, shared by its streams
}

// streamCounters count the traffic of one stream (call).
type streamCounters struct {
	id, table       string
	userAgent       string
	transport       string // "proto" (EphemeralStream) or "arrow" (Arrow Flight DoPut)
	opened          time.Time
	recordsReceived atomic.Int64
	bytesReceived   atomic.Int64
	recordsAcked    atomic.Int64
	throttled       atomic.Int64 // nanoseconds of waits that ended
	waitingSince    atomic.Int64 // unix nanoseconds of the wait in progress; 0: none
	rejected        atomic.Int64 // requests refused with RESOURCE_EXHAUSTED
	rate            rateWindow
}

// maxClosedStreams is how many closed streams Stats keeps listing.
const maxClosedStreams = 100

// NewServer starts a server on loopback ports (see WithListen) and returns
// once both listeners accept connections. Close or Shutdown it when done.
func NewServer(opts ...Option) (*Server, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.logger,
		tokens:   newTokenStore(cfg.tokenTTL),
		closing:  make(chan struct{}),
		counters: map[string]*tableCounters{},
		declared: map[string][]Column{},
		calls:    map[*call]struct{}{},
	}
	if err := s.start(); err != nil {
		s.abort()
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	cfg := &s.cfg
	s.dataDir = cfg.dataDir
	if s.dataDir != "" {
		abs, err := filepath.Abs(s.dataDir)
		if err != nil {
			return fmt.Errorf("zerobustest: data dir: %w", err)
		}
		s.dataDir = abs
	}
	if s.dataDir == "" {
		dir, err := os.MkdirTemp("", "zerobustest-")
		if err != nil {
			return fmt.Errorf("zerobustest: data dir: %w", err)
		}
		s.dataDir, s.ownDir = dir, true
	} else if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return fmt.Errorf("zerobustest: data dir: %w", err)
	}

	var grpcCreds []grpc.ServerOption
	if cfg.tls {
		ca, err := newCertAuthority()
		if err != nil {
			return fmt.Errorf("zerobustest: %w", err)
		}
		s.ca = ca
		s.caFile = filepath.Join(s.dataDir, "ca.pem")
		if err := os.WriteFile(s.caFile, ca.caPEM, 0o644); err != nil {
			return fmt.Errorf("zerobustest: write CA: %w", err)
		}
		grpcCreds = append(grpcCreds, grpc.Creds(credentials.NewTLS(ca.serverConfig("h2"))))
	}

	if !cfg.discard {
		l, err := lake.Open(lake.Options{Dir: s.dataDir, MaterializeInterval: cfg.materializeInterval})
		if err != nil {
			return fmt.Errorf("zerobustest: open storage: %w", err)
		}
		s.lake = l
	}
	for _, t := range cfg.tables {
		if err := s.createTable(canon(t.name), t.cols); err != nil {
			return fmt.Errorf("zerobustest: table %s: %w", t.name, err)
		}
	}

	gl, err := net.Listen("tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("zerobustest: listen %s: %w", cfg.grpcAddr, err)
	}
	s.grpcLn = newConnListener(gl)
	hl, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("zerobustest: listen %s: %w", cfg.httpAddr, err)
	}
	s.httpLn = hl
	s.warnIfExposed(hl.Addr())
	scheme := "http"
	if cfg.tls {
		scheme = "https"
	}
	s.endpoint = scheme + "://" + loopbackAddr(gl.Addr())
	s.workspaceURL = scheme + "://" + loopbackAddr(hl.Addr())

	s.grpc = grpc.NewServer(append(grpcCreds,
		grpc.ForceServerCodecV2(serverCodec{}),
		grpc.MaxRecvMsgSize(grpcMaxRecv),
		// Large windows: a client may keep tens of MB in flight. Smaller
		// ones (2 MiB and under) make a fast client wait for window updates.
		grpc.InitialWindowSize(16<<20),
		grpc.InitialConnWindowSize(64<<20),
		// No read buffer: gRPC reads each frame straight from the TLS
		// connection (which buffers the socket reads itself) into its frame
		// buffer, instead of copying every byte once more through a bufio
		// buffer.
		grpc.ReadBufferSize(0),
		grpc.WriteBufferSize(64<<10),
		experimental.BufferPool(&bufferPool{}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.ChainStreamInterceptor(s.recoverStream),
		grpc.WaitForHandlers(true),
	)...)
	wire.RegisterZerobusServer(s.grpc, zerobusService{s: s})
	flight.RegisterFlightServiceServer(s.grpc, &flightService{s: s})
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if cfg.tls {
		s.http.TLSConfig = s.ca.serverConfig("h2", "http/1.1")
	}
	for _, f := range cfg.faults {
		s.faults.add(f)
	}
	s.serving.Add(2)
	go func() {
		defer s.serving.Done()
		_ = s.grpc.Serve(s.grpcLn) // returns when stopped
	}()
	go func() {
		defer s.serving.Done()
		if s.cfg.tls {
			_ = s.http.ServeTLS(s.httpLn, "", "") // returns http.ErrServerClosed on shutdown
		} else {
			_ = s.http.Serve(s.httpLn)
		}
	}()
	s.log.Info("zerobus server started", "endpoint", s.endpoint, "workspace_url", s.workspaceURL,
		"tls", cfg.tls, "discard", cfg.discard, "data_dir", s.dataDir, "profile", cfg.limits.profile,
		"ack_latency", cfg.limits.ackLatency, "stream_quota", cfg.limits.streamQuota, "table_quota", cfg.limits.tableQuota,
		"quota_mode", cfg.limits.quotaMode)
	return nil
}

// abort releases what a failed start acquired.
func (s *Server) abort() {
	if s.grpcLn != nil {
		_ = s.grpcLn.Close()
	}
	if s.httpLn != nil {
		_ = s.httpLn.Close()
	}
	if s.lake != nil {
		_ = s.lake.Close()
	}
	if s.ownDir {
		_ = os.RemoveAll(s.dataDir)
	}
}

// loopbackAddr is addr with an unspecified host replaced by 127.0.0.1.
func loopbackAddr(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if ta.IP == nil || ta.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
	}
	return ta.String()
}

// Endpoint is the gRPC endpoint, http://127.0.0.1:PORT (https:// with TLS).
func (s *Server) Endpoint() string { return s.endpoint }

// WorkspaceURL is the workspace URL serving tokens, Unity Catalog tables and
// the admin endpoints, http://127.0.0.1:PORT (https:// with TLS).
func (s *Server) WorkspaceURL() string { return s.workspaceURL }

// DataDir is the directory holding the tables.
func (s *Server) DataDir() string { return s.dataDir }

// CertPool holds the CA that signed the server's certificate; nil without
// TLS.
func (s *Server) CertPool() *x509.CertPool {
	if s.ca == nil {
		return nil
	}
	return s.ca.pool
}

// CAFile is the path of the CA certificate (PEM) in the data directory;
// empty without TLS.
func (s *Server) CAFile() string { return s.caFile }

// Token issues a token for table, as POST /oidc/v1/token would for a client
// granted SELECT and MODIFY on it.
func (s *Server) Token(table string) string { return s.tokens.issue(table) }

// ExpireTokens makes every issued token expire now and returns how many it
// expired.
func (s *Server) ExpireTokens() int { return s.tokens.expireAll() }

// RevokeTokens revokes every issued token and returns how many it revoked.
func (s *Server) RevokeTokens() int { return s.tokens.revokeAll() }

// InjectFault arms a fault at run time.
func (s *Server) InjectFault(f Fault) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("zerobustest: %w", err)
	}
	s.faults.add(f)
	s.log.Info("fault armed", "kind", f.Kind, "table", f.Table, "after_records", f.AfterRecords, "times", f.Times)
	return nil
}

// ClearFaults disarms every fault.
func (s *Server) ClearFaults() { s.faults.clear() }

// Faults lists the armed faults, Times holding the firings left.
func (s *Server) Faults() []Fault { return s.faults.snapshot() }

// CreateTable declares a table (catalog.schema.table) with its columns.
// Declaring an existing table with the same columns does nothing.
func (s *Server) CreateTable(name string, cols ...Column) error {
	if err := validTableName(name); err != nil {
		return fmt.Errorf("zerobustest: %w", err)
	}
	if err := s.createTable(canon(name), cols); err != nil {
		return fmt.Errorf("zerobustest: table %s: %w", name, err)
	}
	return nil
}

// errTableExists reports a table declared again with other columns.
var errTableExists = errors.New("table exists with other columns")

func (s *Server) createTable(name string, cols []Column) error {
	lc, err := lakeColumns(cols)
	if err != nil {
		return err
	}
	if s.lake != nil {
		if _, err := s.lake.CreateTable(name, lc); err != nil {
			var se *lake.SchemaError
			if errors.As(err, &se) {
				return fmt.Errorf("%w: %w", errTableExists, err)
			}
			return err
		}
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.declared[name]; ok {
		if !sameColumns(old, cols) {
			return errTableExists
		}
		return nil
	}
	s.declared[name] = append([]Column(nil), cols...)
	return nil
}

func sameColumns(a, b []Column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ta, _ := lake.ParseType(a[i].Type)
		tb, _ := lake.ParseType(b[i].Type)
		if a[i].Name != b[i].Name || a[i].Nullable != b[i].Nullable || !ta.Equal(tb) {
			return false
		}
	}
	return true
}

// tableColumns returns a table's columns, or false if it does not exist.
func (s *Server) tableColumns(name string) ([]lake.Column, bool) {
	if s.lake != nil {
		t, err := s.lake.Table(name)
		if err != nil {
			return nil, false
		}
		return t.Columns(), true
	}
	s.mu.Lock()
	cols, ok := s.declared[name]
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	lc, err := lakeColumns(cols)
	return lc, err == nil
}

// tableExists reports whether a table is known (discard mode: declared).
func (s *Server) tableExists(name string) bool {
	_, ok := s.tableColumns(name)
	return ok
}

// counter returns the counters of a table, creating them.
func (s *Server) counter(table string) *tableCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters[table]
	if c == nil {
		now := time.Now()
		c = &tableCounters{created: now, quota: newQuota(s.cfg.limits.tableQuota, now)}
		s.counters[table] = c
	}
	return c
}

// register lists an open stream in Stats.
func (s *Server) register(c *call) {
	s.mu.Lock()
	s.calls[c] = struct{}{}
	s.mu.Unlock()
}

// unregister moves a stream that ended to the closed streams of Stats.
func (s *Server) unregister(c *call) {
	now := time.Now()
	st := c.sc.stats(now)
	st.Closed = &now
	s.mu.Lock()
	delete(s.calls, c)
	if len(s.closed) == maxClosedStreams {
		s.closed = append(s.closed[:0], s.closed[1:]...)
	}
	s.closed = append(s.closed, st)
	s.mu.Unlock()
}

// throttledFor is the time the stream waited on quotas until now.
func (sc *streamCounters) throttledFor(now time.Time) time.Duration {
	d := time.Duration(sc.throttled.Load())
	if since := sc.waitingSince.Load(); since != 0 {
		d += now.Sub(time.Unix(0, since))
	}
	return d
}

func (sc *streamCounters) stats(now time.Time) StreamStats {
	rps, bps := sc.rate.rates(now, sc.opened)
	return StreamStats{
		StreamID: sc.id, Table: sc.table, Transport: sc.transport, UserAgent: sc.userAgent, Opened: sc.opened,
		RecordsReceived: sc.recordsReceived.Load(), BytesReceived: sc.bytesReceived.Load(),
		RecordsAcked: sc.recordsAcked.Load(), RecordsPerSec: rps, BytesPerSec: bps,
		ThrottledSeconds: sc.throttledFor(now).Seconds(), Throttled: sc.waitingSince.Load() != 0,
		QuotaRejections: sc.rejected.Load(),
	}
}

// Stats counts what the server did since it started.
type Stats struct {
	StreamsOpened       int64 `json:"streams_opened"`
	StreamsActive       int64 `json:"streams_active"`
	RecordsReceived     int64 `json:"records_received"`
	RecordsAcked        int64 `json:"records_acked"`
	RecordsDurable      int64 `json:"records_durable"`
	RecordsMaterialized int64 `json:"records_materialized"`
	FaultsFired         int64 `json:"faults_fired"`
	// TokensGranted counts OAuth tokens issued by the token endpoint.
	TokensGranted int64                 `json:"tokens_granted"`
	Tables        map[string]TableStats `json:"tables"`
	// BytesReceived counts the bytes of well-formed, in-order requests.
	BytesReceived int64 `json:"bytes_received"`
	// Streams lists the open streams and the last 100 that ended, in the
	// order they opened.
	Streams []StreamStats `json:"streams"`
	// Limits are the ack latency and quotas the server applies.
	Limits LimitStats `json:"limits"`
}

// StreamStats counts the traffic of one stream (call). Rates are over the
// last RateWindow (2 s), or since the stream opened when that is later.
type StreamStats struct {
	StreamID string `json:"stream_id"`
	Table    string `json:"table"`
	// Transport is "proto" for an EphemeralStream call and "arrow" for an
	// Arrow Flight DoPut.
	Transport string `json:"transport"`
	// UserAgent is the client's user-agent header.
	UserAgent string     `json:"user_agent"`
	Opened    time.Time  `json:"opened"`
	Closed    *time.Time `json:"closed,omitempty"` // nil while the stream is open
	// RecordsReceived and BytesReceived count the requests taken in.
	RecordsReceived int64 `json:"records_received"`
	BytesReceived   int64 `json:"bytes_received"`
	RecordsAcked    int64 `json:"records_acked"`
	// RecordsPerSec and BytesPerSec are the recent rates of requests taken
	// in.
	RecordsPerSec float64 `json:"records_per_sec"`
	BytesPerSec   float64 `json:"bytes_per_sec"`
	// ThrottledSeconds is the time the server held the stream back because
	// it was over a quota (not reading it); Throttled says it is held now.
	ThrottledSeconds float64 `json:"throttled_seconds"`
	Throttled        bool    `json:"throttled"`
	// QuotaRejections counts requests refused with RESOURCE_EXHAUSTED
	// (QuotaReject).
	QuotaRejections int64 `json:"quota_rejections"`
}

// LimitStats are the limits of the server (see WithProfile).
type LimitStats struct {
	Profile Profile `json:"profile"`
	// AckLatency is the added time to acknowledgement: "0", a fixed
	// duration, or "median=D,p95=D".
	AckLatency          string    `json:"ack_latency"`
	StreamBytesPerSec   int64     `json:"stream_bytes_per_sec"`
	StreamRecordsPerSec int64     `json:"stream_records_per_sec"`
	TableBytesPerSec    int64     `json:"table_bytes_per_sec"`
	TableRecordsPerSec  int64     `json:"table_records_per_sec"`
	QuotaMode           QuotaMode `json:"quota_mode"`
}

// TableStats counts the traffic of one table.
type TableStats struct {
	// StreamsOpened counts calls that passed create_stream.
	StreamsOpened int64 `json:"streams_opened"`
	// RecordsReceived counts records of well-formed, in-order requests.
	RecordsReceived int64 `json:"records_received"`
	// RecordsAcked counts records covered by acknowledgements sent.
	RecordsAcked int64 `json:"records_acked"`
	// RecordsDurable counts records in the table's durable log (0 in
	// discard mode).
	RecordsDurable int64 `json:"records_durable"`
	// RecordsMaterialized counts records written to the Delta table.
	RecordsMaterialized int64 `json:"records_materialized"`
	// FaultsFired counts injected faults that fired on the table.
	FaultsFired int64 `json:"faults_fired"`
	// BytesReceived counts the bytes of well-formed, in-order requests.
	BytesReceived int64 `json:"bytes_received"`
	// RecordsPerSec and BytesPerSec are the table's recent rates (over the
	// last RateWindow).
	RecordsPerSec float64 `json:"records_per_sec"`
	BytesPerSec   float64 `json:"bytes_per_sec"`
	// ThrottledSeconds adds up the time its streams were held back by a
	// quota.
	ThrottledSeconds float64 `json:"throttled_seconds"`
}

// Stats returns the counters of the server and of each table.
func (s *Server) Stats() Stats {
	now := time.Now()
	lim := s.cfg.limits
	st := Stats{StreamsActive: s.streamsActive.Load(), TokensGranted: s.tokensGranted.Load(), Tables: map[string]TableStats{},
		Streams: []StreamStats{},
		Limits: LimitStats{
			Profile: lim.profile, AckLatency: lim.ackLatency.String(),
			StreamBytesPerSec: lim.streamQuota.BytesPerSec, StreamRecordsPerSec: lim.streamQuota.RecordsPerSec,
			TableBytesPerSec: lim.tableQuota.BytesPerSec, TableRecordsPerSec: lim.tableQuota.RecordsPerSec,
			QuotaMode: lim.quotaMode,
		}}
	s.mu.Lock()
	for name, c := range s.counters {
		rps, bps := c.rate.rates(now, c.created)
		st.Tables[name] = TableStats{
			StreamsOpened:    c.streamsOpened.Load(),
			RecordsReceived:  c.recordsReceived.Load(),
			BytesReceived:    c.bytesReceived.Load(),
			RecordsAcked:     c.recordsAcked.Load(),
			FaultsFired:      c.faultsFired.Load(),
			RecordsPerSec:    rps,
			BytesPerSec:      bps,
			ThrottledSeconds: time.Duration(c.throttled.Load()).Seconds(),
		}
	}
	st.Streams = append(st.Streams, s.closed...)
	for c := range s.calls {
		ss := c.sc.stats(now)
		st.Streams = append(st.Streams, ss)
		if since := c.sc.waitingSince.Load(); since != 0 {
			t := st.Tables[c.table]
			t.ThrottledSeconds += now.Sub(time.Unix(0, since)).Seconds()
			st.Tables[c.table] = t
		}
	}
	s.mu.Unlock()
	sort.SliceStable(st.Streams, func(i, j int) bool { return st.Streams[i].Opened.Before(st.Streams[j].Opened) })
	if s.lake != nil {
		for _, t := range s.lake.Tables() {
			ts := st.Tables[t.Name()]
			ls := t.Stats()
			ts.RecordsDurable, ts.RecordsMaterialized = ls.Durable, ls.Materialized
			st.Tables[t.Name()] = ts
		}
	}
	names := make([]string, 0, len(st.Tables))
	for n := range st.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := st.Tables[n]
		st.StreamsOpened += t.StreamsOpened
		st.RecordsReceived += t.RecordsReceived
		st.BytesReceived += t.BytesReceived
		st.RecordsAcked += t.RecordsAcked
		st.RecordsDurable += t.RecordsDurable
		st.RecordsMaterialized += t.RecordsMaterialized
		st.FaultsFired += t.FaultsFired
	}
	return st
}

// Materialize writes every durable record to the Delta tables now (instead
// of waiting for the materialize interval). It does nothing in discard mode.
func (s *Server) Materialize() error {
	if s.lake == nil {
		return nil
	}
	return s.lake.Materialize()
}

// errShuttingDown ends calls when the server shuts down.
var errShuttingDown = status.Error(codes.Unavailable, "server is shutting down")

// Close shuts the server down (see Shutdown), giving open calls at most
// 10 seconds to finish.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown stops accepting connections and calls, lets every open call
// acknowledge what is durable and end with Unavailable, writes the durable
// records to the Delta tables, and returns. When ctx ends first the
// remaining calls are cut off. A temporary data directory is removed.
// Later calls return the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown(ctx) })
	return s.closeErr
}

func (s *Server) shutdown(ctx context.Context) error {
	close(s.closing)
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop() // handlers return as soon as they see closing
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
		<-stopped
	}
	s.readers.Wait() // no reader may append after the storage closes
	herr := s.http.Shutdown(ctx)
	if herr != nil {
		_ = s.http.Close()
	}
	s.serving.Wait()
	var err error
	if s.lake != nil {
		err = s.lake.Close()
	}
	if s.ownDir {
		if rerr := os.RemoveAll(s.dataDir); rerr != nil && err == nil {
			err = rerr
		}
	}
	s.log.Info("zerobus server stopped")
	if err != nil {
		return fmt.Errorf("zerobustest: shutdown: %w", err)
	}
	return nil
}

func (s *Server) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// testHook runs the hook tests install to provoke panics.
func (s *Server) testHook(where string) {
	if h := s.hook.Load(); h != nil {
		(*h)(where)
	}
}
