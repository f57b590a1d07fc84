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
	checkLeaks(t)
	const batches, rows, bad = 12, 50, 5
	srv := newServer(t,
		// Hold the acks back so that every batch is in flight when the
		// rejection comes.
		zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultDelayAcks, Delay: 300 * time.Millisecond}),
		zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.InvalidArgument,
			Message: "record 3: column id: bad value", AfterRecords: bad * rows}))
	w := newWrapper(t, srv)
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
