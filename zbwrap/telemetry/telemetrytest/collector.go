package telemetrytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // accept gzip-compressed gRPC exports
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ErrClosed is returned by WaitFor once the Collector is closed, and by
// exports that were still being delayed when it closed (as Unavailable).
var ErrClosed = errors.New("telemetrytest: collector closed")

// A Signal names one kind of OTLP export.
type Signal string

// The signals a Collector receives.
const (
	SignalMetrics Signal = "metrics"
	SignalTraces  Signal = "traces"
	SignalLogs    Signal = "logs"
)

// closeGrace bounds how long Close lets in-flight exports finish before it
// cuts their connections.
const closeGrace = 5 * time.Second

// An Option configures a Collector made by NewCollector.
type Option func(*config) error

type config struct {
	grpcAddr, httpAddr string
	failure            codes.Code
	delay              time.Duration
	onExport           func(Signal, proto.Message)
}

// WithGRPCAddr sets the address the OTLP/gRPC server listens on.
// Default "127.0.0.1:0" (a loopback port chosen by the OS).
func WithGRPCAddr(addr string) Option {
	return func(c *config) error { c.grpcAddr = addr; return nil }
}

// WithHTTPAddr sets the address the OTLP/HTTP server listens on.
// Default "127.0.0.1:0".
func WithHTTPAddr(addr string) Option {
	return func(c *config) error { c.httpAddr = addr; return nil }
}

// WithFailure makes every export fail with code: gRPC exports get that
// status, HTTP exports the matching HTTP status (see HTTPStatus) with a
// google.rpc.Status body. Failed exports are counted by Requests but not
// stored. codes.OK (the default) accepts exports. Collector.SetFailure
// changes it later.
func WithFailure(code codes.Code) Option {
	return func(c *config) error {
		if code > codes.Unauthenticated {
			return fmt.Errorf("telemetrytest: WithFailure: %d is not a gRPC code", code)
		}
		c.failure = code
		return nil
	}
}

// WithDelay holds every export for d before answering it, or until the
// client gives up or the Collector closes. Default 0. Collector.SetDelay
// changes it later.
func WithDelay(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("telemetrytest: WithDelay: %v is negative", d)
		}
		c.delay = d
		return nil
	}
}

// WithOnExport calls fn with each accepted export request, after it is
// stored and before it is answered: an
// *colmetricspb.ExportMetricsServiceRequest, *coltracepb.ExportTraceServiceRequest
// or *collogspb.ExportLogsServiceRequest. Calls never overlap, so fn needs
// no locking of its own; an export is not answered until fn returns. fn
// must not modify the request.
func WithOnExport(fn func(Signal, proto.Message)) Option {
	return func(c *config) error { c.onExport = fn; return nil }
}

// A Collector is an OTLP receiver on loopback: an OTLP/gRPC server and an
// OTLP/HTTP server, both plaintext, that keep everything they accept. Its
// methods are safe for concurrent use. The messages it returns are shared
// with the Collector and must not be modified.
type Collector struct {
	grpcLis, httpLis net.Listener
	grpcSrv          *grpc.Server
	httpSrv          *http.Server
	onExport         func(Signal, proto.Message)

	done      chan struct{} // closed by Close
	serving   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	hookMu sync.Mutex // serializes onExport

	mu         sync.Mutex
	failure    codes.Code
	delay      time.Duration
	requests   map[Signal]int
	metrics    []*metricspb.ResourceMetrics
	spans      []*tracepb.ResourceSpans
	logRecords int
	serveErr   error
	changed    chan struct{} // closed and replaced whenever something arrives
}

// NewCollector starts a Collector. ctx bounds only the start; Close stops it.
func NewCollector(ctx context.Context, opts ...Option) (*Collector, error) {
	cfg := config{grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0"}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", cfg.grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("telemetrytest: listen for OTLP/gRPC on %q: %w", cfg.grpcAddr, err)
	}
	httpLis, err := lc.Listen(ctx, "tcp", cfg.httpAddr)
	if err != nil {
		grpcLis.Close()
		return nil, fmt.Errorf("telemetrytest: listen for OTLP/HTTP on %q: %w", cfg.httpAddr, err)
	}
	c := &Collector{
		grpcLis:  grpcLis,
		httpLis:  httpLis,
		onExport: cfg.onExport,
		done:     make(chan struct{}),
		failure:  cfg.failure,
		delay:    cfg.delay,
		requests: map[Signal]int{},
		changed:  make(chan struct{}),
	}
	c.grpcSrv = grpc.NewServer(grpc.MaxRecvMsgSize(maxBody))
	colmetricspb.RegisterMetricsServiceServer(c.grpcSrv, metricsService{c: c})
	coltracepb.RegisterTraceServiceServer(c.grpcSrv, traceService{c: c})
	collogspb.RegisterLogsServiceServer(c.grpcSrv, logsService{c: c})
	c.httpSrv = &http.Server{Handler: c.httpHandler(), ReadHeaderTimeout: 10 * time.Second}

	c.serving.Add(2)
	go func() {
		defer c.serving.Done()
		// ErrServerStopped: Close came before Serve started.
		if err := c.grpcSrv.Serve(grpcLis); !errors.Is(err, grpc.ErrServerStopped) {
			c.serveFailed(err)
		}
	}()
	go func() {
		defer c.serving.Done()
		if err := c.httpSrv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			c.serveFailed(err)
		}
	}()
	return c, nil
}

