package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

func TestClassify(t *testing.T) {
	stErr := func(c codes.Code) error { return status.Error(c, "x") }
	tests := []struct {
		err       error
		kind      Kind
		retryable bool
		code      codes.Code
	}{
		{stErr(codes.InvalidArgument), KindTransmission, false, codes.InvalidArgument},
		{stErr(codes.OutOfRange), KindTransmission, false, codes.OutOfRange},
		{stErr(codes.Unimplemented), KindTransmission, false, codes.Unimplemented},
		{stErr(codes.NotFound), KindConfiguration, false, codes.NotFound},
		{stErr(codes.PermissionDenied), KindAuthentication, false, codes.PermissionDenied},
		{stErr(codes.Unauthenticated), KindAuthentication, false, codes.Unauthenticated},
		{stErr(codes.Unavailable), KindConnection, true, codes.Unavailable},
		{stErr(codes.ResourceExhausted), KindConnection, true, codes.ResourceExhausted},
		{stErr(codes.FailedPrecondition), KindConnection, true, codes.FailedPrecondition},
		{stErr(codes.Internal), KindConnection, true, codes.Internal},
		{io.EOF, KindConnection, true, codes.OK},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), KindConnection, true, codes.DeadlineExceeded},
		{errors.New("broken pipe"), KindConnection, true, codes.Unknown},
		{&Error{Kind: KindRetryExhausted}, KindRetryExhausted, false, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			e := classify("op", tt.err)
			if e.Kind != tt.kind || e.Retryable != tt.retryable || e.Code != tt.code {
				t.Fatalf("classify(%v) = kind %v retryable %v code %v, want %v %v %v", tt.err, e.Kind, e.Retryable, e.Code, tt.kind, tt.retryable, tt.code)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	for k, want := range map[Kind]string{
		KindConnection: "connection", KindAuthentication: "authentication", KindConfiguration: "configuration",
		KindTransmission: "transmission", KindRetryExhausted: "retry exhausted", Kind(99): "kind(99)",
	} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, k.String(), want)
		}
	}
	e := &Error{Kind: KindTransmission, Msg: "send"}
	if e.Error() != "zerobus stream: send" || e.GRPCStatus() != nil || e.Unwrap() != nil {
		t.Fatalf("bare error: %q %v", e.Error(), e.GRPCStatus())
	}
	e = &Error{Kind: KindConnection, Msg: "receive", Err: status.Error(codes.Unavailable, "down")}
	if !strings.Contains(e.Error(), "receive: rpc error: code = Unavailable") || e.GRPCStatus().Code() != codes.Unavailable {
		t.Fatalf("wrapped error: %q", e.Error())
	}
}

func TestFlowBoundsRecordsAndBytes(t *testing.T) {
	f := newFlow(10, 100)
	ctx := context.Background()
	if err := f.acquire(ctx, 4, 60); err != nil {
		t.Fatal(err)
	}
	if f.tryAcquire(1, 50) {
		t.Fatal("bytes over the limit were granted")
	}
	if f.tryAcquire(7, 1) {
		t.Fatal("records over the limit were granted")
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := f.acquire(short, 1, 50); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire past the byte limit: %v", err)
	}
	short2, cancel2 := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel2()
	if err := f.acquire(short2, 7, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire past the record limit: %v", err)
	}
	// The failed acquisitions gave back what they took.
	if !f.tryAcquire(6, 40) {
		t.Fatal("room leaked by failed acquisitions")
	}
	f.release(6, 40)
	f.release(4, 60)
	// A request heavier than the window counts as the whole window.
	if !f.tryAcquire(50, 5000) {
		t.Fatal("an oversized request cannot use an empty window")
	}
	if f.tryAcquire(1, 1) {
		t.Fatal("window not full after an oversized request")
	}
	f.release(50, 5000)
	if !f.tryAcquire(10, 100) {
		t.Fatal("oversized release did not return the window")
	}
}

