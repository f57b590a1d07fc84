package zerobustest

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A Profile is a set of service limits: how long acknowledgements take and
// how fast a stream and a table may ingest. WithProfile applies one; the
// individual options (WithAckLatency, WithStreamQuota, WithTableQuota)
// change its parts.
type Profile string

// The profiles.
const (
	// ProfileDefault acknowledges as soon as records are durable (an fsync
	// away) and sets no quota: the fast server for tests.
	ProfileDefault Profile = "default"
	// ProfileDatabricks behaves like the real service (the service limits are in package internal/wire's doc.go):
	// time to durability log-normal with median 150 ms and p95 500 ms,
	// 100 MB/s and 100,000 records/s per stream, 10 GB/s per table, a stream
	// over its quota paced.
	ProfileDatabricks Profile = "databricks"
)

// ParseProfile reads a profile name: "default" or "databricks".
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(strings.ToLower(strings.TrimSpace(s))); p {
	case ProfileDefault, ProfileDatabricks:
		return p, nil
	}
	return "", fmt.Errorf("profile %q is not default or databricks", s)
}

// AckLatency is the time from a request's arrival to its acknowledgement
// (on top of the fsync): log-normal with the given median and 95th
// percentile, or fixed at Median when P95 is 0 or equal to Median. The zero
// value adds no latency.
type AckLatency struct {
	Median time.Duration
	P95    time.Duration
}

// Fixed reports whether every request waits exactly Median.
func (l AckLatency) Fixed() bool { return l.P95 == 0 || l.P95 == l.Median }

func (l AckLatency) validate() error {
	switch {
	case l.Median < 0 || l.P95 < 0:
		return errors.New("ack latency must not be negative")
	case l.P95 != 0 && l.P95 < l.Median:
		return fmt.Errorf("ack latency p95 %v is below the median %v", l.P95, l.Median)
	case l.Median == 0 && l.P95 != 0:
		return errors.New("ack latency with a p95 needs a positive median")
	}
	return nil
}

func (l AckLatency) String() string {
	switch {
	case l.Median == 0:
		return "0"
	case l.Fixed():
		return l.Median.String()
	}
	return "median=" + l.Median.String() + ",p95=" + l.P95.String()
}

// z95 is the 95th percentile of the standard normal distribution.
const z95 = 1.6448536269514722

// draw returns one delay: exp(N(ln median, sigma)) with sigma such that the
// 95th percentile is P95, capped at 10 x P95 so that no draw outlasts a
// client's ack timeout.
func (l AckLatency) draw() time.Duration {
	if l.Fixed() {
		return l.Median
	}
	sigma := math.Log(float64(l.P95)/float64(l.Median)) / z95
	d := float64(l.Median) * math.Exp(sigma*rand.NormFloat64())
	return time.Duration(min(d, 10*float64(l.P95)))
}

// ParseAckLatency reads "median=150ms,p95=500ms", a fixed duration such as
// "150ms", or "0" (no added latency).
func ParseAckLatency(s string) (AckLatency, error) {
	s = strings.TrimSpace(s)
	var l AckLatency
	if !strings.Contains(s, "=") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return AckLatency{}, fmt.Errorf("ack latency %q: want a duration or median=D,p95=D", s)
		}
		l.Median = d
	} else {
		for part := range strings.SplitSeq(s, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				return AckLatency{}, fmt.Errorf("ack latency %q: %q is not key=value", s, part)
			}
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return AckLatency{}, fmt.Errorf("ack latency %q: %s: %w", s, k, err)
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "median", "p50":
				l.Median = d
			case "p95":
				l.P95 = d
			default:
				return AckLatency{}, fmt.Errorf("ack latency %q: unknown key %q (median, p95)", s, k)
			}
		}
	}
	if err := l.validate(); err != nil {
		return AckLatency{}, fmt.Errorf("ack latency %q: %w", s, err)
	}
	return l, nil
}

// Quota is a rate limit: bytes (of requests as sent) and records per
// second. Zero means unlimited.
type Quota struct {
	BytesPerSec   int64
	RecordsPerSec int64
}

func (q Quota) validate() error {
	if q.BytesPerSec < 0 || q.RecordsPerSec < 0 {
		return errors.New("quota must not be negative")
	}
	return nil
}

// Unlimited reports whether the quota limits nothing.
func (q Quota) Unlimited() bool { return q.BytesPerSec == 0 && q.RecordsPerSec == 0 }

func (q Quota) String() string {
	if q.Unlimited() {
		return "off"
	}
	var parts []string
	if q.BytesPerSec > 0 {
		parts = append(parts, "bytes="+strconv.FormatInt(q.BytesPerSec, 10))
	}
	if q.RecordsPerSec > 0 {
		parts = append(parts, "records="+strconv.FormatInt(q.RecordsPerSec, 10))
	}
	return strings.Join(parts, ",")
}

