package stream

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

func TestSendAcknowledged(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	cfg, _ := fastConfig(t, srv)
	s := newStream(t, dial(t, srv), cfg)
	all := sendMany(t, s, 4, 5, 100, 20)
	for _, outs := range all {
		allAcked(t, outs)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	testutil.Require(t, "stats", testutil.Want("RecordsAcked", st.RecordsAcked, 2000), testutil.Want("RequestsAcked", st.RequestsAcked, 20), testutil.Want("Opens", st.Opens, 1))
	if got := srv.Stats().Tables[testTable].RecordsDurable; got != 2000 {
		t.Fatalf("server holds %d durable records, want 2000", got)
	}
}

func TestFaultsRecovered(t *testing.T) {
	tests := []struct {
		name  string
		fault zerobustest.Fault
		cfg   func(*Config)
		// check inspects the stream's counters after every record is acked.
		check func(t *testing.T, st Stats)
	}{
		{
			name:  "create fails twice with Unavailable",
			fault: zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: codes.Unavailable, Times: 2},
			check: func(t *testing.T, st Stats) {
				if st.OpenFailures != 2 || st.Opens != 1 {
					t.Errorf("open failures %d opens %d, want 2 and 1", st.OpenFailures, st.Opens)
				}
			},
		},
		{
			name:  "call fails with Unavailable mid-stream",
			fault: zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.Unavailable, AfterRecords: 450},
			check: func(t *testing.T, st Stats) {
				if st.CallFailures != 1 || st.Opens != 2 {
					t.Errorf("call failures %d opens %d, want 1 and 2", st.CallFailures, st.Opens)
				}
			},
		},
		{
			name:  "call fails with Internal twice",
			fault: zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.Internal, AfterRecords: 100, Times: 2},
			check: func(t *testing.T, st Stats) {
				if st.CallFailures != 2 {
					t.Errorf("call failures %d, want 2", st.CallFailures)
				}
			},
		},
		{
			name:  "server ends the call with OK while requests are in flight",
			fault: zerobustest.Fault{Kind: zerobustest.FaultEndCall, AfterRecords: 250},
			check: func(t *testing.T, st Stats) {
				if st.CallFailures != 1 {
					t.Errorf("call failures %d, want 1", st.CallFailures)
				}
			},
		},
		{
			name:  "close signal",
			fault: zerobustest.Fault{Kind: zerobustest.FaultEndCall, Signal: true, SignalDuration: 200 * time.Millisecond, AfterRecords: 250},
			check: func(t *testing.T, st Stats) {
				if st.CloseSignals != 1 || st.CallFailures != 0 || st.Opens < 2 {
					t.Errorf("close signals %d, call failures %d, opens %d; want 1, 0, >= 2", st.CloseSignals, st.CallFailures, st.Opens)
				}
			},
		},
		{
			name:  "acks stop",
			fault: zerobustest.Fault{Kind: zerobustest.FaultStopAcks, AfterRecords: 300},
			cfg:   func(c *Config) { c.AckTimeout = 300 * time.Millisecond },
			check: func(t *testing.T, st Stats) {
				if st.CallFailures != 1 || st.ReplayedRequests == 0 {
					t.Errorf("call failures %d replayed %d, want 1 and > 0", st.CallFailures, st.ReplayedRequests)
				}
			},
		},
		{
			name:  "acks delayed",
			fault: zerobustest.Fault{Kind: zerobustest.FaultDelayAcks, Delay: 50 * time.Millisecond, AfterRecords: 100},
			check: func(t *testing.T, st Stats) {
				if st.CallFailures != 0 {
					t.Errorf("call failures %d, want 0", st.CallFailures)
				}
			},
		},
		{
			name:  "connection dropped mid-batch",
			fault: zerobustest.Fault{Kind: zerobustest.FaultDropConnection, AfterRecords: 350},
			check: func(t *testing.T, st Stats) {
				if st.CallFailures != 1 {
					t.Errorf("call failures %d, want 1", st.CallFailures)
				}
			},
		},
		{
			name:  "tokens expire mid-stream",
			fault: zerobustest.Fault{Kind: zerobustest.FaultExpireTokens, AfterRecords: 100},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			srv := newServer(t, zerobustest.WithFault(tt.fault))
			cfg, _ := fastConfig(t, srv)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			s := newStream(t, dial(t, srv), cfg)
			all := sendMany(t, s, 4, 5, 50, 20)
			for _, outs := range all {
				allAcked(t, outs)
			}
			st := s.Stats()
			if st.RecordsAcked != 1000 {
				t.Fatalf("acked %d records, want 1000", st.RecordsAcked)
			}
			if tt.check != nil {
				tt.check(t, st)
			}
			// At-least-once: the server holds every record; the extra ones
			// come only from replayed requests.
			durable := srv.Stats().Tables[testTable].RecordsDurable
			if durable < 1000 || durable-1000 > st.ReplayedRecords {
				t.Fatalf("server holds %d records for 1000 acked with %d replayed", durable, st.ReplayedRecords)
			}
		})
	}
}

