package zbwrap

import (
	"context"
	"errors"
	"slices"
	"strings"
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
	checkIDsOnce(t, srv, 40_000)
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
	acked    int64 // records acknowledged
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
func (f *fixedStream) Stats() stream.Stats {
	return stream.Stats{Opens: 1, RecordsAcked: f.acked}
}
func (f *fixedStream) Inflight() (int64, int64) { return f.inflight, f.inflight }

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
	opened[3].inflight = 1
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

// behindStream is a fixedStream whose writer can be held back.
type behindStream struct {
	fixedStream
	behind bool
}

func (b *behindStream) WriterBehind() bool { return b.behind }

func TestAutoStreamChoices(t *testing.T) {
	var opened []*behindStream
	m := newAutoStream(3, 100, 1000, func() (batchStream, error) {
		b := &behindStream{}
		opened = append(opened, b)
		return b, nil
	})
	m.idle = time.Hour
	measuredFor(m, 50*time.Millisecond) // nothing acknowledged: slow
	ctx := context.Background()
	send := func() {
		t.Helper()
		if _, err := m.send(ctx, outbound{}, true); err != nil {
			t.Fatal(err)
		}
	}
	// Busy but not pressed: one stream takes everything.
	send()
	opened[0].inflight = 49
	send()
	send()
	if len(opened) != 1 || opened[0].sent != 3 {
		t.Fatalf("%d streams opened below half the window, want 1", len(opened))
	}
	// Half the records window in flight is pressure: another opens.
	opened[0].inflight = 50
	send()
	if len(opened) != 2 || opened[1].sent != 1 {
		t.Fatalf("half the window in flight opened %d streams, want 2", len(opened))
	}
	// The least loaded stream is used while it is not pressed.
	opened[1].inflight = 10
	send()
	if opened[1].sent != 2 || len(opened) != 2 {
		t.Fatalf("the second stream got %d batches (want 2) with %d open", opened[1].sent, len(opened))
	}
	// A writer held back by the server is pressure too; max_streams bounds
	// growth.
	opened[1].behind = true
	send()
	opened[2].behind, opened[2].inflight = true, 5
	send()
	send()
	if len(opened) != 3 || m.count() != 3 || opened[2].sent != 3 {
		t.Fatalf("%d streams opened (want max_streams, 3); the least loaded got %d batches, want 3", len(opened), opened[2].sent)
	}
	// Extra streams idle for m.idle are closed at the next send, their
	// counters kept; the one in use stays.
	m.idle = 0
	opened[0].inflight, opened[2].inflight = 0, 0
	opened[1].inflight = 3 // not idle: kept
	send()
	if !opened[0].closed == !opened[2].closed || opened[1].closed || m.count() != 2 {
		t.Fatalf("closed %v %v %v, %d live; want one idle extra closed, the busy one and the one in use kept",
			opened[0].closed, opened[1].closed, opened[2].closed, m.count())
	}
	if st := m.Stats(); st.Opens != 3 {
		t.Fatalf("Stats().Opens = %d, want 3 (the closed stream's counters kept)", st.Opens)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// measuredFor makes m's rate window as if it had started d ago with what
// the streams have acknowledged so far.
func measuredFor(m *multiStream, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rate = rateWindow{}
	m.slowLocked(time.Now().Add(-d))
}

// A pressed stream opens another only while what the streams hold waits
// autoSlowAcks or more for its acknowledgement (the service's latency, or
// its quota): a local server without quotas presses a stream when it
// shares the CPU, and another stream would only add work.
func TestAutoStreamOpensOnlyWhenSlow(t *testing.T) {
	var opened []*fixedStream
	m := newAutoStream(4, 100, 1000, func() (batchStream, error) {
		f := &fixedStream{}
		opened = append(opened, f)
		return f, nil
	})
	ctx := context.Background()
	sendWith := func(wantOpen int, why string) {
		t.Helper()
		if _, err := m.send(ctx, outbound{}, true); err != nil {
			t.Fatal(err)
		}
		if len(opened) != wantOpen {
			t.Fatalf("%s: %d streams open, want %d", why, len(opened), wantOpen)
		}
	}
	press := func(records int64) {
		for _, f := range opened {
			f.inflight = records
		}
	}
	sendWith(1, "first batch")
	press(60)
	sendWith(2, "pressed before the first measurement: pressure alone")
	press(60)
	sendWith(2, "pressed again within autoRateMin, before the first measurement")
	// Once measured: 120 records in flight, 100,000 acknowledged in 50 ms
	// (2,000,000 a second): they wait 60 µs, a local server.
	measuredFor(m, 50*time.Millisecond)
	opened[0].acked = 100_000
	sendWith(2, "pressed, acknowledged at once")
	// 1,000 acknowledged in 50 ms (20,000 a second) with 120 in flight: 6 ms.
	measuredFor(m, 50*time.Millisecond)
	opened[0].acked += 1000
	sendWith(2, "pressed, 6 ms to acknowledge")
	// 200 in 50 ms (4,000 a second) with 120 in flight: 30 ms; with 600,
	// 150 ms: the service's latency.
	measuredFor(m, 50*time.Millisecond)
	opened[1].acked += 200
	sendWith(2, "pressed, 30 ms to acknowledge")
	press(300)
	measuredFor(m, 50*time.Millisecond)
	opened[1].acked += 200
	sendWith(3, "pressed, 150 ms to acknowledge")
	// Nothing acknowledged while records wait: a quota or the latency.
	press(300)
	measuredFor(m, 50*time.Millisecond)
	sendWith(4, "pressed, nothing acknowledged in 50 ms")
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A pause restarts the measurement, and pressure alone no longer does.
	m2 := newAutoStream(2, 100, 1000, func() (batchStream, error) { return &fixedStream{inflight: 60}, nil })
	if _, err := m2.send(ctx, outbound{}, true); err != nil {
		t.Fatal(err)
	}
	measuredFor(m2, 50*time.Millisecond)
	m2.mu.Lock()
	m2.rate.markAt, m2.rate.nextAt, m2.rate.measured = m2.rate.markAt.Add(-time.Hour), m2.rate.nextAt.Add(-time.Hour), true
	m2.mu.Unlock()
	if _, err := m2.send(ctx, outbound{}, true); err != nil || m2.count() != 1 {
		t.Fatalf("pressed after a pause: %d streams (%v), want 1 until measured again", m2.count(), err)
	}
	if err := m2.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Now()
	if _, ok := w.perSecond(t0, 0); ok {
		t.Fatal("a rate before anything was measured")
	}
	if _, ok := w.perSecond(t0.Add(5*time.Millisecond), 10); ok {
		t.Fatal("a rate over 5 ms, under autoRateMin")
	}
	r, ok := w.perSecond(t0.Add(20*time.Millisecond), 200)
	if !ok || r != 10_000 || !w.measured {
		t.Fatalf("rate %v %v over 20 ms, want 10,000 records/s", r, ok)
	}
	// Past autoRateWindow the marks move: the rate is over the last span.
	if _, ok := w.perSecond(t0.Add(150*time.Millisecond), 1500); !ok {
		t.Fatal("no rate at 150 ms")
	}
	r, _ = w.perSecond(t0.Add(200*time.Millisecond), 2500)
	if r != 20_000 {
		t.Fatalf("rate %v over the marks 150 ms to 200 ms, want 20,000 records/s", r)
	}
	// A total that goes back (a stream's counters left with it) restarts.
	if _, ok := w.perSecond(t0.Add(210*time.Millisecond), 10); ok {
		t.Fatal("a rate from a total that went back")
	}
}

// streams: auto against a server whose streams have a quota: one stream
// is pressed (the server holds its writer back), so more open, and the
// table takes several quotas; every row lands once. Once the load stops,
// the extra streams are closed at the next send.
func TestAutoStreamsGrowAndShrink(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithStreamQuota(zerobustest.Quota{RecordsPerSec: 20_000}),
		zerobustest.WithAckLatency(zerobustest.AckLatency{Median: 20 * time.Millisecond, P95: 40 * time.Millisecond}))
	w := newWrapper(t, srv, WithStreams(StreamsAuto), WithMaxStreams(6))
	w.streamIdle = 300 * time.Millisecond
	// 8 chunks of 5,000 rows in flight: 40,000 records, more than one
	// stream needs to reach its quota (autoPressRecords).
	rdr := readerOf(t, 12, 5000)
	defer rdr.Release()
	ctx := context.Background()
	res, err := w.SendReader(ctx, rdr, WithChunkRows(5000), WithConcurrency(8))
	if err != nil || res.SuccessfulCount != 60_000 {
		t.Fatalf("SendReader: %v, %v", res, err)
	}
	grown := w.Stats().Streams
	t.Logf("auto opened %d streams", grown)
	if grown < 2 || grown > 6 {
		t.Fatalf("auto opened %d streams under a quota, want 2 to max_streams (6)", grown)
	}
	busy := 0
	for _, s := range srv.Stats().Streams {
		if s.Table == testTable && s.RecordsReceived > 0 {
			busy++
		}
	}
	if busy != grown {
		t.Errorf("the server saw %d streams with records, the wrapper %d", busy, grown)
	}
	time.Sleep(400 * time.Millisecond)
	rec := makeBatch(60_000, 10, 10)
	defer rec.Release()
	if res, err := w.SendBatch(ctx, rec); err != nil || res.SuccessfulCount != 10 {
		t.Fatalf("SendBatch after the load: %v, %v", res, err)
	}
	if st := w.Stats(); st.Streams != 1 || st.RowsAcked != 60_010 {
		t.Errorf("after idling: %d streams (want 1), %d rows acknowledged (want 60010)", st.Streams, st.RowsAcked)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkIDsOnce(t, srv, 60_010)
}

// Against a slow service, the streams auto opens make the chunks of a
// large record batch grow: fewer, larger requests, every row stored once.
func TestAutoGrowsChunksAgainstASlowService(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithAckLatency(zerobustest.AckLatency{Median: 150 * time.Millisecond}))
	// A window of 8,000 records presses a stream at 4,000 in flight.
	w := newWrapper(t, srv, WithMaxStreams(8), WithMaxInflightRecords(8000))
	const rows, chunk = 120_000, 500
	rdr := readerOf(t, 1, rows)
	defer rdr.Release()
	ctx := context.Background()
	res, err := w.SendReader(ctx, rdr, WithChunkRows(chunk), WithChunkBytes(0))
	if err != nil || res.SuccessfulCount != rows {
		t.Fatalf("SendReader: %v, %v", res, err)
	}
	streams := w.Stats().Streams
	t.Logf("%d streams, %d chunks", streams, res.Batches)
	if streams < 4 {
		t.Fatalf("auto opened %d streams against 150 ms acknowledgements, want 4 or more", streams)
	}
	if res.Batches >= rows/chunk {
		t.Fatalf("%d chunks of at most %d rows for %d rows: none grew", res.Batches, chunk, rows)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkIDsOnce(t, srv, rows)
}

// The default, streams: auto, keeps a load one stream carries with room
// to spare on that one stream, in order.
func TestDefaultsKeepASmallLoadOnOneStream(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv)
	if w.cfg.Streams != StreamsAuto {
		t.Fatalf("default streams %d, want auto", w.cfg.Streams)
	}
	for i := range 20 {
		rec := makeBatch(i*1000, 1000, 50)
		res, err := w.SendBatch(context.Background(), rec)
		rec.Release()
		if err != nil || res.SuccessfulCount != 1000 {
			t.Fatalf("SendBatch %d: %v, %v", i, res, err)
		}
	}
	if n := w.Stats().Streams; n != 1 {
		t.Fatalf("%d streams for 20 sends of 1,000 rows, want 1", n)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkIDsInOrder(t, srv, 20_000)
}

func TestStreamsAutoSetting(t *testing.T) {
	for _, tc := range []struct {
		doc    string
		format ConfigFormat
		env    string
	}{
		{"streams: auto\nmax_streams: 8\n", ConfigYAML, ""},
		{`{"streams": "auto", "max_streams": 8}`, ConfigJSON, ""},
		{"max_streams: 8\n", ConfigYAML, "AUTO"},
	} {
		var c Config
		err := DecodeConfig([]byte(tc.doc), tc.format, &c, func(k string) (string, bool) {
			return tc.env, k == "ZEROBUS_STREAMS" && tc.env != ""
		})
		if err != nil || c.Streams != StreamsAuto || c.MaxStreams != 8 {
			t.Errorf("%q: streams %d, max_streams %d, %v", tc.doc, c.Streams, c.MaxStreams, err)
		}
		b, err := EncodeConfigJSON(c)
		if err != nil || !strings.Contains(string(b), `"streams":"auto"`) {
			t.Errorf("encoded: %s, %v", b, err)
		}
	}
	// Words and counts only: the Go value of auto is not a number to write.
	for _, doc := range []string{"streams: lots\n", `{"streams": "lots"}`, "streams: -1\n", `{"streams": -1}`} {
		format := ConfigYAML
		if doc[0] == '{' {
			format = ConfigJSON
		}
		var c Config
		err := DecodeConfig([]byte(doc), format, &c, nil)
		if !slices.Equal(settingsOf(err), []string{"streams"}) || !strings.Contains(err.Error(), `whole number or auto, got `) {
			t.Errorf("%q: %v", doc, err)
		}
	}
	if _, err := ParseConfig(nil, func(k string) (string, bool) { return "-1", k == "ZEROBUS_STREAMS" }); !slices.Equal(settingsOf(err), []string{"streams"}) {
		t.Errorf("ZEROBUS_STREAMS=-1: %v", err)
	}
	c := validConfig()
	c.Streams = 4
	if b, _ := EncodeConfigJSON(c); !strings.Contains(string(b), `"streams":4`) {
		t.Errorf("a count is written as a number: %s", b)
	}
}

// SendReader keeps DefaultConcurrency chunks in flight per stream the
// Wrapper may use, unless told otherwise.
func TestReaderConcurrencyFollowsStreams(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		send []SendOption
		want int
	}{
		{nil, nil, DefaultMaxStreams * DefaultConcurrency}, // auto
		{[]Option{WithStreams(1)}, nil, DefaultConcurrency},
		{[]Option{WithStreams(4)}, nil, 4 * DefaultConcurrency},
		{[]Option{WithStreams(StreamsAuto)}, nil, DefaultMaxStreams * DefaultConcurrency},
		{[]Option{WithStreams(StreamsAuto), WithMaxStreams(3)}, nil, 3 * DefaultConcurrency},
		{[]Option{WithStreams(4)}, []SendOption{WithConcurrency(2)}, 2},
	} {
		w, err := New(context.Background(), Config{}, append([]Option{WithWriterDisabled(true), WithTableName(testTable)}, tc.opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		rdr := readerOf(t, 1, 10)
		s, err := w.StartReader(context.Background(), rdr, tc.send...)
		if err != nil {
			t.Fatal(err)
		}
		<-s.Done()
		rdr.Release()
		if got := s.slots.hard; got != tc.want {
			t.Errorf("%d chunks in flight at most, want %d", got, tc.want)
		}
		_ = w.Close(context.Background())
	}
}

// With several streams under the service's latency, a call that fails
// mid-run costs nothing acknowledged: its stream reconnects and replays,
// the others go on, and every row is in the table.
func TestStreamsOneCallKilledMidRun(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithAckLatency(zerobustest.AckLatency{Median: 20 * time.Millisecond, P95: 40 * time.Millisecond}))
	w := newWrapper(t, srv, WithStreams(4))
	if err := srv.InjectFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, AfterRecords: 15_000}); err != nil {
		t.Fatal(err)
	}
	rdr := readerOf(t, 40, 1000)
	defer rdr.Release()
	res, err := w.SendReader(context.Background(), rdr, WithChunkRows(1000))
	if err != nil || res.SuccessfulCount != 40_000 {
		t.Fatalf("SendReader: %v, %v", res, err)
	}
	st := w.Stats()
	if st.CallFailures != 1 || st.Streams != 4 {
		t.Errorf("Stats: %d call failures (want 1), %d streams (want 4)", st.CallFailures, st.Streams)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	dups, ids := 0, tableIDs(t, srv)
	for id := range int64(40_000) {
		switch n := ids[id]; {
		case n == 0:
			t.Fatalf("acknowledged id %d is not in the table", id)
		case n > 1:
			dups += n - 1
		}
	}
	if int64(dups) > st.RecordsMaybeDuplicated {
		t.Errorf("%d duplicates in the table, only %d flagged as possibly duplicated", dups, st.RecordsMaybeDuplicated)
	}
}

// A server that answers RESOURCE_EXHAUSTED to streams over their quota:
// the streams back off and retry until every row is in.
func TestStreamsRideOutResourceExhausted(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithStreamQuota(zerobustest.Quota{RecordsPerSec: 10_000}),
		zerobustest.WithQuotaMode(zerobustest.QuotaReject))
	w := newWrapper(t, srv, WithStreams(2), WithRetryBaseDelay(20*time.Millisecond),
		WithRetryMaxDelay(200*time.Millisecond), WithRetryMaxAttempts(50))
	rdr := readerOf(t, 30, 1000)
	defer rdr.Release()
	res, err := w.SendReader(context.Background(), rdr, WithChunkRows(1000))
	if err != nil || res.SuccessfulCount != 30_000 {
		t.Fatalf("SendReader: %v, %v", res, err)
	}
	st := w.Stats()
	if st.CallFailures == 0 {
		t.Errorf("no call failed: the quota was never met (%+v)", st)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := tableIDs(t, srv)
	for id := range int64(30_000) {
		if ids[id] == 0 {
			t.Fatalf("acknowledged id %d is not in the table", id)
		}
	}
	t.Logf("%d call failures, %d requests replayed", st.CallFailures, st.ReplayedRequests)
}
