package e2e

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/zbwrap"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

func TestHappyPath(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t)
	w := connect(t, srv)
	l := newLedger()
	for range 10 {
		if err := l.send(context.Background(), t, w, 500); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := tableIDs(t, srv)
	verify(t, l, ids, w.Stats())
	if len(ids) != 5000 {
		t.Fatalf("table holds %d rows, want 5000", len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("row %d stored %d times without any failure", id, n)
		}
	}
}

// Fifty goroutines send at once, half with SendBatch, half with
// SendBatchAsync; their batches pipeline on one stream.
func TestFiftyConcurrentSenders(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t)
	w := connect(t, srv)
	l := newLedger()
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			for range 4 {
				if g%2 == 0 {
					if err := l.send(context.Background(), t, w, 100); err != nil {
						t.Error(err)
					}
					continue
				}
				first := l.ids(100)
				rec := batch(first, 100)
				off, err := w.SendBatchAsync(context.Background(), rec)
				rec.Release()
				if err != nil {
					t.Error(err)
					continue
				}
				err = w.WaitForOffset(context.Background(), off)
				var e *zbwrap.Error
				if errors.As(err, &e) && e.Result != nil {
					t.Errorf("async batch failed: %v", err)
				}
				l.record(t, first, 100, &zbwrap.TransmissionResult{Success: true, TotalRows: 100, SuccessfulCount: 100,
					SuccessfulRows: seq(100)}, nil)
			}
		})
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := tableIDs(t, srv)
	verify(t, l, ids, w.Stats())
	if ack, _, _ := l.count(); ack != 20000 || len(ids) != 20000 {
		t.Fatalf("%d acked, %d in the table, want 20000", ack, len(ids))
	}
	if st := w.Stats(); st.CallsOpened != 1 || st.Streams != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// run sends batches from several goroutines until each has sent its share.
func run(t *testing.T, w *zbwrap.Wrapper, l *ledger, senders, batches, rows int) {
	t.Helper()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for range batches {
				_ = l.send(context.Background(), t, w, rows)
			}
		})
	}
	wg.Wait()
}

// Every fault the server can inject: the engine recovers, and every row is
// acknowledged and stored (duplicates only from replay).
func TestRecoversFromEveryFault(t *testing.T) {
	// Counters every case must reach (call failures, open failures, close
	// signals): proof that the fault took the path it is meant to.
	type want struct{ callFailures, openFailures, closeSignals int64 }
	tests := []struct {
		name   string
		faults []zerobustest.Fault
		opts   []zbwrap.Option
		want   want
	}{
		{"create fails", []zerobustest.Fault{{Kind: zerobustest.FaultFailCreate, Code: codes.Unavailable, Times: 3}}, nil, want{0, 3, 0}},
		{"call fails Unavailable", []zerobustest.Fault{{Kind: zerobustest.FaultFailCall, Code: codes.Unavailable, AfterRecords: 900, Times: 3}}, nil, want{3, 0, 0}},
		{"call fails Internal", []zerobustest.Fault{{Kind: zerobustest.FaultFailCall, Code: codes.Internal, AfterRecords: 700}}, nil, want{1, 0, 0}},
		{"call fails ResourceExhausted", []zerobustest.Fault{{Kind: zerobustest.FaultFailCall, Code: codes.ResourceExhausted, AfterRecords: 700}}, nil, want{1, 0, 0}},
		{"call ends without signal", []zerobustest.Fault{{Kind: zerobustest.FaultEndCall, AfterRecords: 1200, Times: 2}}, nil, want{2, 0, 0}},
		{"close signal", []zerobustest.Fault{{Kind: zerobustest.FaultEndCall, Signal: true, SignalDuration: 300 * time.Millisecond, AfterRecords: 1000, Times: 2}}, nil, want{0, 0, 2}},
		{"close signal, short duration", []zerobustest.Fault{{Kind: zerobustest.FaultEndCall, Signal: true, AfterRecords: 1000}}, nil, want{0, 0, 1}},
		{"acks delayed", []zerobustest.Fault{{Kind: zerobustest.FaultDelayAcks, Delay: 100 * time.Millisecond, AfterRecords: 500}}, nil, want{0, 0, 0}},
		{"acks stop", []zerobustest.Fault{{Kind: zerobustest.FaultStopAcks, AfterRecords: 1000}}, []zbwrap.Option{zbwrap.WithAckTimeout(300 * time.Millisecond)}, want{1, 0, 0}},
		{"connection dropped", []zerobustest.Fault{{Kind: zerobustest.FaultDropConnection, AfterRecords: 1300, Times: 2}}, nil, want{2, 0, 0}},
		{"tokens expire, then the call fails", []zerobustest.Fault{
			{Kind: zerobustest.FaultExpireTokens, AfterRecords: 500},
			{Kind: zerobustest.FaultFailCall, Code: codes.Unavailable, AfterRecords: 1500},
		}, nil, want{1, 1, 0}}, // the cached token is refused once: one forced refresh
		{"tokens revoked, then the connection drops", []zerobustest.Fault{
			{Kind: zerobustest.FaultRevokeTokens, AfterRecords: 500},
			{Kind: zerobustest.FaultDropConnection, AfterRecords: 1500},
		}, nil, want{1, 1, 0}},
		{"call fails Unauthenticated", []zerobustest.Fault{{Kind: zerobustest.FaultFailCall, Code: codes.Unauthenticated, AfterRecords: 1000}}, nil, want{1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			var opts []zerobustest.Option
			for _, f := range tt.faults {
				opts = append(opts, zerobustest.WithFault(f))
			}
			srv := startServer(t, opts...)
			w := connect(t, srv, tt.opts...)
			l := newLedger()
			run(t, w, l, 8, 5, 100)
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			st := w.Stats()
			if ack, not, maybe := l.count(); ack != 4000 {
				t.Fatalf("%d acked, %d failed, %d failed maybe landed; want all 4000 acked: %v", ack, not, maybe, l.errs)
			}
			if srv.Stats().FaultsFired == 0 {
				t.Fatal("the fault never fired")
			}
			if st.CallFailures < tt.want.callFailures || st.OpenFailures < tt.want.openFailures || st.CloseSignals < tt.want.closeSignals {
				t.Fatalf("stats %+v, want at least %+v", st, tt.want)
			}
			if tt.want.callFailures > 0 && st.ReplayedRequests == 0 {
				t.Fatalf("calls failed with requests in flight but nothing was replayed: %+v", st)
			}
			verify(t, l, tableIDs(t, srv), st)
		})
	}
}