func TestFatalCodes(t *testing.T) {
	tests := []struct {
		code codes.Code
		kind Kind
	}{
		{codes.InvalidArgument, KindTransmission},
		{codes.OutOfRange, KindTransmission},
		{codes.Unimplemented, KindTransmission},
		{codes.NotFound, KindConfiguration},
		{codes.PermissionDenied, KindAuthentication},
	}
	for _, tt := range tests {
		for _, where := range []zerobustest.FaultKind{zerobustest.FaultFailCreate, zerobustest.FaultFailCall} {
			t.Run(tt.code.String()+"/"+string(where), func(t *testing.T) {
				checkLeaks(t)
				srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: where, Code: tt.code, AfterRecords: 100}))
				cfg, _ := fastConfig(t, srv)
				s := newStream(t, dial(t, srv), cfg)
				outs := waitBatch(t, mustSend(t, s, records(0, 300, 10)))
				var failed int
				for _, o := range outs {
					if o.Err == nil {
						continue
					}
					failed += o.End - o.Start
					if kindOf(o.Err) != tt.kind || o.Err.(*Error).Retryable {
						t.Errorf("error %v: kind %v retryable %v, want %v and not retryable", o.Err, kindOf(o.Err), o.Err.(*Error).Retryable, tt.kind)
					}
					if st, _ := status.FromError(o.Err); st.Code() != tt.code {
						t.Errorf("status code %v, want %v", st.Code(), tt.code)
					}
					if where == zerobustest.FaultFailCreate && o.MayHaveLanded {
						t.Errorf("records [%d,%d) never written but MayHaveLanded", o.Start, o.End)
					}
					// A rejected request was not ingested (the call failed at
					// it); other fatal codes leave what was written in doubt.
					rejected := where == zerobustest.FaultFailCall && tt.kind == KindTransmission
					if where == zerobustest.FaultFailCall && o.MayHaveLanded == rejected {
						t.Errorf("records [%d,%d) written on the failed call: MayHaveLanded %v", o.Start, o.End, o.MayHaveLanded)
					}
				}
				if failed != 300 {
					t.Fatalf("%d records failed, want all 300", failed)
				}
				if s.Stats().Opens > 1 || s.Stats().OpenFailures > 1 {
					t.Errorf("a fatal code was retried: %+v", s.Stats())
				}
				if where == zerobustest.FaultFailCall && tt.kind == KindTransmission {
					// A rejection fails its request, not the stream.
					if s.Err() != nil {
						t.Errorf("stream error %v after a rejected request", s.Err())
					}
					allAcked(t, waitBatch(t, mustSend(t, s, records(0, 1, 1))))
					return
				}
				if kindOf(s.Err()) != tt.kind {
					t.Errorf("stream error %v", s.Err())
				}
				if _, err := s.Send(context.Background(), records(0, 1, 1), nil); kindOf(err) != tt.kind {
					t.Errorf("send after a fatal error: %v, want the stream's error", err)
				}
			})
		}
	}
}

