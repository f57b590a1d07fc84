package zbwrap

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
)

// multiStream spreads the batches of one descriptor over several streams,
// so that what one table takes is not bounded by one stream's quota (the
// service's is per stream: 100 MB/s and 100,000 records/s). Each batch goes
// whole to the stream with the least in flight; each stream keeps its own
// offsets, window, recovery and replay, so a stream that fails fails only
// the requests it had, and is replaced for the next batch. Order holds
// within a stream only: batches on different streams may land in any
// order (streams: 1 keeps the total order).
type multiStream struct {
	open func() (batchStream, error)
	// auto: start with one stream and open another only while the live
	// ones are pressed; close an extra one idle for idle.
	auto  bool
	idle  time.Duration
	press [2]int64 // in flight (records, bytes) on one stream that is pressure

	mu       sync.Mutex
	rate     rateWindow // auto: what the streams acknowledge, for slowLocked
	closed   bool
	streams  []batchStream // nil slots are opened on first use (fixed) or under pressure (auto)
	lastUsed []time.Time   // of each slot, for auto's idle check
	closing  []batchStream // idle ones being closed, counted until retired
	retired  stream.Stats  // of the streams replaced after failing or closed idle
}

var _ batchStream = (*multiStream)(nil)

// defaultStreamIdle is how long an extra stream of streams: auto may sit
// with nothing in flight before it is closed.
const defaultStreamIdle = 10 * time.Second

func newMultiStream(n int, open func() (batchStream, error)) *multiStream {
	return &multiStream{open: open, streams: make([]batchStream, n), lastUsed: make([]time.Time, n)}
}

// Pressure on one stream of streams: auto. By Little's law a stream moves
// what it holds in flight divided by the time to durability: with the
// service's ~150 ms and its quota of 100,000 records/s and 100 MB/s per
// stream, 15,000 records or 15 MB in flight already reach the quota. A
// stream holding more than 0.2 s of its quota waits on the quota, not on
// latency, and another stream adds throughput.
const (
	autoPressRecords = 20_000
	autoPressBytes   = 20 << 20
)

// What auto measures before it opens a stream: how long what the streams
// hold in flight waits for its acknowledgement (in flight over the rate of
// acknowledged records, Little's law). Against the service that is its
// time to durability (about 150 ms) or longer, when a quota paces the
// stream; another stream then adds what one stream moves. Against a local
// server without quotas it is the few milliseconds the client and the
// server take on the CPU they share, and another stream only adds work:
// 16 streams moved 0.7x what one did on loopback.
const (
	// autoSlowAcks is the wait that tells the two apart.
	autoSlowAcks = 100 * time.Millisecond
	// autoRateWindow is the shortest span the rate is measured over once
	// it is known; nothing measured for 10 of them restarts the window.
	autoRateWindow = 25 * time.Millisecond
	// autoRateMin is the shortest span measured at all.
	autoRateMin = 10 * time.Millisecond
)

// rateWindow measures the records acknowledged per second: from mark (at
// least autoRateWindow ago once that long has passed) to now.
type rateWindow struct {
	markAt, nextAt time.Time
	mark, next     int64     // records acknowledged at markAt, nextAt
	measured       bool      // a rate was returned since the window was made
	unmeasuredGrow time.Time // when pressure alone last let a stream open
}

// perSecond returns the records acknowledged per second since the mark,
// given the total now, and moves the marks along; ok is false until
// autoRateMin has been measured since a (re)start.
func (w *rateWindow) perSecond(now time.Time, acked int64) (rate float64, ok bool) {
	if w.markAt.IsZero() || now.Sub(w.nextAt) > 10*autoRateWindow || acked < w.next {
		w.markAt, w.nextAt, w.mark, w.next = now, now, acked, acked
		return 0, false
	}
	if now.Sub(w.nextAt) >= autoRateWindow {
		w.markAt, w.mark = w.nextAt, w.next
		w.nextAt, w.next = now, acked
	}
	dt := now.Sub(w.markAt)
	if dt < autoRateMin {
		return 0, false
	}
	w.measured = true
	return float64(acked-w.mark) / dt.Seconds(), true
}

// slowLocked reports whether what the streams hold waits autoSlowAcks or
// more for its acknowledgement: only then may auto open another stream.
func (m *multiStream) slowLocked(now time.Time) bool {
	acked, inflight := m.retired.RecordsAcked, int64(0)
	for _, group := range [...][]batchStream{m.streams, m.closing} { // no copy: this runs at every pressed pick
		for _, s := range group {
			if s != nil {
				acked += s.Stats().RecordsAcked
				r, _ := s.Inflight()
				inflight += r
			}
		}
	}
	rate, ok := m.rate.perSecond(now, acked)
	if !ok {
		// Before the first measurement, pressure alone, one stream per
		// autoRateMin: a send's first chunks would otherwise all go to the
		// first stream, and a local server is measured before it has
		// more than two. After it, a pause (nothing measured since) waits
		// for a new measurement.
		if m.rate.measured || now.Sub(m.rate.unmeasuredGrow) < autoRateMin {
			return false
		}
		m.rate.unmeasuredGrow = now
		return true
	}
	return float64(inflight) >= rate*autoSlowAcks.Seconds()
}

