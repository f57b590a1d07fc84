package zbwrap

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// readerOf is a reader over n batches of rows rows each, ids 0..n*rows-1.
func readerOf(t *testing.T, n, rows int) array.RecordReader {
	t.Helper()
	recs := make([]arrow.RecordBatch, n)
	for i := range recs {
		recs[i] = makeBatch(i*rows, rows, 40)
	}
	rdr, err := array.NewRecordReader(testSchema, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	return rdr
}

// With streams: 4 against a server whose streams have a small quota, the
// load is spread over four streams of the table (each takes its share, as
// the server saw it), and every row lands once.
func TestStreamsShareTheLoad(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithStreamQuota(zerobustest.Quota{RecordsPerSec: 20_000}),
		zerobustest.WithAckLatency(zerobustest.AckLatency{Median: 20 * time.Millisecond, P95: 40 * time.Millisecond}))
	w := newWrapper(t, srv, WithStreams(4))
	rdr := readerOf(t, 40, 1000)
	defer rdr.Release()
	res, err := w.SendReader(context.Background(), rdr, WithChunkRows(500), WithConcurrency(8))
	if err != nil || res.SuccessfulCount != 40_000 {
		t.Fatalf("SendReader: %v, %v", res, err)
	}
	if st := w.Stats(); st.Streams != 4 || st.RowsAcked != 40_000 {
		t.Errorf("Stats: %d streams, %d rows acknowledged; want 4 and 40000", st.Streams, st.RowsAcked)
	}
	busy := 0
	for _, s := range srv.Stats().Streams {
		if s.Table == testTable && s.RecordsReceived > 0 {
			busy++
		}
	}
	if busy != 4 {
		t.Errorf("the server saw %d streams with records, want 4", busy)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := tableIDs(t, srv)
	if len(ids) != 40_000 {
		t.Fatalf("%d distinct ids in the table, want 40000", len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("id %d stored %d times", id, n)
		}
	}
}

// A stream that fails for good fails only the requests it had: the next
// batches go to a new stream in its slot and to the others.
func TestAFailedStreamIsReplacedAlone(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv, WithStreams(2), WithRecovery(false))
	ctx := context.Background()
	for k := range 4 { // both slots in use
		rec := makeBatch(k*100, 100, 10)
		if _, err := w.SendBatchAsync(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.InjectFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall}); err != nil {
		t.Fatal(err)
	}
	rec := makeBatch(400, 100, 10)
	res, _ := w.SendBatch(ctx, rec) // one stream fails, without recovery
	rec.Release()
	if res.FailedCount != 100 {
		t.Fatalf("the batch on the failing stream: %v", res)
	}
	for k := 5; k < 9; k++ {
		rec := makeBatch(k*100, 100, 10)
		res, err := w.SendBatch(ctx, rec)
		rec.Release()
		if err != nil || res.SuccessfulCount != 100 {
			t.Fatalf("batch %d after one stream failed: %v, %v", k, res, err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ids := tableIDs(t, srv)
	for id := range 900 {
		if want := map[bool]int{true: 0, false: 1}[id >= 400 && id < 500]; ids[int64(id)] != want {
			t.Fatalf("id %d stored %d times, want %d", id, ids[int64(id)], want)
		}
	}
}