func TestUnauthenticatedGetsOneForcedRefresh(t *testing.T) {
	t.Run("refresh succeeds", func(t *testing.T) {
		checkLeaks(t)
		srv := newServer(t)
		cfg, h := fastConfig(t, srv)
		h.bad.Store(1)
		s := newStream(t, dial(t, srv), cfg)
		allAcked(t, waitBatch(t, mustSend(t, s, records(0, 10, 10))))
		if h.refreshes.Load() != 1 || h.calls.Load() != 2 {
			t.Fatalf("header calls %d refreshes %d, want 2 and 1", h.calls.Load(), h.refreshes.Load())
		}
	})
	t.Run("refreshed token refused too", func(t *testing.T) {
		checkLeaks(t)
		srv := newServer(t)
		cfg, h := fastConfig(t, srv)
		h.bad.Store(2)
		s := newStream(t, dial(t, srv), cfg)
		outs := waitBatch(t, mustSend(t, s, records(0, 10, 10)))
		if len(outs) != 1 || kindOf(outs[0].Err) != KindAuthentication || status.Code(outs[0].Err) != codes.Unauthenticated {
			t.Fatalf("outcomes %+v, want one Unauthenticated authentication failure", outs)
		}
		if h.calls.Load() != 2 {
			t.Fatalf("header calls %d, want 2 (one forced refresh, no more)", h.calls.Load())
		}
	})
	t.Run("mid-call", func(t *testing.T) {
		checkLeaks(t)
		srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.Unauthenticated, AfterRecords: 50}))
		cfg, h := fastConfig(t, srv)
		s := newStream(t, dial(t, srv), cfg)
		for i := range 4 {
			allAcked(t, waitBatch(t, mustSend(t, s, records(i*40, 40, 10))))
		}
		if h.refreshes.Load() != 1 {
			t.Fatalf("refreshes %d, want 1", h.refreshes.Load())
		}
	})
}

// retryableErr is a header failure that may pass later.
type retryableErr struct{}

func (retryableErr) Error() string   { return "token endpoint unavailable" }
func (retryableErr) Retryable() bool { return true }

func TestHeaderFailures(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind Kind
	}{
		{"final", errors.New("bad credentials"), KindAuthentication},
		{"retryable until exhausted", retryableErr{}, KindRetryExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			srv := newServer(t)
			cfg, h := fastConfig(t, srv)
			cfg.MaxAttempts = 2
			h.err = tt.err
			s := newStream(t, dial(t, srv), cfg)
			outs := waitBatch(t, mustSend(t, s, records(0, 10, 10)))
			if kindOf(outs[0].Err) != tt.kind || !errors.Is(outs[0].Err, tt.err) {
				t.Fatalf("outcome %v, want kind %v wrapping %v", outs[0].Err, tt.kind, tt.err)
			}
			if srv.Stats().StreamsOpened != 0 {
				t.Fatal("a call opened without headers")
			}
		})
	}
}

func TestRetryExhausted(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: codes.Unavailable, Times: -1}))
	cfg, _ := fastConfig(t, srv)
	cfg.MaxAttempts = 3
	var hook countingHook
	cfg.Hooks = []any{&hook}
	s := newStream(t, dial(t, srv), cfg)
	outs := waitBatch(t, mustSend(t, s, records(0, 10, 10)))
	err := outs[0].Err
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindRetryExhausted || e.Retryable || status.Code(err) != codes.Unavailable || outs[0].MayHaveLanded {
		t.Fatalf("outcome %+v, want RetryExhausted with code Unavailable, never landed", outs[0])
	}
	if got := s.Stats().OpenFailures; got != 4 {
		t.Fatalf("open failures %d, want 4 (first try + 3 attempts)", got)
	}
	if hook.retries.Load() != 3 {
		t.Fatalf("retry hook saw %d, want 3", hook.retries.Load())
	}
}

