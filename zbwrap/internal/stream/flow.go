package stream

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// flow bounds what is queued or in flight on a stream by record count and by
// bytes: two weighted semaphores, taken records first. A request heavier than
// a limit is counted as the limit, so it can always go once the window is
// empty.
type flow struct {
	maxRecords, maxBytes int64
	records, bytes       *semaphore.Weighted
	// What is held now, unclamped: for Stream.Inflight.
	heldRecords, heldBytes atomic.Int64
}

func newFlow(maxRecords, maxBytes int64) *flow {
	return &flow{
		maxRecords: maxRecords,
		maxBytes:   maxBytes,
		records:    semaphore.NewWeighted(maxRecords),
		bytes:      semaphore.NewWeighted(maxBytes),
	}
}

// weight clamps a request's size to the limits.
func (f *flow) weight(records, bytes int) (int64, int64) {
	r, b := int64(records), int64(bytes)
	r = min(r, f.maxRecords)
	b = min(b, f.maxBytes)
	return r, b
}

// acquire blocks until the request fits or ctx ends.
func (f *flow) acquire(ctx context.Context, records, bytes int) error {
	r, b := f.weight(records, bytes)
	if err := f.records.Acquire(ctx, r); err != nil {
		return err
	}
	if err := f.bytes.Acquire(ctx, b); err != nil {
		f.records.Release(r)
		return err
	}
	f.hold(records, bytes)
	return nil
}

func (f *flow) hold(records, bytes int) {
	f.heldRecords.Add(int64(records))
	f.heldBytes.Add(int64(bytes))
}

// tryAcquire takes room only if it is free now.
func (f *flow) tryAcquire(records, bytes int) bool {
	r, b := f.weight(records, bytes)
	if !f.records.TryAcquire(r) {
		return false
	}
	if !f.bytes.TryAcquire(b) {
		f.records.Release(r)
		return false
	}
	f.hold(records, bytes)
	return true
}

func (f *flow) release(records, bytes int) {
	r, b := f.weight(records, bytes)
	f.hold(-records, -bytes)
	f.bytes.Release(b)
	f.records.Release(r)
}