func TestFullJitter(t *testing.T) {
	for n := 1; n < 70; n++ {
		d := fullJitter(100*time.Millisecond, time.Second, n)
		ceil := min(time.Second, 100*time.Millisecond<<min(n-1, 20))
		if d < 0 || d >= ceil {
			t.Fatalf("attempt %d: wait %v outside [0, %v)", n, d, ceil)
		}
	}
	if fullJitter(0, 0, 1) != 0 {
		t.Fatal("zero delays must not wait")
	}
}

// testConn builds a stream with n requests written on a call that is not
// connected to anything: ack validation and signals need no network.
func testConn(t *testing.T, n int) (*Stream, *conn) {
	s := New(nil, Config{})
	t.Cleanup(func() { s.cancelLife() })
	b := &Batch{s: s, done: make(chan struct{})}
	b.remaining.Store(int64(n))
	for i := range n {
		r := &request{batch: b, offset: int64(i), queued: true, attempts: 1, records: make([][]byte, 1), bytes: 1}
		b.reqs = append(b.reqs, r)
		s.pending = append(s.pending, r)
		s.flow.tryAcquire(1, 1)
	}
	s.next = int64(n)
	_, cancel := context.WithCancel(context.Background())
	c := &conn{s: s, cancel: cancel, wake: make(chan struct{}, 1), done: make(chan struct{}), sentIdx: n}
	c.ackTimer = time.AfterFunc(time.Hour, func() {})
	t.Cleanup(func() { c.ackTimer.Stop() })
	s.conn = c
	return s, c
}

func TestAckValidation(t *testing.T) {
	tests := []struct {
		name    string
		acks    []int64
		pending int  // requests left unresolved
		bad     bool // the call ends with a protocol error
	}{
		{"cumulative", []int64{1, 4}, 0, false},
		{"repeated", []int64{2, 2}, 2, false},
		{"below the previous", []int64{3, 1}, 1, true},
		{"beyond the highest written", []int64{5}, 5, true},
		{"negative first", []int64{-2}, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := testConn(t, 5)
			for _, a := range tt.acks {
				c.ack(a)
			}
			if len(s.pending) != tt.pending {
				t.Fatalf("%d requests pending, want %d", len(s.pending), tt.pending)
			}
			if bad := c.err != nil && errors.Is(c.err, ErrProtocol); bad != tt.bad || (c.ended != tt.bad) {
				t.Fatalf("call ended %v with %v, want protocol error %v", c.ended, c.err, tt.bad)
			}
			if c.sentIdx != tt.pending {
				t.Fatalf("sentIdx %d, want %d", c.sentIdx, tt.pending)
			}
		})
	}
}

func TestCloseSignalHandling(t *testing.T) {
	t.Run("nothing in flight ends the call at once", func(t *testing.T) {
		s, c := testConn(t, 0)
		c.closeSignal(time.Hour)
		if !c.ended || c.err != nil || s.stats.CloseSignals != 1 {
			t.Fatalf("ended %v err %v", c.ended, c.err)
		}
		c.closeSignal(time.Hour) // ignored once ended
		if s.stats.CloseSignals != 1 {
			t.Fatal("second signal counted")
		}
	})
	t.Run("in flight: end once acked", func(t *testing.T) {
		_, c := testConn(t, 2)
		c.closeSignal(time.Hour)
		if c.ended || !c.draining {
			t.Fatal("call ended with requests in flight")
		}
		c.ack(1)
		if !c.ended || c.err != nil {
			t.Fatalf("drained call: ended %v err %v", c.ended, c.err)
		}
		c.drainTimer.Stop()
	})
	t.Run("in flight: end when the duration passes", func(t *testing.T) {
		s, c := testConn(t, 2)
		c.closeSignal(time.Millisecond)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			t.Fatal("call not ended after the signalled duration")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.err != nil || len(s.pending) != 2 {
			t.Fatalf("err %v pending %d: unacked requests must stay for replay", c.err, len(s.pending))
		}
	})
}