func TestRecoveryDisabled(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.Unavailable, AfterRecords: 100}))
	cfg, _ := fastConfig(t, srv)
	cfg.DisableRecovery = true
	s := newStream(t, dial(t, srv), cfg)
	first := waitBatch(t, mustSend(t, s, records(0, 100, 10)))
	allAcked(t, first)
	outs := waitBatch(t, mustSend(t, s, records(100, 100, 10)))
	var e *Error
	if !errors.As(outs[0].Err, &e) || e.Kind != KindConnection || !e.Retryable || !outs[0].MayHaveLanded {
		t.Fatalf("outcome %+v, want a retryable connection failure that may have landed", outs[0])
	}
	if s.Stats().Opens != 1 {
		t.Fatal("reconnected with recovery disabled")
	}
}

func TestCreateTimeout(t *testing.T) {
	checkLeaks(t)
	// A TCP endpoint that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	s := newStream(t, cc, Config{Table: testTable, Descriptor: descriptor(t), CreateTimeout: 100 * time.Millisecond,
		MaxAttempts: 1, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond})
	outs := waitBatch(t, mustSend(t, s, records(0, 1, 1)))
	if kindOf(outs[0].Err) != KindRetryExhausted || !errors.Is(outs[0].Err, context.DeadlineExceeded) {
		t.Fatalf("outcome %v, want retry exhausted after creation timeouts", outs[0].Err)
	}
}

func TestSplitsUnderTheRequestLimit(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	cfg, _ := fastConfig(t, srv)
	cfg.MaxRequestBytes = 1000
	s := newStream(t, dial(t, srv), cfg)
	recs := records(0, 50, 100)
	big := records(50, 1, 2000)[0]
	recs = append(recs[:20:20], append([][]byte{big}, recs[20:]...)...)
	outs := waitBatch(t, mustSend(t, s, recs))
	next := 0
	failed := 0
	for _, o := range outs {
		if o.Start != next || o.End <= o.Start {
			t.Fatalf("outcomes not contiguous: %+v", outs)
		}
		next = o.End
		size := 0
		for _, r := range recs[o.Start:o.End] {
			size += recordWireSize(len(r))
		}
		if o.Err != nil {
			failed++
			if o.Start != 20 || o.End != 21 || !errors.Is(o.Err, ErrTooLarge) || o.MayHaveLanded {
				t.Fatalf("unexpected failure %+v", o)
			}
			continue
		}
		if size+requestOverhead > cfg.MaxRequestBytes {
			t.Fatalf("request [%d,%d) is %d bytes, over %d", o.Start, o.End, size, cfg.MaxRequestBytes)
		}
	}
	if next != len(recs) || failed != 1 || len(outs) < 6 {
		t.Fatalf("%d outcomes covering %d records with %d failures", len(outs), next, failed)
	}
	if got := s.Stats().RecordsAcked; got != 50 {
		t.Fatalf("acked %d, want 50", got)
	}
}

