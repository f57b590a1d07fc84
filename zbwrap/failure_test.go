package zbwrap

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// A rejected request fails alone: the requests written behind it on the
// same call were not ingested, so they are written again on a new call and
// acknowledged, and land exactly once.
func TestRejectionFailsOnlyTheRejectedBatch(t *testing.T) {
	eachTransport(t, testRejectionFailsOnlyTheRejectedBatch)
}

func testRejectionFailsOnlyTheRejectedBatch(t *testing.T, topts []Option) {
	checkLeaks(t)
	const batches, rows, bad = 12, 50, 5
	srv := newServer(t,
		// Hold the acks back so that every batch is in flight when the
		// rejection comes.
		zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultDelayAcks, Delay: 300 * time.Millisecond}),
		zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.InvalidArgument,
			Message: "record 3: column id: bad value", AfterRecords: bad * rows}))
	w := newWrapper(t, srv, topts...)
	ctx := context.Background()
	results := make([]*TransmissionResult, batches)
	var wg sync.WaitGroup
	var mu sync.Mutex
	queued := make(chan struct{})
	for i := range batches {
		rec := makeBatch(i*rows, rows, 20)
		p, err := w.Enqueue(ctx, rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			<-queued
			res, _ := p.Wait(ctx)
			mu.Lock()
			results[i] = res
			mu.Unlock()
		})
	}
	close(queued)
	wg.Wait()
	for i, res := range results {
		if i != bad {
			if !res.Success {
				t.Errorf("batch %d: %v", i, res.Error)
			}
			continue
		}
		if res.FailedCount != rows {
			t.Fatalf("rejected batch: %d rows failed, want %d", res.FailedCount, rows)
		}
		err := res.Error
		if !errors.Is(err, ErrTransmission) || IsRetryable(err) || status.Code(err) != codes.InvalidArgument {
			t.Errorf("rejected batch error: %v (retryable %v, code %v)", err, IsRetryable(err), status.Code(err))
		}
		for _, f := range res.FailedRows {
			if f.MayHaveLanded {
				t.Errorf("row %d of the rejected request reported as possibly landed", f.Index)
				break
			}
		}
	}
	st := w.Stats()
	if st.CallsOpened < 2 || st.RecordsMaybeDuplicated != 0 {
		t.Errorf("stats %+v: want a second call and no possible duplicate", st)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ids := tableIDs(t, srv)
	for i := range batches * rows {
		want := 1
		if i/rows == bad {
			want = 0
		}
		if ids[int64(i)] != want {
			t.Fatalf("id %d stored %d times, want %d", i, ids[int64(i)], want)
		}
	}
}

// A send abandoned on a stalled call does not hold the next send hostage:
// the next one goes on a fresh call well within the ack timeout, and the
// abandoned rows, which may have landed, are not written again.
func TestAbandonedSendDoesNotHoldTheNextOne(t *testing.T) {
	eachTransport(t, testAbandonedSendDoesNotHoldTheNextOne)
}

func testAbandonedSendDoesNotHoldTheNextOne(t *testing.T, topts []Option) {
	checkLeaks(t)
	// The first call stores requests but never acknowledges them.
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	w := newWrapper(t, srv, append(topts, WithAckTimeout(30*time.Second))...)
	first := makeBatch(0, 50, 10)
	defer first.Release()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for start := time.Now(); w.Stats().RequestsWritten == 0 && time.Since(start) < 10*time.Second; {
			time.Sleep(time.Millisecond)
		}
	}()
	res, err := w.SendBatch(ctx, first)
	if !errors.Is(err, context.Canceled) || res.FailedCount != 50 || !res.FailedRows[0].MayHaveLanded {
		t.Fatalf("abandoned send: %v %v", res, err)
	}
	next := makeBatch(50, 50, 10)
	defer next.Release()
	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res, err := w.SendBatch(ctx, next); err != nil || !res.Success {
		t.Fatalf("send after an abandoned one: %v %v (after %s; ack timeout 30s)", res, err, time.Since(start))
	}
	st := w.Stats()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The abandoned rows landed once, on the stalled call. The next batch
	// was written on that call too before it moved to a new one: the table
	// may hold it twice, as the duplicate count says.
	ids := tableIDs(t, srv)
	extra := int64(0)
	for i := range 100 {
		n := ids[int64(i)]
		if n < 1 || i < 50 && n != 1 {
			t.Fatalf("id %d stored %d times", i, n)
		}
		extra += int64(n - 1)
	}
	if extra != st.RecordsMaybeDuplicated {
		t.Fatalf("%d rows stored twice, %d counted as possible duplicates", extra, st.RecordsMaybeDuplicated)
	}
}
