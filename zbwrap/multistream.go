package zbwrap

import (
	"context"
	"errors"
	"sync"

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

	mu      sync.Mutex
	closed  bool
	streams []batchStream // nil slots are opened on first use
	retired stream.Stats  // of the streams replaced after failing
}

var _ batchStream = (*multiStream)(nil)

func newMultiStream(n int, open func() (batchStream, error)) *multiStream {
	return &multiStream{open: open, streams: make([]batchStream, n)}
}

// pick returns the stream for the next batch: an unused slot's new stream,
// or the live stream with the fewest bytes in flight. A failed stream is
// retired and its slot reopened.
func (m *multiStream) pick() (batchStream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, closedError("send")
	}
	var best batchStream
	var bestBytes int64
	for i, s := range m.streams {
		if s != nil && s.Err() != nil {
			_ = s.Close(context.Background()) // failed: its requests are resolved
			addStreamStats(&m.retired, s.Stats())
			m.streams[i], s = nil, nil
		}
		if s == nil {
			if best != nil && bestBytes == 0 {
				continue // an idle live stream is as good as a new one
			}
			ns, err := m.open()
			if err != nil {
				return nil, err
			}
			m.streams[i] = ns
			return ns, nil
		}
		if _, b := s.Inflight(); best == nil || b < bestBytes {
			best, bestBytes = s, b
		}
	}
	return best, nil
}

func (m *multiStream) send(ctx context.Context, out outbound, block bool) (*stream.Batch, error) {
	s, err := m.pick()
	if err != nil {
		return nil, err
	}
	return s.send(ctx, out, block)
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
	m.closed = true // no stream opens after this
	m.mu.Unlock()
	var wg sync.WaitGroup
	live := m.live()
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