func (c *Collector) serveFailed(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.serveErr == nil {
		c.serveErr = fmt.Errorf("telemetrytest: serve: %w", err)
	}
	c.notifyLocked()
}

// GRPCEndpoint is the OTLP/gRPC address as host:port, for options such as
// otlpmetricgrpc.WithEndpoint (with WithInsecure).
func (c *Collector) GRPCEndpoint() string { return c.grpcLis.Addr().String() }

// GRPCURL is the OTLP/gRPC endpoint as "http://host:port", for
// otlpmetricgrpc.WithEndpointURL or OTEL_EXPORTER_OTLP_ENDPOINT.
func (c *Collector) GRPCURL() string { return "http://" + c.GRPCEndpoint() }

// HTTPURL is the OTLP/HTTP base URL "http://host:port". The server answers
// POST on HTTPURL()+"/v1/metrics", "/v1/traces" and "/v1/logs". It is the
// value for OTEL_EXPORTER_OTLP_ENDPOINT, which appends those paths itself;
// the Go exporters' WithEndpointURL wants the full path.
func (c *Collector) HTTPURL() string { return "http://" + c.httpLis.Addr().String() }

// Close stops both servers and waits for their goroutines. Exports still
// being delayed are answered Unavailable; other in-flight exports get a few
// seconds to finish. What was received stays readable. Close is idempotent.
func (c *Collector) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)

		stopped := make(chan struct{})
		go func() { c.grpcSrv.GracefulStop(); close(stopped) }()
		timer := time.NewTimer(closeGrace)
		defer timer.Stop()
		select {
		case <-stopped:
		case <-timer.C:
			c.grpcSrv.Stop()
			<-stopped
		}

		ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
		defer cancel()
		if err := c.httpSrv.Shutdown(ctx); err != nil {
			c.httpSrv.Close()
		}
		c.serving.Wait()

		c.mu.Lock()
		c.closeErr = c.serveErr
		c.mu.Unlock()
	})
	return c.closeErr
}

// SetFailure changes the failure every export gets from now on; see
// WithFailure. codes.OK accepts exports again.
func (c *Collector) SetFailure(code codes.Code) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failure = code
}

// SetDelay changes how long exports are held from now on; see WithDelay.
func (c *Collector) SetDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delay = d
}

// Requests is how many export requests of signal arrived, accepted or
// failed.
func (c *Collector) Requests(signal Signal) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[signal]
}

// LogRecords is how many log records accepted exports carried. Logs are
// counted, not kept.
func (c *Collector) LogRecords() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logRecords
}

// ResourceMetrics returns every ResourceMetrics accepted, in arrival order.
func (c *Collector) ResourceMetrics() []*metricspb.ResourceMetrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*metricspb.ResourceMetrics(nil), c.metrics...)
}

// ResourceSpans returns every ResourceSpans accepted, in arrival order.
func (c *Collector) ResourceSpans() []*tracepb.ResourceSpans {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*tracepb.ResourceSpans(nil), c.spans...)
}

// Reset forgets everything received and zeroes the request counters.
func (c *Collector) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = map[Signal]int{}
	c.metrics, c.spans, c.logRecords = nil, nil, 0
	c.notifyLocked()
}

// WaitFor returns nil as soon as cond(c) holds. It checks cond now and
// after each export that arrives, so cond may use any of c's methods. It
// returns ctx's error (wrapped) when ctx ends first, and ErrClosed when the
// Collector closes with cond still false.
func (c *Collector) WaitFor(ctx context.Context, cond func(*Collector) bool) error {
	for {
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		if cond(c) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("telemetrytest: WaitFor: %w", ctx.Err())
		case <-c.done:
			if cond(c) {
				return nil
			}
			return ErrClosed
		}
	}
}

func (c *Collector) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// receive handles one export request of either protocol: it counts it,
// holds it for the configured delay, then fails it or stores it. The error
// is a gRPC status error.
func (c *Collector) receive(ctx context.Context, signal Signal, req proto.Message) error {
	c.mu.Lock()
	c.requests[signal]++
	failure, delay := c.failure, c.delay
	c.notifyLocked()
	c.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-c.done:
			return status.Error(codes.Unavailable, ErrClosed.Error())
		}
	}
	if failure != codes.OK {
		return status.Errorf(failure, "telemetrytest: injected failure %v", failure)
	}

	c.mu.Lock()
	switch r := req.(type) {
	case *colmetricspb.ExportMetricsServiceRequest:
		c.metrics = append(c.metrics, r.GetResourceMetrics()...)
	case *coltracepb.ExportTraceServiceRequest:
		c.spans = append(c.spans, r.GetResourceSpans()...)
	case *collogspb.ExportLogsServiceRequest:
		for _, rl := range r.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				c.logRecords += len(sl.GetLogRecords())
			}
		}
	}
	c.notifyLocked()
	c.mu.Unlock()

	if c.onExport != nil {
		c.hookMu.Lock()
		defer c.hookMu.Unlock()
		c.onExport(signal, req)
	}
	return nil
}