// Fatal codes stop at once with the right kind, and the contract holds for
// the rows already sent.
func TestFatalErrors(t *testing.T) {
	tests := []struct {
		name  string
		fault zerobustest.Fault
		kind  zbwrap.Kind
		code  codes.Code
	}{
		{"InvalidArgument", zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.InvalidArgument, AfterRecords: 1000}, zbwrap.KindTransmission, codes.InvalidArgument},
		{"OutOfRange", zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.OutOfRange, AfterRecords: 1000}, zbwrap.KindTransmission, codes.OutOfRange},
		{"Unimplemented", zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: codes.Unimplemented}, zbwrap.KindTransmission, codes.Unimplemented},
		{"NotFound", zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: codes.NotFound}, zbwrap.KindConfiguration, codes.NotFound},
		{"PermissionDenied", zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.PermissionDenied, AfterRecords: 1000}, zbwrap.KindAuthentication, codes.PermissionDenied},
		{"Unauthenticated twice", zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: codes.Unauthenticated, Times: 2}, zbwrap.KindAuthentication, codes.Unauthenticated},
		{"Unavailable forever", zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: codes.Unavailable, Times: -1}, zbwrap.KindRetryExhausted, codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			srv := startServer(t, zerobustest.WithFault(tt.fault))
			w := connect(t, srv, zbwrap.WithRetryMaxAttempts(3))
			l := newLedger()
			var first error
			for range 4 {
				if err := l.send(context.Background(), t, w, 500); err != nil && first == nil {
					first = err
				}
			}
			if kindOf(first) != tt.kind || status.Code(first) != tt.code || zbwrap.IsRetryable(first) {
				t.Fatalf("first error %v: kind %v code %v retryable %v; want %v %v not retryable",
					first, kindOf(first), status.Code(first), zbwrap.IsRetryable(first), tt.kind, tt.code)
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			verify(t, l, tableIDsOrNone(t, srv), w.Stats())
		})
	}
}

// tableIDsOrNone is tableIDs, empty when no table was created.
func tableIDsOrNone(t *testing.T, srv *zerobustest.Server) map[int64]int {
	if srv.Stats().Tables[table].RecordsDurable == 0 {
		return map[int64]int{}
	}
	return tableIDs(t, srv)
}

// countingTransport counts token requests.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// Tokens live 1 s while the run lasts several: the engine refreshes ahead of
// expiry and every reconnection presents a valid token.
func TestTokenExpiryMidRun(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t,
		zerobustest.WithTokenTTL(time.Second),
		zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultEndCall, Signal: true, SignalDuration: 50 * time.Millisecond, AfterRecords: 2000, Times: -1}))
	var tr countingTransport
	w := connect(t, srv, zbwrap.WithHTTPClient(&http.Client{Transport: &tr}))
	l := newLedger()
	deadline := time.Now().Add(2500 * time.Millisecond)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				_ = l.send(context.Background(), t, w, 200)
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, not, maybe := l.count(); not+maybe != 0 {
		t.Fatalf("%d rows failed: %v", not+maybe, l.errs)
	}
	if tr.n.Load() < 3 || w.Stats().CloseSignals < 2 {
		t.Fatalf("%d token requests, %d close signals over a 2.5 s run of 1 s tokens", tr.n.Load(), w.Stats().CloseSignals)
	}
	verify(t, l, tableIDs(t, srv), w.Stats())
}

