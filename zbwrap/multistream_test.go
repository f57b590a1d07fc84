package zbwrap

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
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

// fixedStream is a batchStream that records what reaches it: multiStream's
// own choices (which stream, when to open, replace or refuse) are what the
// unit tests below look at.
type fixedStream struct {
	inflight int64
	err      error
	sent     int
	closed   bool
}

func (f *fixedStream) send(context.Context, outbound, bool) (*stream.Batch, error) {
	f.sent++
	return nil, nil
}
func (f *fixedStream) Flush(context.Context) error { return f.err }
func (f *fixedStream) Close(context.Context) error { f.closed = true; return nil }
func (f *fixedStream) Err() error                  { return f.err }
func (f *fixedStream) Stats() stream.Stats         { return stream.Stats{Opens: 1} }
func (f *fixedStream) Inflight() (int64, int64)    { return f.inflight, f.inflight }

func TestMultiStreamChoices(t *testing.T) {
	var opened []*fixedStream
	var openErr error
	m := newMultiStream(3, func() (batchStream, error) {
		if openErr != nil {
			return nil, openErr
		}
		f := &fixedStream{}
		opened = append(opened, f)
		return f, nil
	})
	ctx := context.Background()
	// An idle stream is used before another opens.
	for range 2 {
		if _, err := m.send(ctx, outbound{}, true); err != nil {
			t.Fatal(err)
		}
	}
	if len(opened) != 1 || opened[0].sent != 2 {
		t.Fatalf("%d streams opened for two batches on an idle stream", len(opened))
	}
	// A busy stream makes the next batch open another, up to the limit;
	// then the least loaded one takes it.
	opened[0].inflight = 10
	_, _ = m.send(ctx, outbound{}, false)
	opened[1].inflight = 5
	_, _ = m.send(ctx, outbound{}, true)
	opened[2].inflight = 7
	_, _ = m.send(ctx, outbound{}, true)
	if len(opened) != 3 || opened[1].sent != 2 || m.count() != 3 {
		t.Fatalf("sent %d, %d, %d with %d streams; want the least loaded, the second, to get two",
			opened[0].sent, opened[1].sent, opened[2].sent, len(opened))
	}
	if r, b := m.Inflight(); r != 22 || b != 22 {
		t.Fatalf("Inflight = %d, %d; want the sum, 22", r, b)
	}
	// A failed stream is closed, its counters kept, and its slot reopened.
	opened[1].err = errors.New("broken")
	if err := m.Flush(ctx); err == nil {
		t.Fatal("Flush hides a stream's error")
	}
	_, _ = m.send(ctx, outbound{}, true)
	if !opened[1].closed || len(opened) != 4 || opened[3].sent != 1 {
		t.Fatal("the failed stream was not replaced in its slot")
	}
	if st := m.Stats(); st.Opens != 4 || m.Err() != nil {
		t.Fatalf("Stats().Opens = %d (want the retired stream's too, 4), Err %v", st.Opens, m.Err())
	}
	// A stream that cannot open is the send's error.
	opened[0].err = errors.New("broken")
	openErr = errors.New("no connection")
	if _, err := m.send(ctx, outbound{}, true); !errors.Is(err, openErr) {
		t.Fatalf("send with no stream to open: %v", err)
	}
	if _, err := m.send(ctx, outbound{}, false); !errors.Is(err, openErr) {
		t.Fatalf("send without waiting with no stream to open: %v", err)
	}
	// After Close, nothing opens.
	openErr = nil
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.send(ctx, outbound{}, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after Close: %v", err)
	}
}