// ParseQuota reads "bytes=100MB,records=100000" (either key may be left
// out: unlimited) or "off". Sizes take B, KB, MB, GB (powers of 1000) or
// KiB, MiB, GiB (powers of 1024); records take k and M.
func ParseQuota(s string) (Quota, error) {
	s = strings.TrimSpace(s)
	var q Quota
	if s == "" || strings.EqualFold(s, "off") || s == "0" {
		return q, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Quota{}, fmt.Errorf("quota %q: %q is not key=value", s, part)
		}
		var err error
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "bytes":
			q.BytesPerSec, err = parseAmount(v, byteUnits)
		case "records":
			q.RecordsPerSec, err = parseAmount(v, countUnits)
		default:
			return Quota{}, fmt.Errorf("quota %q: unknown key %q (bytes, records)", s, k)
		}
		if err != nil {
			return Quota{}, fmt.Errorf("quota %q: %s: %w", s, k, err)
		}
	}
	return q, nil
}

var (
	byteUnits = map[string]float64{
		"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	}
	countUnits = map[string]float64{"": 1, "k": 1e3, "m": 1e6}
)

// parseAmount reads a non-negative number with an optional unit suffix
// (per second: "/s" is allowed).
func parseAmount(v string, units map[string]float64) (int64, error) {
	v = strings.TrimSuffix(strings.TrimSpace(v), "/s")
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '_' && r != '-' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], strings.TrimSpace(v[i:])
	}
	mult, ok := units[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(num, "_", ""), 64)
	if err != nil || f < 0 || math.IsInf(f*mult, 0) || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a non-negative amount", v)
	}
	return int64(math.Round(f * mult)), nil
}

// QuotaMode says what a stream over its quota meets.
type QuotaMode string

// The quota modes.
const (
	// QuotaPace slows the stream down: the server stops reading it (HTTP/2
	// flow control then pushes back) and acknowledges it at the quota's
	// rate, so the client's in-flight window fills.
	QuotaPace QuotaMode = "pace"
	// QuotaReject ends the call with RESOURCE_EXHAUSTED instead (after
	// acknowledging the earlier requests; the request over the quota is
	// dropped). Clients treat the code as retryable: they reconnect and
	// send the unacknowledged requests again.
	QuotaReject QuotaMode = "reject"
)

// ParseQuotaMode reads "pace" or "reject".
func ParseQuotaMode(s string) (QuotaMode, error) {
	switch m := QuotaMode(strings.ToLower(strings.TrimSpace(s))); m {
	case QuotaPace, QuotaReject:
		return m, nil
	}
	return "", fmt.Errorf("quota mode %q is not pace or reject", s)
}

// limits are the resolved limits of a server.
type limits struct {
	profile     Profile
	ackLatency  AckLatency
	streamQuota Quota
	tableQuota  Quota
	quotaMode   QuotaMode
}

// profileLimits returns the limits of a profile.
func profileLimits(p Profile) limits {
	l := limits{profile: p, quotaMode: QuotaPace}
	if p == ProfileDatabricks {
		l.ackLatency = AckLatency{Median: 150 * time.Millisecond, P95: 500 * time.Millisecond}
		l.streamQuota = Quota{BytesPerSec: 100_000_000, RecordsPerSec: 100_000}
		l.tableQuota = Quota{BytesPerSec: 10_000_000_000}
	}
	return l
}

// WithProfile applies a profile's limits: ack latency, stream and table
// quotas, and the quota mode (pace). Options after it change single limits.
// Default ProfileDefault.
func WithProfile(p Profile) Option {
	return func(c *config) error {
		if _, err := ParseProfile(string(p)); err != nil {
			return fmt.Errorf("zerobustest: WithProfile: %w", err)
		}
		c.limits = profileLimits(p)
		return nil
	}
}

// WithAckLatency sets the time from a request's arrival to its
// acknowledgement (see AckLatency). Acknowledgements stay cumulative and in
// order, and requests keep flowing while earlier ones wait.
func WithAckLatency(l AckLatency) Option {
	return func(c *config) error {
		if err := l.validate(); err != nil {
			return fmt.Errorf("zerobustest: WithAckLatency: %w", err)
		}
		c.limits.ackLatency = l
		return nil
	}
}

// WithStreamQuota sets the rate limit of each stream (call).
func WithStreamQuota(q Quota) Option {
	return func(c *config) error {
		if err := q.validate(); err != nil {
			return fmt.Errorf("zerobustest: WithStreamQuota: %w", err)
		}
		c.limits.streamQuota = q
		return nil
	}
}

// WithTableQuota sets the rate limit of each table, shared by its streams.
func WithTableQuota(q Quota) Option {
	return func(c *config) error {
		if err := q.validate(); err != nil {
			return fmt.Errorf("zerobustest: WithTableQuota: %w", err)
		}
		c.limits.tableQuota = q
		return nil
	}
}

// WithQuotaMode sets what a stream over a quota meets: QuotaPace (the
// default) or QuotaReject.
func WithQuotaMode(m QuotaMode) Option {
	return func(c *config) error {
		if _, err := ParseQuotaMode(string(m)); err != nil {
			return fmt.Errorf("zerobustest: WithQuotaMode: %w", err)
		}
		c.limits.quotaMode = m
		return nil
	}
}

