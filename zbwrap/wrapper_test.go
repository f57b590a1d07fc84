package zbwrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

func TestSendBatchLandsInTable(t *testing.T) { eachTransport(t, testSendBatchLandsInTable) }

func testSendBatchLandsInTable(t *testing.T, topts []Option) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv, topts...)
	rec := makeBatch(0, 1000, 50)
	defer rec.Release()
	res, err := w.SendBatch(context.Background(), rec)
	if err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	testutil.Require(t, "result", testutil.Want("Success", res.Success, true), testutil.Want("TotalRows", res.TotalRows, 1000),
		testutil.Want("SuccessfulCount", res.SuccessfulCount, 1000), testutil.Want("FailedCount", res.FailedCount, 0), testutil.Want("Attempts", res.Attempts, 1),
		testutil.Want("BatchSizeBytes > 0", res.BatchSizeBytes > 0, true), testutil.Want("Latency > 0", res.Latency > 0, true))
	for i, r := range res.SuccessfulRows {
		if r != i {
			t.Fatalf("successful rows out of order at %d: %d", i, r)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantTransport(t, srv, topts)
	ids := tableIDs(t, srv)
	if len(ids) != 1000 {
		t.Fatalf("table holds %d distinct ids, want 1000", len(ids))
	}
}

func TestEnqueueKeepsOrder(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	// A small window: later batches wait for room while earlier ones are
	// in flight (on one stream: with auto, a full window opens another).
	w := newWrapper(t, srv, WithMaxInflightRecords(300), WithStreams(1))
	const batches, rows = 20, 100
	pending := make([]*PendingBatch, batches)
	for i := range pending {
		rec := makeBatch(i*rows, rows, 50)
		p, err := w.Enqueue(context.Background(), rec)
		rec.Release()
		if err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
		pending[i] = p
	}
	// Waits are independent of the order they are made in.
	for i := batches - 1; i >= 0; i-- {
		res, err := pending[i].Wait(context.Background())
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		testutil.Require(t, fmt.Sprintf("batch %d", i), testutil.Want("Success", res.Success, true), testutil.Want("TotalRows", res.TotalRows, rows),
			testutil.Want("SuccessfulCount", res.SuccessfulCount, rows), testutil.Want("Attempts", res.Attempts, 1))
		again, err := pending[i].Wait(context.Background())
		if again != res || err != nil {
			t.Fatalf("a second Wait of batch %d gave %v %v", i, again, err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkIDsInOrder(t, srv, batches*rows)
	if _, err := w.Enqueue(context.Background(), makeBatch(0, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close: %v", err)
	}
}

func TestPrepareInParallelEnqueueInOrder(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv)
	const batches, rows = 12, 50
	prepared := make([]*PreparedBatch, batches)
	var wg sync.WaitGroup
	for i := range prepared {
		wg.Go(func() {
			rec := makeBatch(i*rows, rows, 20)
			defer rec.Release()
			b, err := w.Prepare(context.Background(), rec)
			if err != nil {
				t.Errorf("Prepare %d: %v", i, err)
			}
			prepared[i] = b
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Nothing is sent before Enqueue.
	if n := w.Stats().RequestsWritten; n != 0 {
		t.Fatalf("%d requests written before any Enqueue", n)
	}
	pending := make([]*PendingBatch, batches)
	for i, b := range prepared {
		p, err := b.Enqueue(context.Background())
		if err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
		pending[i] = p
		if _, err := b.Enqueue(context.Background()); !errors.Is(err, ErrConfiguration) {
			t.Fatalf("second Enqueue of batch %d: %v", i, err)
		}
	}
	for i, p := range pending {
		if res, err := p.Wait(context.Background()); err != nil || res.SuccessfulCount != rows {
			t.Fatalf("batch %d: %v %v", i, res, err)
		}
	}
	// A batch that cannot convert at all is prepared, queues nothing, and
	// its result says why.
	bad := u64Batch(1 << 63)
	defer bad.Release()
	b, err := w.Prepare(context.Background(), bad)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Enqueue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Wait(context.Background()); !errors.Is(err, ErrConversion) || res.FailedCount != 1 {
		t.Fatalf("unconvertible batch: %v %v", res, err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkIDsInOrder(t, srv, batches*rows)
	if _, err := w.Prepare(context.Background(), bad); !errors.Is(err, ErrClosed) {
		t.Fatalf("Prepare after Close: %v", err)
	}
}

func TestEnqueueWaitGivesUp(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	w := newWrapper(t, srv, WithAckTimeout(300*time.Millisecond))
	if _, err := w.Enqueue(context.Background(), nil); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("Enqueue(nil): %v", err)
	}
	rec := makeBatch(0, 40, 10)
	defer rec.Release()
	p, err := w.Enqueue(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); w.Stats().RequestsWritten == 0; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the request was never written")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := p.Wait(ctx)
	if !errors.Is(err, context.Canceled) || res.FailedCount != 40 || res.SuccessfulCount != 0 {
		t.Fatalf("result %v err %v", res, err)
	}
	for _, f := range res.FailedRows {
		if !f.MayHaveLanded {
			t.Fatalf("written row %d reported as never landing", f.Index)
		}
	}
	// The first result stands; the request landed on the stalled call.
	if again, err2 := p.Wait(context.Background()); again != res || err2 != err {
		t.Fatalf("a second Wait gave %v %v", again, err2)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Close(context.Background())
	if ids := tableIDs(t, srv); len(ids) != 40 {
		t.Fatalf("table holds %d ids", len(ids))
	}
}

func TestConversionFailuresAreFailedRows(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv)
	rec := u64Batch(1, 1<<63, 3, 1<<64-1, 5)
	defer rec.Release()
	res, err := w.SendBatch(context.Background(), rec)
	if !errors.Is(err, ErrConversion) || err != res.Error {
		t.Fatalf("err %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Result != res || e.Retryable() {
		t.Fatalf("error %#v does not carry the result", err)
	}
	testutil.Require(t, "result", testutil.Want("Success", res.Success, false), testutil.Want("IsPartialSuccess()", res.IsPartialSuccess(), true),
		testutil.Want("TotalRows", res.TotalRows, 5), testutil.Want("SuccessfulCount", res.SuccessfulCount, 3), testutil.Want("FailedCount", res.FailedCount, 2))
	if !slices.Equal(res.FailedIndices(), []int{1, 3}) || !slices.Equal(res.SuccessfulIndices(), []int{0, 2, 4}) {
		t.Fatalf("failed %v successful %v", res.FailedIndices(), res.SuccessfulIndices())
	}
	for _, f := range res.FailedRows {
		if f.Error.Kind != KindConversion || f.MayHaveLanded || !strings.Contains(f.Error.Error(), "u") {
			t.Fatalf("failed row %+v", f)
		}
	}
	st := res.ErrorStats()
	testutil.Require(t, "error stats", testutil.Want("Failed", st.Failed, 2), testutil.Want("ByKind[KindConversion]", st.ByKind[KindConversion], 2),
		testutil.Want("Distinct", st.Distinct, 2), testutil.Want("MayHaveLanded", st.MayHaveLanded, 0), testutil.Want("Retryable", st.Retryable, 0))
	if g := res.ErrorsByKind(); len(g) != 1 || len(g[KindConversion]) != 2 {
		t.Fatalf("by kind %v", g)
	}

	failed, err := res.ExtractFailedBatch(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer failed.Release()
	ok, err := res.ExtractSuccessfulBatch(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Release()
	if got := failed.Column(0).(*array.Uint64).Uint64Values(); !slices.Equal(got, []uint64{1 << 63, 1<<64 - 1}) {
		t.Fatalf("failed rows %v", got)
	}
	if got := ok.Column(0).(*array.Uint64).Uint64Values(); !slices.Equal(got, []uint64{1, 3, 5}) {
		t.Fatalf("successful rows %v", got)
	}
	other := u64Batch(1)
	defer other.Release()
	if _, err := res.ExtractFailedBatch(other); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("extract from another batch: %v", err)
	}
	if _, err := res.ExtractFailedBatch(nil); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("extract from nil: %v", err)
	}

	w.Close(context.Background())
	if got := tableInts(t, srv, "u"); len(got) != 3 || got[1] != 1 || got[3] != 1 || got[5] != 1 {
		t.Fatalf("table holds %v", got)
	}
}

func TestWholeBatchConversionFailure(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv)
	sc := arrow.NewSchema([]arrow.Field{{Name: "iv", Type: arrow.FixedWidthTypes.MonthInterval}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	b.Field(0).(*array.MonthIntervalBuilder).AppendValues([]arrow.MonthInterval{1, 2, 3}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()
	res, err := w.SendBatch(context.Background(), rec)
	if !errors.Is(err, ErrConversion) || !errors.Is(err, arrowproto.ErrUnsupportedType) {
		t.Fatalf("err %v", err)
	}
	testutil.Require(t, "result", testutil.Want("FailedCount", res.FailedCount, 3), testutil.Want("SuccessfulCount", res.SuccessfulCount, 0),
		testutil.Want("ErrorStats().Distinct", res.ErrorStats().Distinct, 1))
	if srv.Stats().StreamsOpened != 0 {
		t.Fatal("a stream opened for a batch that cannot be converted")
	}
	if _, err := w.SendBatch(context.Background(), nil); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("nil batch: %v", err)
	}
	empty := makeBatch(0, 0, 0)
	defer empty.Release()
	if res, err := w.SendBatch(context.Background(), empty); err != nil || !res.Success || res.TotalRows != 0 {
		t.Fatalf("empty batch: %v %v", res, err)
	}
}

// countingDialer counts the connections a Wrapper dials.
type countingDialer struct{ n atomic.Int64 }

func (d *countingDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	d.n.Add(1)
	return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
}

func TestWriterDisabledNeverConnects(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	var d countingDialer
	for name, opts := range map[string][]Option{
		"no endpoint nor credentials": {WithTableName(testTable), WithWriterDisabled(true), WithDialer(d.dial)},
		"a live server configured":    append(serverOptions(srv), WithWriterDisabled(true), WithDialer(d.dial)),
	} {
		t.Run(name, func(t *testing.T) {
			w, err := New(context.Background(), Config{}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			rec := u64Batch(1, 1<<63, 3)
			defer rec.Release()
			res, err := w.SendBatch(context.Background(), rec)
			if !errors.Is(err, ErrConversion) || !slices.Equal(res.SuccessfulRows, []int{0, 2}) || !slices.Equal(res.FailedIndices(), []int{1}) {
				t.Fatalf("result %v err %v", res, err)
			}
			off, err := w.SendBatchAsync(context.Background(), rec)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WaitForOffset(context.Background(), off); !errors.Is(err, ErrConversion) {
				t.Fatalf("async conversion failure: %v", err)
			}
			if err := w.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
	if d.n.Load() != 0 || srv.Stats().StreamsOpened != 0 {
		t.Fatalf("%d dials, %d streams with the writer disabled", d.n.Load(), srv.Stats().StreamsOpened)
	}
}

func TestAsync(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv)
	ctx := context.Background()
	var mu sync.Mutex
	var offs []int64
	var wg sync.WaitGroup
	for g := range 5 {
		wg.Go(func() {
			for i := range 4 {
				rec := makeBatch((g*4+i)*100, 100, 30)
				off, err := w.SendBatchAsync(ctx, rec)
				rec.Release()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				offs = append(offs, off)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(offs)
	for i, o := range offs {
		if o != int64(i) {
			t.Fatalf("offsets %v are not 0..19", offs)
		}
	}
	if err := w.WaitForOffset(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []int64{-1, 20} {
		if err := w.WaitForOffset(ctx, bad); !errors.Is(err, ErrConfiguration) {
			t.Fatalf("WaitForOffset(%d): %v", bad, err)
		}
	}
	st := w.Stats()
	testutil.Require(t, "stats", testutil.Want("Batches", st.Batches, 20), testutil.Want("RowsAcked", st.RowsAcked, 2000), testutil.Want("RowsFailed", st.RowsFailed, 0),
		testutil.Want("Streams", st.Streams, 1), testutil.Want("CallsOpened", st.CallsOpened, 1))
	w.Close(ctx)
	if ids := tableIDs(t, srv); len(ids) != 2000 {
		t.Fatalf("table holds %d ids", len(ids))
	}
}

func TestAsyncFailuresReportedOnce(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv)
	ctx := context.Background()
	send := func(vals ...uint64) int64 {
		rec := u64Batch(vals...)
		defer rec.Release()
		off, err := w.SendBatchAsync(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	a := send(1, 2)
	b := send(3, 1<<63)
	c := send(1<<63, 4, 1<<63)
	err := w.WaitForOffset(ctx, b)
	var e *Error
	if !errors.As(err, &e) || e.Result == nil || !slices.Equal(e.Result.FailedIndices(), []int{1}) || !strings.Contains(e.Op, "offset 1") {
		t.Fatalf("WaitForOffset(%d): %v", b, err)
	}
	if err := w.WaitForOffset(ctx, b); err != nil {
		t.Fatalf("failure reported twice: %v", err)
	}
	if err := w.WaitForOffset(ctx, a); err != nil {
		t.Fatal(err)
	}
	err = w.Flush(ctx)
	if !errors.As(err, &e) || !slices.Equal(e.Result.FailedIndices(), []int{0, 2}) {
		t.Fatalf("Flush: %v", err)
	}
	_ = c
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	st := w.Stats()
	testutil.Require(t, "stats", testutil.Want("Batches", st.Batches, 3), testutil.Want("RowsAcked", st.RowsAcked, 4), testutil.Want("RowsFailed", st.RowsFailed, 3))
}

func TestTrySendBatchAsyncOnAFullWindow(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	// One stream: with auto, a full window opens another.
	w := newWrapper(t, srv, WithMaxInflightRecords(100), WithAckTimeout(time.Minute), WithFlushTimeout(100*time.Millisecond), WithStreams(1))
	rec := makeBatch(0, 100, 10)
	defer rec.Release()
	if off, err := w.TrySendBatchAsync(rec); err != nil || off != 0 {
		t.Fatalf("first TrySendBatchAsync: %d %v", off, err)
	}
	testutil.Eventually(t, "the first batch to be written", func() bool { return w.Stats().RequestsWritten == 1 })
	off, err := w.TrySendBatchAsync(rec)
	if off != -1 || !errors.Is(err, ErrTransmission) || !IsRetryable(err) {
		t.Fatalf("TrySendBatchAsync on a full window: %d %v", off, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if off, err := w.SendBatchAsync(ctx, rec); off != -1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendBatchAsync on a full window: %d %v", off, err)
	}
	// The batch at offset 0 never gets an ack: Close gives up after the
	// flush timeout and reports it, written, so it may have landed.
	err = w.Close(context.Background())
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Close: %v", err)
	}
	found := false
	for _, err := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(err, &e) && e.Result != nil {
			found = true
			if e.Result.FailedCount != 100 || !e.Result.FailedRows[0].MayHaveLanded {
				t.Fatalf("async batch at Close: %v", e.Result)
			}
		}
	}
	if !found {
		t.Fatalf("Close did not report the unacknowledged async batch: %v", err)
	}
	if _, err := w.SendBatch(context.Background(), rec); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendBatch after Close: %v", err)
	}
	if _, err := w.SendBatchAsync(context.Background(), rec); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendBatchAsync after Close: %v", err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSendBatchWithDescriptor(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv)
	compiled, err := arrowproto.NewSchema(testSchema, arrowproto.WithMessageName("Event"))
	if err != nil {
		t.Fatal(err)
	}
	desc := proto.Clone(compiled.Descriptor()).(*descriptorpb.DescriptorProto)
	for i := range 2 {
		rec := makeBatch(i*10, 10, 10)
		res, err := w.SendBatchWithDescriptor(context.Background(), rec, desc)
		rec.Release()
		if err != nil || res.SuccessfulCount != 10 {
			t.Fatalf("SendBatchWithDescriptor: %v %v", res, err)
		}
	}
	if _, err := w.SendBatchWithDescriptor(context.Background(), nil, nil); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("nil descriptor: %v", err)
	}
	bad := proto.Clone(desc).(*descriptorpb.DescriptorProto)
	bad.Field[0].Type = descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	rec := makeBatch(0, 3, 3)
	defer rec.Release()
	if _, err := w.SendBatchWithDescriptor(context.Background(), rec, bad); !errors.Is(err, arrowproto.ErrIncompatibleDescriptor) || !errors.Is(err, ErrConversion) {
		t.Fatalf("incompatible descriptor: %v", err)
	}
	if w.Stats().Streams != 1 {
		t.Fatalf("one descriptor, %d streams", w.Stats().Streams)
	}
}

func TestCallerGivesUp(t *testing.T) { eachTransport(t, testCallerGivesUp) }

func testCallerGivesUp(t *testing.T, topts []Option) {
	t.Run("written rows may land", func(t *testing.T) {
		checkLeaks(t)
		srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
		w := newWrapper(t, srv, append(topts, WithAckTimeout(300*time.Millisecond))...)
		rec := makeBatch(0, 50, 10)
		defer rec.Release()
		// Give up once the request is on the wire.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			defer cancel()
			for start := time.Now(); w.Stats().RequestsWritten == 0 && time.Since(start) < 10*time.Second; {
				time.Sleep(time.Millisecond)
			}
		}()
		res, err := w.SendBatch(ctx, rec)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTransmission) || res.FailedCount != 50 {
			t.Fatalf("result %v err %v", res, err)
		}
		for _, f := range res.FailedRows {
			if !f.MayHaveLanded {
				t.Fatalf("written row %d reported as never landing", f.Index)
			}
		}
		// The request landed on the stalled call, which then ends; it is
		// not written again.
		if err := w.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		w.Close(context.Background())
		if ids := tableIDs(t, srv); len(ids) != 50 {
			t.Fatalf("table holds %d ids, want the 50 abandoned but queued rows", len(ids))
		}
	})
	t.Run("unwritten rows are withdrawn", func(t *testing.T) {
		checkLeaks(t)
		srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: codes.Unavailable, Times: -1}))
		w := newWrapper(t, srv, append(topts, WithRetryBaseDelay(time.Second), WithRetryMaxDelay(time.Second))...)
		rec := makeBatch(0, 50, 10)
		defer rec.Release()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		res, err := w.SendBatch(ctx, rec)
		if !errors.Is(err, context.DeadlineExceeded) || res.FailedCount != 50 || res.FailedRows[0].MayHaveLanded {
			t.Fatalf("result %v err %v", res, err)
		}
		if err := w.Flush(context.Background()); err != nil {
			t.Fatalf("Flush with the only request withdrawn: %v", err)
		}
	})
}

func TestFatalErrorThenNewStream(t *testing.T) { eachTransport(t, testFatalErrorThenNewStream) }

func testFatalErrorThenNewStream(t *testing.T, topts []Option) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCreate, Code: codes.NotFound, Message: "no such table"}))
	w := newWrapper(t, srv, topts...)
	rec := makeBatch(0, 10, 10)
	defer rec.Release()
	res, err := w.SendBatch(context.Background(), rec)
	if !errors.Is(err, ErrConfiguration) || IsRetryable(err) || status.Code(err) != codes.NotFound || res.FailedRows[0].MayHaveLanded {
		t.Fatalf("result %v err %v", res, err)
	}
	// The fault fired once: the next batch gets a new stream.
	if res, err := w.SendBatch(context.Background(), rec); err != nil || !res.Success {
		t.Fatalf("after the fatal error: %v %v", res, err)
	}
	st := w.Stats()
	testutil.Require(t, "stats", testutil.Want("Streams", st.Streams, 1), testutil.Want("OpenFailures", st.OpenFailures, 1), testutil.Want("CallsOpened", st.CallsOpened, 1))
}

// staticHeaders is a HeadersProvider handing out server tokens.
type staticHeaders struct {
	srv *zerobustest.Server
	err error
}

func (h staticHeaders) Headers(context.Context) (map[string]string, error) {
	if h.err != nil {
		return nil, h.err
	}
	return map[string]string{"authorization": "Bearer " + h.srv.Token(testTable)}, nil
}

func TestHeadersProvider(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	opts := []Option{WithEndpoint(srv.Endpoint()), WithTableName(testTable), WithRetryMaxAttempts(1),
		WithRetryBaseDelay(time.Millisecond)}
	w, err := New(context.Background(), Config{}, append(opts, WithHeadersProvider(staticHeaders{srv: srv}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	rec := makeBatch(0, 10, 10)
	defer rec.Release()
	if res, err := w.SendBatch(context.Background(), rec); err != nil || !res.Success {
		t.Fatalf("%v %v", res, err)
	}
	boom := errors.New("vault unreachable")
	w2, err := New(context.Background(), Config{}, append(opts, WithHeadersProvider(staticHeaders{err: boom}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close(context.Background())
	if _, err := w2.SendBatch(context.Background(), rec); !errors.Is(err, ErrAuthentication) || !errors.Is(err, boom) {
		t.Fatalf("provider failure: %v", err)
	}
}

func TestTLS(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithTLS())
	if !strings.HasPrefix(srv.Endpoint(), "https://") {
		t.Fatalf("endpoint %s", srv.Endpoint())
	}
	rec := makeBatch(0, 10, 10)
	defer rec.Release()
	for name, opt := range map[string]Option{
		"root CAs":   WithRootCAs(srv.CertPool()),
		"TLS config": WithTLSConfig(&tls.Config{RootCAs: srv.CertPool()}),
	} {
		t.Run(name, func(t *testing.T) {
			w, err := New(context.Background(), Config{}, append(serverOptions(srv), opt)...)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(context.Background())
			if res, err := w.SendBatch(context.Background(), rec); err != nil || !res.Success {
				t.Fatalf("%v %v", res, err)
			}
		})
	}
}

func TestBadCredentials(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv, WithClientSecret("wrong"+testSecret))
	rec := makeBatch(0, 10, 10)
	defer rec.Release()
	_, err := w.SendBatch(context.Background(), rec)
	if !errors.Is(err, ErrAuthentication) || IsRetryable(err) || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("bad credentials: %v", err)
	}
	if srv.Stats().StreamsOpened != 0 {
		t.Fatal("a stream opened without a token")
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, AfterRecords: 5}))
	var logs bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})
	w := newWrapper(t, srv, WithLogger(slog.New(h)))
	rec := makeBatch(0, 10, 10)
	defer rec.Release()
	if _, err := w.SendBatch(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	w.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if !strings.Contains(out, "reconnecting") {
		t.Fatalf("no reconnection logged: %s", out)
	}
	if strings.Contains(out, testSecret) || strings.Contains(out, "zbt_") || strings.Contains(strings.ToLower(out), "bearer") {
		t.Fatalf("secret or token in logs: %s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// recordingHook observes the wrapper's hooks.
type recordingHook struct {
	encoded, done atomic.Int64
	records       atomic.Int64
}

func (h *recordingHook) OnBatchEncoded(_ arrow.RecordBatch, desc []byte, recs [][]byte) {
	if len(desc) > 0 {
		h.encoded.Add(1)
		h.records.Add(int64(len(recs)))
	}
}
func (h *recordingHook) OnBatchDone(*TransmissionResult) { h.done.Add(1) }

func TestHooks(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	var h recordingHook
	w := newWrapper(t, srv, withHooks(&h))
	rec := makeBatch(0, 10, 10)
	defer rec.Release()
	if _, err := w.SendBatch(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	off, err := w.SendBatchAsync(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitForOffset(context.Background(), off); err != nil {
		t.Fatal(err)
	}
	if h.encoded.Load() != 2 || h.done.Load() != 2 || h.records.Load() != 20 {
		t.Fatalf("hooks saw %d encoded (%d records), %d done", h.encoded.Load(), h.records.Load(), h.done.Load())
	}
	if !strings.Contains((&TransmissionResult{TotalRows: 3}).String(), "rows=3") {
		t.Fatal("result String")
	}
}

func TestAsyncPartlyQueued(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	// 100 rows of ~60 bytes in requests of at most 2 KiB: several requests,
	// of which the window holds only the first.
	w := newWrapper(t, srv, WithMaxRequestBytes(2048), WithMaxInflightRecords(40), WithAckTimeout(time.Minute),
		WithFlushTimeout(100*time.Millisecond), WithGRPCDialOptions(grpc.WithUserAgent("test")),
		WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	rec := makeBatch(0, 100, 50)
	defer rec.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	off, err := w.SendBatchAsync(ctx, rec)
	if off != 0 || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "only partly queued") {
		t.Fatalf("partly queued batch: %d %v", off, err)
	}
	// Nothing is acknowledged: Close gives up after the flush timeout and
	// reports the batch.
	err = w.Close(context.Background())
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Close: %v", err)
	}
	for _, err := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(err, &e) && e.Result != nil {
			break
		}
	}
	if e.Result == nil || e.Result.Offset != 0 || e.Result.SuccessfulCount != 0 || e.Result.FailedCount != 100 {
		t.Fatalf("Close: %v", err)
	}
	landed := 0
	for _, f := range e.Result.FailedRows {
		if f.MayHaveLanded {
			landed++
		}
	}
	if landed == 0 || landed == 100 {
		t.Fatalf("%d rows may have landed: want the written request only", landed)
	}
}

func TestEndpointPorts(t *testing.T) {
	for endpoint, target := range map[string]string{
		"https://1234.zerobus.example.com": "1234.zerobus.example.com:443",
		"1234.zerobus.example.com":         "1234.zerobus.example.com:443",
		"http://localhost":                 "localhost:80",
		"http://127.0.0.1:7000":            "127.0.0.1:7000",
	} {
		w, err := New(context.Background(), Config{}, WithEndpoint(endpoint), WithTableName(testTable),
			WithHeadersProvider(staticHeaders{}))
		if err != nil {
			t.Fatal(err)
		}
		cc, err := w.conn.Get()
		if err != nil || cc.CanonicalTarget() != "dns:///"+target {
			t.Errorf("%s: target %v, %v", endpoint, cc.CanonicalTarget(), err)
		}
		w.Close(context.Background())
	}
}

// checkedBatch has n rows (id, payload, attrs) where row badText's payload
// is not UTF-8 and row dupKey's attrs hold a key twice.
func checkedBatch(n, badText, dupKey int) arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "payload", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "attrs", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	ids := b.Field(0).(*array.Int64Builder)
	pl := b.Field(1).(*array.StringBuilder)
	attrs := b.Field(2).(*array.MapBuilder)
	keys, vals := attrs.KeyBuilder().(*array.StringBuilder), attrs.ItemBuilder().(*array.Int64Builder)
	for i := range n {
		ids.Append(int64(i))
		switch i {
		case badText:
			pl.Append("caf\xc3") // pyarrow exports such bytes unchecked
		default:
			pl.Append(fmt.Sprintf("row %d: café", i))
		}
		attrs.Append(true)
		keys.Append("a")
		vals.Append(int64(i))
		if i == dupKey {
			keys.Append("a")
		} else {
			keys.Append("b")
		}
		vals.Append(-int64(i))
	}
	return b.NewRecordBatch()
}

func TestRowsThatCannotBeStringsOrMapsFailAlone(t *testing.T) {
	// One value that is not UTF-8 would make the server reject the whole
	// request, and a key twice in a map would lose a value silently: each
	// fails its own row only, before anything is sent, with or without the
	// writer.
	checkLeaks(t)
	const n, badText, dupKey = 1000, 417, 600
	rec := checkedBatch(n, badText, dupKey)
	defer rec.Release()
	check := func(t *testing.T, res *TransmissionResult, err error) {
		t.Helper()
		if !errors.Is(err, ErrConversion) || res.Success || res.SuccessfulCount != n-2 || res.FailedCount != 2 {
			t.Fatalf("result %v err %v", res, err)
		}
		if !slices.Equal(res.FailedIndices(), []int{badText, dupKey}) {
			t.Fatalf("failed rows %v", res.FailedIndices())
		}
		for i, want := range []string{`row 417, column "payload": string value is not valid UTF-8`, `row 600, column "attrs.key": duplicate map key "a"`} {
			f := res.FailedRows[i]
			if f.Error.Kind != KindConversion || f.Error.Retryable() || f.MayHaveLanded || !strings.Contains(f.Error.Error(), want) {
				t.Fatalf("failed row %d: %v (retryable %v, may have landed %v), want %s", f.Index, f.Error, f.Error.Retryable(), f.MayHaveLanded, want)
			}
		}
		if st := res.ErrorStats(); st.Retryable != 0 || st.MayHaveLanded != 0 {
			t.Fatalf("stats %+v", st)
		}
	}
	t.Run("writer", func(t *testing.T) {
		srv := newServer(t)
		w := newWrapper(t, srv)
		res, err := w.SendBatch(context.Background(), rec)
		check(t, res, err)
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		ids := tableIDs(t, srv)
		if len(ids) != n-2 || ids[badText] != 0 || ids[dupKey] != 0 {
			t.Fatalf("table holds %d ids (row %d: %d, row %d: %d)", len(ids), badText, ids[badText], dupKey, ids[dupKey])
		}
		for id, c := range ids {
			if c != 1 || id < 0 || id >= n {
				t.Fatalf("id %d is in the table %d times", id, c)
			}
		}
	})
	t.Run("writer disabled", func(t *testing.T) {
		w, err := New(context.Background(), Config{}, WithTableName(testTable), WithWriterDisabled(true))
		if err != nil {
			t.Fatal(err)
		}
		res, err := w.SendBatch(context.Background(), rec)
		check(t, res, err)
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