func TestEmptySend(t *testing.T) {
	s := New(nil, Config{})
	b, err := s.Send(context.Background(), nil, nil)
	if err != nil || len(b.Outcomes()) != 0 {
		t.Fatalf("empty send: %v %v", err, b.Outcomes())
	}
	select {
	case <-b.Done():
	default:
		t.Fatal("empty batch not done")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWindow(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	cfg, _ := fastConfig(t, srv)
	cfg.MaxInflightRecords = 100
	cfg.AckTimeout = time.Minute
	s := newStream(t, dial(t, srv), cfg)
	first := mustSend(t, s, records(0, 100, 10)) // fills the window
	testutil.Eventually(t, "the first request to be written", func() bool { return s.Stats().RequestsWritten == 1 })

	if _, err := s.TrySend(records(100, 1, 10), nil); !errors.Is(err, ErrWindowFull) || !err.(*Error).Retryable {
		t.Fatalf("TrySend on a full window: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	b, err := s.Send(ctx, records(100, 10, 10), nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send on a full window: %v", err)
	}
	outs := waitBatch(t, b)
	if len(outs) != 1 || outs[0].Offset != -1 || outs[0].MayHaveLanded || !errors.Is(outs[0].Err, context.DeadlineExceeded) {
		t.Fatalf("outcomes %+v", outs)
	}

	// A send blocked on the window fails when Close begins.
	blocked := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), records(200, 10, 10), nil)
		blocked <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Close: %v", err)
	}
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Send: %v", err)
	}
	outs = waitBatch(t, first)
	if !errors.Is(outs[0].Err, ErrClosed) || !outs[0].MayHaveLanded || outs[0].Attempts != 1 {
		t.Fatalf("in-flight request at Close: %+v", outs[0])
	}
	if _, err := s.Send(context.Background(), records(0, 1, 1), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestCloseHalfClosesTheCall(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	cfg, _ := fastConfig(t, srv)
	s := New(dial(t, srv), cfg)
	b := mustSend(t, s, records(0, 100, 10))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	allAcked(t, b.Outcomes())
	testutil.Eventually(t, "the server to end the call", func() bool { return srv.Stats().StreamsActive == 0 })
	if s.Stats().CallFailures != 0 {
		t.Fatalf("the call ended with an error: %+v", s.Stats())
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if s.ServerStreamID() == "" {
		t.Fatal("no server stream id")
	}
}

func TestAbandon(t *testing.T) {
	t.Run("never written", func(t *testing.T) {
		checkLeaks(t)
		srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: codes.Unavailable, Times: -1}))
		cfg, _ := fastConfig(t, srv)
		cfg.BaseDelay, cfg.MaxDelay = time.Second, time.Second
		s := newStream(t, dial(t, srv), cfg)
		b := mustSend(t, s, records(0, 10, 10))
		b.Abandon(context.Canceled)
		outs := waitBatch(t, b)
		if !errors.Is(outs[0].Err, ErrAbandoned) || !errors.Is(outs[0].Err, context.Canceled) || outs[0].MayHaveLanded {
			t.Fatalf("outcome %+v", outs[0])
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatalf("Flush after the only request was withdrawn: %v", err)
		}
	})
	t.Run("written stays until its call ends", func(t *testing.T) {
		checkLeaks(t)
		srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
		cfg, _ := fastConfig(t, srv)
		cfg.AckTimeout = 30 * time.Second
		s := newStream(t, dial(t, srv), cfg)
		b := mustSend(t, s, records(0, 10, 10))
		testutil.Eventually(t, "the request to be written", func() bool { return s.Stats().RequestsWritten > 0 })
		b.Abandon(context.Canceled)
		outs := b.Outcomes()
		if !outs[0].Pending || !outs[0].MayHaveLanded || !errors.Is(outs[0].Err, ErrPending) {
			t.Fatalf("outcome after abandon: %+v", outs[0])
		}
		// The stalled call ends long before the ack timeout; the abandoned
		// request fails there, the one behind it goes on a new call.
		start := time.Now()
		next := mustSend(t, s, records(10, 10, 10))
		outs = waitBatch(t, b)
		if !errors.Is(outs[0].Err, ErrPending) || !errors.Is(outs[0].Err, context.Canceled) || !outs[0].MayHaveLanded || outs[0].Pending {
			t.Fatalf("abandoned outcome: %+v", outs[0])
		}
		allAcked(t, waitBatch(t, next))
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("the request behind an abandoned one took %s", d)
		}
		st := s.Stats() // only the live request is written again
		testutil.Require(t, "stats", testutil.Want("ReplayedRequests", st.ReplayedRequests, 1), testutil.Want("RequestsFailed", st.RequestsFailed, 1), testutil.Want("Opens", st.Opens, 2))
	})
	t.Run("written on a call that ended", func(t *testing.T) {
		checkLeaks(t)
		srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
		cfg, _ := fastConfig(t, srv)
		cfg.AckTimeout = 100 * time.Millisecond
		cfg.BaseDelay, cfg.MaxDelay = time.Minute, time.Minute
		s := newStream(t, dial(t, srv), cfg)
		b := mustSend(t, s, records(0, 10, 10))
		testutil.Eventually(t, "the call to fail", func() bool { return s.Stats().CallFailures > 0 })
		b.Abandon(context.Canceled)
		outs := b.Outcomes()
		if outs[0].Pending || !outs[0].MayHaveLanded || !errors.Is(outs[0].Err, ErrPending) {
			t.Fatalf("outcome after abandon between calls: %+v", outs[0])
		}
	})
}