// quotaBurst is how much a bucket holds: this long at its rate.
const quotaBurst = 100 * time.Millisecond

// bucket is a token bucket that may go into debt: a request is let through
// once the bucket is not in debt, and takes its cost, so that the average
// rate is exact even for requests larger than the burst.
type bucket struct {
	mu    sync.Mutex
	rate  float64 // units per second
	burst float64
	level float64
	last  time.Time
}

func newBucket(rate int64, now time.Time) *bucket {
	if rate <= 0 {
		return nil
	}
	b := &bucket{rate: float64(rate), burst: float64(rate) * quotaBurst.Seconds(), last: now}
	b.level = b.burst
	return b
}

// refill brings the level up to now; b.mu is held.
func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.level = min(b.burst, b.level+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// debt returns how long until the bucket is out of debt (0: now).
func (b *bucket) debt(now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if b.level >= 0 {
		return 0
	}
	return time.Duration(-b.level / b.rate * float64(time.Second))
}

// take charges n units and returns how long the caller must wait before it
// may use them: the time until the bucket was out of debt before this
// charge. Later callers queue behind it.
func (b *bucket) take(now time.Time, n int) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	var wait time.Duration
	if b.level < 0 {
		wait = time.Duration(-b.level / b.rate * float64(time.Second))
	}
	b.level -= float64(n)
	return wait
}

// quota is the pair of buckets of a stream or a table.
type quota struct{ bytes, records *bucket }

func newQuota(q Quota, now time.Time) quota {
	return quota{bytes: newBucket(q.BytesPerSec, now), records: newBucket(q.RecordsPerSec, now)}
}

// none reports whether the quota limits nothing.
func (q quota) none() bool { return q.bytes == nil && q.records == nil }

func (q quota) debt(now time.Time) time.Duration {
	return max(q.bytes.debt(now), q.records.debt(now))
}

func (q quota) take(now time.Time, bytes, records int) time.Duration {
	return max(q.bytes.take(now, bytes), q.records.take(now, records))
}

// latencySlots releases the acknowledgements of one call. Each request
// draws a delay when it arrives; the drawn times are released in time
// order, and each release lets the oldest request not yet released be
// acknowledged. One request in flight at a time waits exactly its own
// draw; a burst of requests is acknowledged at the burst's drawn times,
// sorted: the delays seen across the burst follow the distribution, rather
// than every request waiting for the slowest draw before it, as strictly
// per-request delays under cumulative acknowledgements would make them.
type latencySlots struct {
	lat      AckLatency
	mu       sync.Mutex
	pending  timeHeap
	released int64 // requests released so far
}

// add draws the delay of a request arriving at at.
func (l *latencySlots) add(at time.Time) {
	l.mu.Lock()
	heap.Push(&l.pending, at.Add(l.lat.draw()))
	l.mu.Unlock()
}

// wait returns how long until the request at offset off (the off+1-th of
// the call) is released; 0 when it is.
func (l *latencySlots) wait(off int64, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.released <= off {
		if len(l.pending) == 0 {
			// Cannot happen: the request's own draw is pending. Release it
			// rather than hang.
			return 0
		}
		if d := l.pending[0].Sub(now); d > 0 {
			return d
		}
		heap.Pop(&l.pending)
		l.released++
	}
	return 0
}

// timeHeap is a min-heap of times.
type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// rateSlot and rateSlots measure recent rates.
const (
	rateSlot  = 100 * time.Millisecond
	rateSlots = 20 // the window: 2 s
)

// RateWindow is the window over which Stats reports rates.
const RateWindow = rateSlot * rateSlots

// rateWindow counts records and bytes in slots of rateSlot.
type rateWindow struct {
	mu    sync.Mutex
	slots [rateSlots]struct{ idx, records, bytes int64 }
}

func (w *rateWindow) add(now time.Time, records, bytes int) {
	idx := now.UnixNano() / int64(rateSlot)
	w.mu.Lock()
	s := &w.slots[idx%rateSlots]
	if s.idx != idx {
		s.idx, s.records, s.bytes = idx, 0, 0
	}
	s.records += int64(records)
	s.bytes += int64(bytes)
	w.mu.Unlock()
}

// rates returns records and bytes per second over the window ending now, or
// since start when that is later (but over one slot at least).
func (w *rateWindow) rates(now, start time.Time) (records, bytes float64) {
	cur := now.UnixNano() / int64(rateSlot)
	from := time.Unix(0, (cur-rateSlots+1)*int64(rateSlot))
	if start.After(from) {
		from = start
	}
	span := max(now.Sub(from), rateSlot).Seconds()
	var r, b int64
	w.mu.Lock()
	for _, s := range w.slots {
		if s.idx > cur-rateSlots && s.idx <= cur {
			r, b = r+s.records, b+s.bytes
		}
	}
	w.mu.Unlock()
	return float64(r) / span, float64(b) / span
}
