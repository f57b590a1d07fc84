package zerobustest

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
)

// quantile returns the q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// pingPong sends one single-record request at a time on cc until d has
// passed, and returns the time from each send to its acknowledgement.
func pingPong(cc *clientCall, d time.Duration) ([]time.Duration, error) {
	var lats []time.Duration
	rec := rows(0, 1)
	for off, end := int64(0), time.Now().Add(d); time.Now().Before(end); off++ {
		t0 := time.Now()
		if err := cc.st.Send(batchReq(off, rec)); err != nil {
			return lats, err
		}
		for {
			resp, err := cc.st.Recv()
			if err != nil {
				return lats, err
			}
			if a := resp.GetIngestRecordResponse(); a != nil && a.GetDurabilityAckUpToOffset() >= off {
				break
			}
		}
		lats = append(lats, time.Since(t0))
	}
	return lats, cc.st.CloseSend()
}

// The databricks profile acknowledges a request a log-normal time after it
// arrives: measured over many requests (one in flight per stream, on ten
// streams at once) the median is about 150 ms and the p95 well above it.
func TestAckLatencyQuantiles(t *testing.T) {
	s := newServer(t, WithDiscard(), WithProfile(ProfileDatabricks))
	c := dial(t, s)
	const streams = 10
	calls := make([]*clientCall, streams)
	for i := range calls {
		calls[i] = open(t, s, c, testTable)
	}
	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
		errs = make(chan error, streams)
	)
	for _, cc := range calls {
		wg.Go(func() {
			l, err := pingPong(cc, 2500*time.Millisecond)
			if err != nil {
				errs <- err
			}
			mu.Lock()
			lats = append(lats, l...)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(lats)
	med, p95 := quantile(lats, 0.5), quantile(lats, 0.95)
	t.Logf("%d acks: min %v, median %v, p95 %v, max %v", len(lats), lats[0], med, p95, lats[len(lats)-1])
	if len(lats) < 60 {
		t.Fatalf("only %d acknowledgements in 2.5 s on %d streams", len(lats), streams)
	}
	// One request in flight per stream: the distribution's median (150 ms)
	// plus what a loaded machine adds to a round trip.
	if med < 100*time.Millisecond || med > 350*time.Millisecond {
		t.Errorf("median %v, want 100-350 ms", med)
	}
	if p95 <= med || p95 < 250*time.Millisecond || p95 > 2*time.Second {
		t.Errorf("p95 %v (median %v), want 250 ms - 2 s and above the median", p95, med)
	}
}

// burst sends n single-record requests on cc without waiting and returns
// each request's time from send to acknowledgement, checking that the
// acknowledgements come in order and cover every request.
func burst(t *testing.T, cc *clientCall, n int) (lats []time.Duration, total time.Duration) {
	t.Helper()
	sent := make([]time.Time, n)
	start := time.Now()
	go func() {
		rec := rows(0, 1)
		for off := range n {
			sent[off] = time.Now()
			if cc.st.Send(batchReq(int64(off), rec)) != nil {
				return
			}
		}
	}()
	last := int64(-1)
	for last < int64(n-1) {
		resp := cc.recv()
		a := resp.GetIngestRecordResponse()
		if a == nil {
			continue
		}
		now := time.Now()
		up := a.GetDurabilityAckUpToOffset()
		if up <= last || up >= int64(n) {
			t.Fatalf("ack up to %d after %d (of %d requests)", up, last, n)
		}
		for off := last + 1; off <= up; off++ {
			lats = append(lats, now.Sub(sent[off]))
		}
		last = up
	}
	return lats, time.Since(start)
}

// Requests pipeline: 2,000 requests in flight at once are all acknowledged
// about 150 ms after each was sent, not one after the other, and never
// before their delay passed.
func TestAckLatencyPipelines(t *testing.T) {
	s := newServer(t, WithDiscard(), WithAckLatency(AckLatency{Median: 150 * time.Millisecond}))
	cc := open(t, s, dial(t, s), testTable)
	lats, total := burst(t, cc, 2000)
	slices.Sort(lats)
	t.Logf("2000 requests acknowledged in %v: min %v, max %v", total, lats[0], lats[len(lats)-1])
	if lats[0] < 150*time.Millisecond {
		t.Errorf("a request was acknowledged %v after it was sent, before its 150 ms", lats[0])
	}
	if total > 2*time.Second || lats[len(lats)-1] > time.Second {
		t.Errorf("2000 requests took %v (slowest %v): the delays did not overlap", total, lats[len(lats)-1])
	}
}

// With the distribution, a burst's requests see the distribution's delays
// spread across the burst: the median stays near 150 ms instead of every
// request waiting for the slowest draw before it.
func TestAckLatencyBurstMedian(t *testing.T) {
	s := newServer(t, WithDiscard(), WithAckLatency(AckLatency{Median: 150 * time.Millisecond, P95: 500 * time.Millisecond}))
	cc := open(t, s, dial(t, s), testTable)
	lats, total := burst(t, cc, 400)
	slices.Sort(lats)
	med := quantile(lats, 0.5)
	t.Logf("400 requests acknowledged in %v: median %v, p95 %v", total, med, quantile(lats, 0.95))
	// Below the p95 (500 ms), far below the seconds that waiting for the
	// slowest draw ahead would give; the upper bound leaves room for a
	// loaded machine, whose sending adds to every request's wait.
	if med < 100*time.Millisecond || med > 450*time.Millisecond {
		t.Errorf("median %v across the burst, want 100-450 ms", med)
	}
}

// pushResult is what push measured.
type pushResult struct {
	acked   int64         // records acknowledged
	elapsed time.Duration // from the first send
	blocked time.Duration // the sender waited for room in its window
	err     error         // how the call ended, if it ended early
}

func (r pushResult) rate() float64 { return float64(r.acked) / r.elapsed.Seconds() }

// push sends requests of n records on cc as fast as a window of w
// unacknowledged requests allows, for d, then cancels the call.
func push(cc *clientCall, n, w int, d time.Duration) pushResult {
	window := make(chan struct{}, w)
	var acked atomic.Int64
	ended := make(chan error, 1)
	go func() {
		last := int64(-1)
		for {
			resp, err := cc.st.Recv()
			if err != nil {
				ended <- err
				return
			}
			if a := resp.GetIngestRecordResponse(); a != nil {
				for ; last < a.GetDurabilityAckUpToOffset(); last++ {
					<-window
					acked.Add(int64(n))
				}
			}
		}
	}()
	var r pushResult
	recs := rows(0, n)
	start := time.Now()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
send:
	for off := int64(0); ; off++ {
		t0 := time.Now()
		select {
		case window <- struct{}{}:
		case <-deadline.C:
			break send
		case r.err = <-ended:
			break send
		}
		r.blocked += time.Since(t0)
		if err := cc.st.Send(batchReq(off, recs)); err != nil {
			if err != io.EOF {
				r.err = err
			}
			select {
			case r.err = <-ended:
			case <-time.After(5 * time.Second):
			}
			break
		}
	}
	r.elapsed, r.acked = time.Since(start), acked.Load()
	cc.cancel()
	return r
}

func streamStats(t *testing.T, s *Server) []StreamStats {
	t.Helper()
	var st Stats
	if code := doJSON(t, s, http.MethodGet, "/stats", nil, nil, &st); code != 200 {
		t.Fatalf("/stats: HTTP %d", code)
	}
	return st.Streams
}

// A client pushing faster than a stream quota of 2,000 records/s is paced to
// about that rate: the server stops reading the call, the client's window
// fills, and /stats shows the stream's rate and the time it was held back.
func TestStreamQuotaPaces(t *testing.T) {
	s := newServer(t, WithStreamQuota(Quota{RecordsPerSec: 2000}))
	cc := open(t, s, dial(t, s), testTable)
	done := make(chan pushResult, 1)
	go func() { done <- push(cc, 50, 20, 3*time.Second) }()
	time.Sleep(2500 * time.Millisecond)
	mid := streamStats(t, s)
	r := <-done
	t.Logf("acked %d records in %v: %.0f records/s; the window was full %v", r.acked, r.elapsed, r.rate(), r.blocked)
	if r.err != nil {
		t.Fatalf("the call ended: %v", r.err)
	}
	if r.rate() < 1600 || r.rate() > 2500 {
		t.Errorf("%.0f records/s, want about 2000", r.rate())
	}
	if r.blocked < r.elapsed/2 {
		t.Errorf("the window was full %v of %v: the server did not push back", r.blocked, r.elapsed)
	}
	if len(mid) != 1 {
		t.Fatalf("/stats lists %d streams, want 1", len(mid))
	}
	ss := mid[0]
	if ss.Closed != nil || ss.Table != testTable || ss.StreamID == "" || ss.RecordsReceived == 0 || ss.BytesReceived == 0 {
		t.Errorf("stream stats %+v", ss)
	}
	if ss.RecordsPerSec < 1500 || ss.RecordsPerSec > 2600 || ss.BytesPerSec <= 0 {
		t.Errorf("/stats rate %.0f records/s, %.0f bytes/s; want about 2000 records/s", ss.RecordsPerSec, ss.BytesPerSec)
	}
	if ss.ThrottledSeconds < 1 {
		t.Errorf("throttled %.2f s of 2.5 s", ss.ThrottledSeconds)
	}
	testutil.Eventually(t, "the stream to close", func() bool { return s.Stats().StreamsActive == 0 })
	st := s.Stats()
	if len(st.Streams) != 1 || st.Streams[0].Closed == nil || st.Streams[0].ThrottledSeconds < ss.ThrottledSeconds ||
		st.Tables[testTable].ThrottledSeconds < ss.ThrottledSeconds || st.Tables[testTable].BytesReceived == 0 {
		t.Errorf("after close: %+v %+v", st.Streams, st.Tables)
	}
}

// A byte quota paces the same way.
func TestStreamQuotaBytes(t *testing.T) {
	s := newServer(t, WithDiscard(), WithStreamQuota(Quota{BytesPerSec: 50_000}))
	cc := open(t, s, dial(t, s), testTable)
	r := push(cc, 100, 10, 2*time.Second) // about 1 KB per request
	st := s.Stats()
	bps := float64(st.Tables[testTable].BytesReceived) / r.elapsed.Seconds()
	t.Logf("%.0f bytes/s", bps)
	if bps < 35_000 || bps > 65_000 {
		t.Errorf("%.0f bytes/s, want about 50,000", bps)
	}
}

// The table quota is shared: two streams pushing as fast as they can
// together get about the table's 2,000 records/s, while a stream of another
// table gets that table's 2,000 records/s to itself.
func TestTableQuotaAcrossStreams(t *testing.T) {
	s := newServer(t, WithDiscard(), WithTableQuota(Quota{RecordsPerSec: 2000}))
	c := dial(t, s)
	a, b := open(t, s, c, testTable), open(t, s, c, testTable)
	other := open(t, s, c, "main.default.other") // another table is not held back
	res := make([]pushResult, 3)
	var wg sync.WaitGroup
	for i, cc := range []*clientCall{a, b, other} {
		wg.Go(func() { res[i] = push(cc, 50, 20, 3*time.Second) })
	}
	wg.Wait()
	for _, r := range res {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	ra, rb, ro := res[0].rate(), res[1].rate(), res[2].rate()
	t.Logf("records/s: %.0f + %.0f on one table, %.0f on the other", ra, rb, ro)
	if ra+rb < 1600 || ra+rb > 2600 {
		t.Errorf("the two streams of the table got %.0f records/s together, want about 2000", ra+rb)
	}
	if min(ra, rb) < 400 {
		t.Errorf("one stream got %.0f records/s only", min(ra, rb))
	}
	if ro < 1600 || ro > 2600 {
		t.Errorf("the stream of the other table got %.0f records/s, want about 2000", ro)
	}
	st := s.Stats()
	if st.Tables[testTable].ThrottledSeconds < 2 {
		t.Errorf("throttled: %+v", st.Tables)
	}
}

// QuotaReject ends a call over its quota with RESOURCE_EXHAUSTED, after
// acknowledging the requests it took in.
func TestQuotaReject(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
		want string
	}{
		{"stream", WithStreamQuota(Quota{RecordsPerSec: 1000}), "stream quota exceeded"},
		{"table", WithTableQuota(Quota{RecordsPerSec: 1000}), "table main.default.events quota exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opt, WithQuotaMode(QuotaReject))
			cc := open(t, s, dial(t, s), testTable)
			for off := range int64(20) {
				cc.send(batchReq(off, rows(int(off)*100, 100)))
			}
			last, err := cc.end()
			wantCode(t, err, codes.ResourceExhausted, tc.want, "records=1000", "retry in")
			if last < 0 || last >= 19 {
				t.Errorf("acknowledged up to %d before the rejection", last)
			}
			st := s.Stats()
			if len(st.Streams) != 1 || st.Streams[0].QuotaRejections != 1 || st.RecordsAcked != (last+1)*100 {
				t.Errorf("stats %+v, acked %d", st.Streams, st.RecordsAcked)
			}
			if st.Limits.QuotaMode != QuotaReject {
				t.Errorf("limits %+v", st.Limits)
			}
		})
	}
}

// The default profile adds nothing: no latency, no quota.
func TestDefaultProfileUnchanged(t *testing.T) {
	for _, opts := range [][]Option{
		nil,
		{WithProfile(ProfileDatabricks), WithProfile(ProfileDefault)},
	} {
		s := newServer(t, append(opts, WithDiscard())...)
		want := LimitStats{Profile: ProfileDefault, AckLatency: "0", QuotaMode: QuotaPace}
		if got := s.Stats().Limits; got != want {
			t.Fatalf("limits %+v, want %+v", got, want)
		}
		cc := open(t, s, dial(t, s), testTable)
		lats, total := burst(t, cc, 1000)
		slices.Sort(lats)
		if lats[0] > 100*time.Millisecond || total > 10*time.Second {
			t.Errorf("1000 requests took %v, the fastest %v", total, lats[0])
		}
		if ss := s.Stats().Streams; ss[0].ThrottledSeconds != 0 {
			t.Errorf("throttled %v", ss[0].ThrottledSeconds)
		}
	}
	s := newServer(t, WithDiscard(), WithProfile(ProfileDatabricks))
	want := LimitStats{Profile: ProfileDatabricks, AckLatency: "median=150ms,p95=500ms",
		StreamBytesPerSec: 100_000_000, StreamRecordsPerSec: 100_000, TableBytesPerSec: 10_000_000_000, QuotaMode: QuotaPace}
	if got := s.Stats().Limits; got != want {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
}

// The profile applies with storage: records are stored and acknowledged
// after their delay, within the quota.
func TestProfileWithStorage(t *testing.T) {
	s := newServer(t, WithTable(testTable, rowColumns()...), WithProfile(ProfileDatabricks),
		WithAckLatency(AckLatency{Median: 20 * time.Millisecond, P95: 60 * time.Millisecond}),
		WithStreamQuota(Quota{RecordsPerSec: 5000}))
	cc := open(t, s, dial(t, s), testTable)
	start := time.Now()
	for off := range int64(10) {
		cc.send(batchReq(off, rows(int(off)*1000, 1000)))
	}
	cc.waitAck(9)
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("10,000 records at 5,000 records/s acknowledged in %v", d)
	}
	if err := cc.st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.end(); err != nil {
		t.Fatal(err)
	}
	if err := s.Materialize(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.RecordsDurable != 10_000 || st.RecordsMaterialized != 10_000 {
		t.Fatalf("stats %+v", st)
	}
}

// A stream held back by a quota or waiting for its latency lets the server
// shut down at once, and a client that gives up while held back ends its
// call.
func TestProfileWaitsEndPromptly(t *testing.T) {
	s, err := NewServer(WithDiscard(), WithStreamQuota(Quota{RecordsPerSec: 1}))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	gaveUp := open(t, s, c, testTable)
	gaveUp.send(batchReq(0, rows(0, 100)))
	gaveUp.send(batchReq(1, rows(0, 100))) // waits 100 s
	held := open(t, s, c, testTable)
	held.send(batchReq(0, rows(0, 100)))
	held.send(batchReq(1, rows(0, 100)))
	testutil.Eventually(t, "both streams held back", func() bool {
		n := 0
		for _, ss := range s.Stats().Streams {
			if ss.Throttled {
				n++
			}
		}
		return n == 2
	})
	gaveUp.cancel()
	testutil.Eventually(t, "the cancelled stream to end", func() bool { return s.Stats().StreamsActive == 1 })
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	_, err = held.end()
	wantCode(t, err, codes.Unavailable, "shutting down")

	s2, err := NewServer(WithDiscard(), WithAckLatency(AckLatency{Median: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	cc := open(t, s2, dial(t, s2), testTable)
	cc.send(batchReq(0, rows(0, 1)))
	testutil.Eventually(t, "the request", func() bool { return s2.Stats().RecordsReceived == 1 })
	start = time.Now()
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	last, err := cc.end()
	wantCode(t, err, codes.Unavailable)
	if last != -1 {
		t.Errorf("acknowledged %d before its delay", last)
	}

	s3 := newServer(t, WithDiscard(), WithAckLatency(AckLatency{Median: time.Minute}))
	cc = open(t, s3, dial(t, s3), testTable)
	cc.send(batchReq(0, rows(0, 1)))
	testutil.Eventually(t, "the request", func() bool { return s3.Stats().RecordsReceived == 1 })
	cc.cancel()
	testutil.Eventually(t, "the call to end", func() bool { return s3.Stats().StreamsActive == 0 })
}

// Stats keeps the last streams that ended.
func TestStatsKeepsClosedStreams(t *testing.T) {
	s := newServer(t, WithDiscard())
	c := dial(t, s)
	for range maxClosedStreams + 5 {
		cc := open(t, s, c, testTable)
		if err := cc.st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := cc.end(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "every stream closed", func() bool { return s.Stats().StreamsActive == 0 })
	st := s.Stats()
	if len(st.Streams) != maxClosedStreams || st.StreamsOpened != maxClosedStreams+5 {
		t.Fatalf("%d streams listed of %d", len(st.Streams), st.StreamsOpened)
	}
	for i, ss := range st.Streams {
		if ss.Closed == nil || i > 0 && ss.Opened.Before(st.Streams[i-1].Opened) {
			t.Fatalf("stream %d: %+v", i, ss)
		}
	}
}

func TestParseAckLatency(t *testing.T) {
	good := map[string]AckLatency{
		"median=150ms,p95=500ms": {150 * time.Millisecond, 500 * time.Millisecond},
		" p50=10ms , P95=10ms":   {10 * time.Millisecond, 10 * time.Millisecond},
		"150ms":                  {Median: 150 * time.Millisecond},
		"0":                      {},
	}
	for in, want := range good {
		got, err := ParseAckLatency(in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for in, wantErr := range map[string]string{
		"soon":                   "want a duration",
		"median":                 "want a duration",
		"median=1s,p95":          "not key=value",
		"median=x":               "median",
		"p99=1s":                 "unknown key",
		"median=1s,p95=10ms":     "below the median",
		"p95=10ms":               "needs a positive median",
		"-1s":                    "negative",
		"median=150ms,p95=-50ms": "negative",
	} {
		if _, err := ParseAckLatency(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: %v, want an error about %q", in, err, wantErr)
		}
	}
	for l, want := range map[AckLatency]string{
		{}:                    "0",
		{Median: time.Second}: "1s",
		{Median: time.Second, P95: 2 * time.Second}: "median=1s,p95=2s",
	} {
		if l.String() != want {
			t.Errorf("%#v prints %q, want %q", l, l.String(), want)
		}
	}
	// Draws of the distribution: capped at 10 x p95, fixed when p95 is the median.
	l := AckLatency{Median: time.Millisecond, P95: 100 * time.Millisecond}
	for range 1000 {
		if d := l.draw(); d <= 0 || d > time.Second {
			t.Fatalf("draw %v", d)
		}
	}
	if d := (AckLatency{Median: time.Second, P95: time.Second}).draw(); d != time.Second {
		t.Fatalf("fixed draw %v", d)
	}
}

func TestParseQuota(t *testing.T) {
	good := map[string]Quota{
		"bytes=100MB,records=100000":   {100_000_000, 100_000},
		"bytes=10GB":                   {BytesPerSec: 10_000_000_000},
		"records=2k":                   {RecordsPerSec: 2000},
		"bytes=64MiB/s, records=1_000": {64 << 20, 1000},
		"bytes=1.5kb":                  {BytesPerSec: 1500},
		"bytes=512":                    {BytesPerSec: 512},
		"off":                          {},
		"":                             {},
		"0":                            {},
	}
	for in, want := range good {
		got, err := ParseQuota(in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for in, wantErr := range map[string]string{
		"bytes":                        "not key=value",
		"rows=5":                       "unknown key",
		"bytes=5furlong":               "unknown unit",
		"records=-5":                   "not a non-negative amount",
		"records=5MB":                  "unknown unit",
		"bytes=99999999999999999999TB": "not a non-negative amount",
	} {
		if _, err := ParseQuota(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: %v, want an error about %q", in, err, wantErr)
		}
	}
	if s := (Quota{BytesPerSec: 5, RecordsPerSec: 7}).String(); s != "bytes=5,records=7" {
		t.Error(s)
	}
	if s := (Quota{}).String(); s != "off" {
		t.Error(s)
	}
}

func TestProfileOptions(t *testing.T) {
	if p, err := ParseProfile(" Databricks"); err != nil || p != ProfileDatabricks {
		t.Fatal(p, err)
	}
	if m, err := ParseQuotaMode("REJECT"); err != nil || m != QuotaReject {
		t.Fatal(m, err)
	}
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithProfile("fast"), "WithProfile"},
		{WithAckLatency(AckLatency{Median: -1}), "WithAckLatency"},
		{WithStreamQuota(Quota{RecordsPerSec: -1}), "WithStreamQuota"},
		{WithTableQuota(Quota{BytesPerSec: -1}), "WithTableQuota"},
		{WithQuotaMode("drop"), "WithQuotaMode"},
	} {
		if _, err := NewServer(tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want an error of %s", err, tc.want)
		}
	}
}

// A bucket lets a request larger than its burst through and makes the next
// one wait until the debt is paid, so the average rate is exact.
func TestBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBucket(1000, now) // burst 100
	if w := b.take(now, 500); w != 0 {
		t.Fatalf("first take waits %v", w)
	}
	if d := b.debt(now); d != 400*time.Millisecond {
		t.Fatalf("debt %v", d)
	}
	if w := b.take(now.Add(100*time.Millisecond), 10); w != 300*time.Millisecond {
		t.Fatalf("second take waits %v", w)
	}
	if d := b.debt(now.Add(time.Hour)); d != 0 {
		t.Fatalf("debt after an hour %v", d)
	}
	var none *bucket
	if none.take(now, 1) != 0 || none.debt(now) != 0 {
		t.Fatal("a nil bucket limits")
	}
	var w rateWindow
	if r, by := w.rates(now, now); r != 0 || by != 0 {
		t.Fatal(r, by)
	}
	var l *latencySlots
	if l.wait(5, now) != 0 {
		t.Fatal("nil latency waits")
	}
	if (&latencySlots{}).wait(0, now) != 0 {
		t.Fatal("empty latency waits")
	}
}