func TestAckTimeoutCheck(t *testing.T) {
	s, c := testConn(t, 1)
	s.cfg.AckTimeout = time.Hour
	c.lastProgress = time.Now()
	c.checkAck() // not yet: re-armed
	if c.ended {
		t.Fatal("ended early")
	}
	c.lastProgress = time.Now().Add(-2 * time.Hour)
	c.checkAck()
	if !c.ended || !errors.Is(c.err, ErrNoAck) || !c.err.Retryable {
		t.Fatalf("ack timeout: ended %v err %v", c.ended, c.err)
	}
	_, idle := testConn(t, 0)
	idle.checkAck()
	if idle.ended || idle.timerArmed {
		t.Fatal("an idle call must not time out, and its timer stays disarmed")
	}
}

// drainingServer is a server whose first call gets a close signal that
// drains it: the stream then idles without a call until work arrives.
func drainingServer(t *testing.T) *zerobustest.Server {
	t.Helper()
	return newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultEndCall, Signal: true, SignalDuration: time.Minute}))
}

// waitCallEnded waits until s has no call.
func waitCallEnded(t *testing.T, s *Stream) {
	t.Helper()
	testutil.Eventually(t, "the drained call to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.conn == nil
	})
}

func TestReopenWhenWorkArrives(t *testing.T) {
	checkLeaks(t)
	srv := drainingServer(t)
	cfg, _ := fastConfig(t, srv)
	s := newStream(t, dial(t, srv), cfg)
	allAcked(t, waitBatch(t, mustSend(t, s, records(0, 10, 10))))
	// The signal drained the call: the stream idles without a call.
	waitCallEnded(t, s)
	allAcked(t, waitBatch(t, mustSend(t, s, records(10, 10, 10))))
	st := s.Stats()
	testutil.Require(t, "stats", testutil.Want("Opens", st.Opens, 2), testutil.Want("CloseSignals", st.CloseSignals, 1), testutil.Want("CallFailures", st.CallFailures, 0))
}

// Close of a stream between calls (its call drained, no work since) does
// not wait for the acknowledgement timeout: its supervisor, waiting for
// work, is told to look again.
func TestCloseBetweenCalls(t *testing.T) {
	checkLeaks(t)
	srv := drainingServer(t)
	cfg, _ := fastConfig(t, srv)
	cfg.AckTimeout, cfg.FlushTimeout = time.Minute, 5*time.Minute
	s := newStream(t, dial(t, srv), cfg)
	allAcked(t, waitBatch(t, mustSend(t, s, records(0, 10, 10))))
	waitCallEnded(t, s)
	start := time.Now()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("Close between calls took %v: it waited for the ack timeout (1 min)", d)
	}
}

// Parts need a stream of another transport; a part that cannot be queued
// fails with the rows of every part after it, numbered across the parts.
func TestSendPartsRefusals(t *testing.T) {
	parts := []Part{{Records: 3, Bytes: 30, Payload: "a"}, {Records: 2, Bytes: 20, Payload: "b"}}
	s := New(nil, Config{Table: "main.default.t"})
	b, err := s.SendParts(context.Background(), parts, nil, nil)
	if !errors.Is(err, ErrNoTransport) {
		t.Fatalf("SendParts without Dial: %v", err)
	}
	if o := b.Outcomes(); len(o) != 1 || o[0].Start != 0 || o[0].End != 5 || !errors.Is(o[0].Err, ErrNoTransport) {
		t.Fatalf("outcomes %+v", o)
	}
	_ = s.Close(context.Background())

	dialed := false
	s = New(nil, Config{Table: "main.default.t", Dial: func(context.Context) (Call, string, error) {
		dialed = true
		return nil, "", errors.New("not reached")
	}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	released := false
	b, err = s.SendParts(ctx, parts, nil, func() { released = true })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SendParts with a cancelled context: %v", err)
	}
	if o := b.Outcomes(); len(o) != 1 || o[0].End != 5 || o[0].MayHaveLanded {
		t.Fatalf("outcomes %+v", o)
	}
	if _, err := s.TrySendParts(nil, nil, nil); err != nil {
		t.Fatalf("TrySendParts of nothing: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if dialed || !released {
		t.Fatalf("dialed %v, released %v: want no call and the batch released", dialed, released)
	}
}