func TestFlushBounds(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	cfg, _ := fastConfig(t, srv)
	cfg.AckTimeout = time.Minute
	cfg.FlushTimeout = 50 * time.Millisecond
	s := newStream(t, dial(t, srv), cfg)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush of nothing: %v", err)
	}
	mustSend(t, s, records(0, 10, 10))
	if err := s.Flush(context.Background()); !errors.Is(err, context.DeadlineExceeded) || kindOf(err) != KindTransmission {
		t.Fatalf("Flush past its timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush with a cancelled context: %v", err)
	}
}

// countingHook implements every hook.
type countingHook struct {
	opened, ended, written, acked, retries   atomic.Int64
	reqAcked, reqAckedRecords, reqAckedBytes atomic.Int64
	slowest                                  atomic.Int64 // ns
}

func (h *countingHook) OnCallOpened(string, time.Duration) { h.opened.Add(1) }
func (h *countingHook) OnCallEnded(error)                  { h.ended.Add(1) }
func (h *countingHook) OnRequestWritten(int, int, bool)    { h.written.Add(1) }
func (h *countingHook) OnAcked(int, int)                   { h.acked.Add(1) }
func (h *countingHook) OnRetry(int, time.Duration, error)  { h.retries.Add(1) }
func (h *countingHook) OnRequestAcked(records, bytes int, latency time.Duration) {
	h.reqAcked.Add(1)
	h.reqAckedRecords.Add(int64(records))
	h.reqAckedBytes.Add(int64(bytes))
	if int64(latency) > h.slowest.Load() {
		h.slowest.Store(int64(latency))
	}
}

func TestHooks(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, AfterRecords: 10}))
	cfg, _ := fastConfig(t, srv)
	var h countingHook
	cfg.Hooks = []any{&h, "not a hook"}
	s := New(dial(t, srv), cfg)
	for i := range 3 {
		allAcked(t, waitBatch(t, mustSend(t, s, records(i*10, 10, 10))))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.opened.Load() != 2 || h.ended.Load() != 2 || h.written.Load() < 4 || h.acked.Load() < 3 || h.retries.Load() != 1 {
		t.Fatalf("hooks saw opened %d ended %d written %d acked %d retries %d",
			h.opened.Load(), h.ended.Load(), h.written.Load(), h.acked.Load(), h.retries.Load())
	}
	// Each request is acknowledged once, replays included in its latency.
	st := s.Stats()
	if h.reqAcked.Load() != st.RequestsAcked || h.reqAckedRecords.Load() != 30 || h.reqAckedBytes.Load() != 3*recordBytes(records(0, 10, 10)) || h.slowest.Load() <= 0 {
		t.Fatalf("request acks: %d (stats %d), %d records, %d bytes, slowest %v",
			h.reqAcked.Load(), st.RequestsAcked, h.reqAckedRecords.Load(), h.reqAckedBytes.Load(), time.Duration(h.slowest.Load()))
	}
	if r, b := s.Inflight(); r != 0 || b != 0 {
		t.Fatalf("in flight after Close: %d records, %d bytes", r, b)
	}
}

// Inflight reports what the window holds until it is acknowledged.
func TestInflight(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	cfg, _ := fastConfig(t, srv)
	cfg.AckTimeout = time.Minute
	cfg.FlushTimeout = 50 * time.Millisecond
	s := newStream(t, dial(t, srv), cfg)
	a, b := records(0, 10, 10), records(10, 5, 10)
	mustSend(t, s, a)
	mustSend(t, s, b)
	if r, n := s.Inflight(); r != 15 || n != recordBytes(a)+recordBytes(b) {
		t.Fatalf("in flight: %d records, %d bytes, want 15 and %d", r, n, recordBytes(a)+recordBytes(b))
	}
}

func recordBytes(recs [][]byte) int64 {
	n := 0
	for _, r := range recs {
		n += len(r)
	}
	return int64(n)
}