// newAutoStream is the multiStream of streams: auto, with up to n streams
// whose windows are records and bytes.
func newAutoStream(n int, records, bytes int64, open func() (batchStream, error)) *multiStream {
	m := newMultiStream(n, open)
	m.auto, m.idle = true, defaultStreamIdle
	m.press = [2]int64{min(autoPressRecords, max(records/2, 1)), min(autoPressBytes, max(bytes/2, 1))}
	return m
}

// writerBehind is what a transport tells of its writer: held back by the
// server (or reconnecting), so that queued requests wait to be written.
type writerBehind interface{ WriterBehind() bool }

// pressed reports whether a stream has as much in flight as it usefully
// can: 0.2 s of the service's quota (or half its window, if smaller), or a
// writer the server holds back. A local server without quotas presses a
// stream too, when both share the CPU: slowLocked tells them apart.
func (m *multiStream) pressed(s batchStream) bool {
	r, b := s.Inflight()
	if r >= m.press[0] || b >= m.press[1] {
		return true
	}
	wb, ok := s.(writerBehind)
	return ok && wb.WriterBehind()
}

// pick returns the stream for the next batch, and idle streams the caller
// closes (closeIdle) once it has sent. A failed stream is retired and its
// slot freed. With a fixed count, an unused slot gets a new stream unless a
// live one is idle; with auto, only when the least loaded live stream is
// pressed. Otherwise the batch goes to the live stream with the fewest
// bytes in flight.
func (m *multiStream) pick() (batchStream, []batchStream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, closedError("send")
	}
	best, free := -1, -1
	var bestBytes int64
	for i, s := range m.streams {
		if s != nil && s.Err() != nil {
			_ = s.Close(context.Background()) // failed: its requests are resolved
			addStreamStats(&m.retired, s.Stats())
			m.streams[i], s = nil, nil
		}
		if s == nil {
			if free < 0 {
				free = i
			}
			continue
		}
		if _, b := s.Inflight(); best < 0 || b < bestBytes {
			best, bestBytes = i, b
		}
	}
	now := time.Now()
	grow := best < 0
	if !grow && free >= 0 {
		if m.auto {
			grow = m.pressed(m.streams[best]) && m.slowLocked(now)
		} else {
			grow = bestBytes > 0 // an idle live stream is as good as a new one
		}
	}
	if grow && free >= 0 {
		ns, err := m.open()
		if err != nil {
			return nil, nil, err
		}
		m.streams[free], m.lastUsed[free] = ns, now
		return ns, nil, nil
	}
	m.lastUsed[best] = now
	return m.streams[best], m.idleLocked(best, now), nil
}

// idleLocked detaches the extra streams of auto that have had nothing in
// flight for m.idle, keeping the one in use; the caller closes them.
func (m *multiStream) idleLocked(keep int, now time.Time) []batchStream {
	if !m.auto {
		return nil
	}
	var idle []batchStream
	for i, s := range m.streams {
		if s == nil || i == keep || now.Sub(m.lastUsed[i]) < m.idle {
			continue
		}
		if r, b := s.Inflight(); r == 0 && b == 0 {
			idle = append(idle, s)
			m.streams[i] = nil
		}
	}
	m.closing = append(m.closing, idle...)
	return idle
}

// closeIdle closes streams pick detached and retires them. They have
// nothing in flight, so this ends their calls and nothing else.
func (m *multiStream) closeIdle(idle []batchStream) {
	if len(idle) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range idle {
		_ = s.Close(ctx)
		m.mu.Lock()
		addStreamStats(&m.retired, s.Stats())
		m.closing = slices.DeleteFunc(m.closing, func(c batchStream) bool { return c == s })
		m.mu.Unlock()
	}
}

func (m *multiStream) send(ctx context.Context, out outbound, block bool) (*stream.Batch, error) {
	s, idle, err := m.pick()
	if err != nil {
		return nil, err
	}
	b, err := s.send(ctx, out, block)
	m.closeIdle(idle)
	return b, err
}

// live returns the streams opened so far.
func (m *multiStream) live() []batchStream {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]batchStream, 0, len(m.streams))
	for _, s := range m.streams {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (m *multiStream) Flush(ctx context.Context) error {
	var errs []error
	for _, s := range m.live() {
		errs = append(errs, s.Flush(ctx))
	}
	return errors.Join(errs...)
}

func (m *multiStream) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true                    // no stream opens after this
	closing := slices.Clone(m.closing) // idle ones a send is closing: closed here too, so none outlives this
	m.mu.Unlock()
	var wg sync.WaitGroup
	live := append(m.live(), closing...)
	errs := make([]error, len(live))
	for i, s := range live {
		wg.Go(func() { errs[i] = s.Close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Err is nil: a failed stream is replaced at the next batch, and only the
// requests it had fail.
func (m *multiStream) Err() error { return nil }

func (m *multiStream) Stats() stream.Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.retired
	for _, s := range m.streams {
		if s != nil {
			addStreamStats(&st, s.Stats())
		}
	}
	for _, s := range m.closing {
		addStreamStats(&st, s.Stats())
	}
	return st
}

func (m *multiStream) Inflight() (records, bytes int64) {
	for _, s := range m.live() {
		r, b := s.Inflight()
		records += r
		bytes += b
	}
	return records, bytes
}

// count is the number of streams opened now.
func (m *multiStream) count() int { return len(m.live()) }