// Senders whose contexts end mid-flight: each row is acknowledged, or
// failed; a failed row that never reached the server is not stored.
func TestContextCancel(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultDelayAcks, Delay: 30 * time.Millisecond}))
	// One stream: the delayed acknowledgements are one call's.
	w := connect(t, srv, zbwrap.WithMaxInflightRecords(500), zbwrap.WithStreams(1))
	l := newLedger()
	var canceled atomic.Int64
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := range 10 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(5+(g*7+i*3)%40)*time.Millisecond)
				err := l.send(ctx, t, w, 100)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					canceled.Add(1)
					if !errors.Is(err, zbwrap.ErrTransmission) || !zbwrap.IsRetryable(err) {
						t.Errorf("cancelled send: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, not, maybe := l.count()
	if canceled.Load() == 0 || not == 0 {
		t.Fatalf("no send was cut short (%d cancelled, %d never landed, %d maybe)", canceled.Load(), not, maybe)
	}
	verify(t, l, tableIDs(t, srv), w.Stats())
}

// Close while sends are in flight: every send resolves, nothing hangs.
func TestCloseWhileSending(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultDelayAcks, Delay: 200 * time.Millisecond}))
	// One stream: the delayed acknowledgements are one call's (with auto, a
	// pressed stream opens another, which acknowledges at once).
	w := connect(t, srv, zbwrap.WithFlushTimeout(100*time.Millisecond), zbwrap.WithMaxInflightRecords(2000), zbwrap.WithStreams(1))
	l := newLedger()
	var amu sync.Mutex
	async := map[int64]int64{} // offset -> first row id
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if g%4 != 0 {
					err := l.send(context.Background(), t, w, 50)
					var e *zbwrap.Error
					if errors.As(err, &e) && e.Result == nil && errors.Is(err, zbwrap.ErrClosed) {
						return // refused after Close
					}
					continue
				}
				first := l.ids(50)
				rec := batch(first, 50)
				off, err := w.SendBatchAsync(context.Background(), rec)
				rec.Release()
				if off < 0 {
					// Nothing was queued.
					l.record(t, first, 50, nil, err)
					if errors.Is(err, zbwrap.ErrClosed) {
						return
					}
					continue
				}
				amu.Lock()
				async[off] = first
				amu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	// One async batch queued just before Close: its acknowledgement comes
	// 200 ms after it arrives, past Close's 100 ms, so Close must cut it
	// short (the senders' own async batches may all be acknowledged by then).
	first := l.ids(50)
	rec := batch(first, 50)
	off, err := w.SendBatchAsync(context.Background(), rec)
	rec.Release()
	if err != nil {
		t.Fatalf("SendBatchAsync before Close: %v", err)
	}
	amu.Lock()
	async[off] = first
	amu.Unlock()
	done := make(chan error, 1)
	go func() { done <- w.Close(context.Background()) }()
	var closeErr error
	select {
	case closeErr = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Close hung")
	}
	close(stop)
	wg.Wait()
	if !errors.Is(closeErr, zbwrap.ErrClosed) {
		t.Fatalf("Close with unacknowledged rows: %v", closeErr)
	}
	// Close reported the failed async batches; the others were acknowledged.
	// They are joined errors within Close's joined error: walk the whole tree
	// (errors.As would stop at the first of a nested join).
	failed := map[int64]*zbwrap.TransmissionResult{}
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*zbwrap.Error); ok && e.Result != nil {
			failed[e.Result.Offset] = e.Result
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, err := range u.Unwrap() {
				walk(err)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(closeErr)
	for off, first := range async {
		if res, ok := failed[off]; ok {
			l.record(t, first, 50, res, res.Error)
		} else {
			l.record(t, first, 50, &zbwrap.TransmissionResult{Success: true, TotalRows: 50, SuccessfulCount: 50, SuccessfulRows: seq(50)}, nil)
		}
	}
	if len(failed) == 0 {
		t.Fatal("no async batch was cut short by Close")
	}
	verify(t, l, tableIDs(t, srv), w.Stats())
}

// The server is stopped mid-run and a new one started on the same data
// directory and ports: the engine reconnects and replays.
func TestServerRestart(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	grpcAddr, httpAddr := freePort(t), freePort(t)
	opts := []zerobustest.Option{zerobustest.WithDataDir(dir), zerobustest.WithListen(grpcAddr, httpAddr)}
	srv := startServer(t, opts...)
	w := connect(t, srv, zbwrap.WithRetryMaxAttempts(30), zbwrap.WithRetryBaseDelay(20*time.Millisecond),
		zbwrap.WithRetryMaxDelay(200*time.Millisecond))
	l := newLedger()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = l.send(context.Background(), t, w, 100)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	srv2 := startServer(t, opts...)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ack, not, maybe := l.count()
	if not+maybe != 0 {
		t.Fatalf("%d rows failed across the restart: %v", not+maybe, l.errs)
	}
	st := w.Stats()
	if st.CallsOpened < 2 || ack == 0 {
		t.Fatalf("stats %+v, %d acked", st, ack)
	}
	verify(t, l, tableIDs(t, srv2), st)
}

// freePort returns a loopback address with a free port.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
