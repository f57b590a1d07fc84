package zbwrap

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// benchSizes are encoded row sizes (bytes) with the payload that gives them.
var benchSizes = []struct {
	name    string
	payload int
}{
	{"20B", 16},
	{"220B", 215},
	{"1KB", 1017},
}

const benchRows = 1000

// BenchmarkSendBatch measures SendBatch end to end (Arrow in, acks back)
// against the local server in discard mode, one batch at a time. It reports
// encoded MB/s, rows/s and the p50/p99 latency of one 1,000-row batch.
func BenchmarkSendBatch(b *testing.B) { benchSendBatch(b, 1) }

// BenchmarkSendBatchParallel is BenchmarkSendBatch with 4 concurrent
// senders: their batches pipeline on one stream, so each waits behind the
// others.
func BenchmarkSendBatchParallel(b *testing.B) { benchSendBatch(b, 4) }

func benchSendBatch(b *testing.B, senders int) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			srv := newServer(b, zerobustest.WithDiscard())
			w := newWrapper(b, srv)
			rec := makeBatch(0, benchRows, sz.payload)
			defer rec.Release()
			res, err := w.SendBatch(context.Background(), rec) // opens the stream
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(res.BatchSizeBytes))

			work := make(chan struct{}, senders)
			var mu sync.Mutex
			var lat []time.Duration
			var wg sync.WaitGroup
			for range senders {
				wg.Go(func() {
					var mine []time.Duration
					for range work {
						start := time.Now()
						if _, err := w.SendBatch(context.Background(), rec); err != nil {
							b.Error(err)
						}
						mine = append(mine, time.Since(start))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			}
			start := time.Now()
			for b.Loop() {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			elapsed := time.Since(start)
			reportLatency(b, lat, elapsed)
		})
	}
}

// BenchmarkSendBatchAsync measures pipelined SendBatchAsync from one
// goroutine, flushed at the end.
func BenchmarkSendBatchAsync(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			srv := newServer(b, zerobustest.WithDiscard())
			w := newWrapper(b, srv)
			rec := makeBatch(0, benchRows, sz.payload)
			defer rec.Release()
			res, err := w.SendBatch(context.Background(), rec)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(res.BatchSizeBytes))
			ctx := context.Background()
			start := time.Now()
			for b.Loop() {
				if _, err := w.SendBatchAsync(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N*benchRows)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

func reportLatency(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat)*benchRows)/elapsed.Seconds(), "rows/s")
}

// BenchmarkSendBatchDebug measures SendBatch (one sender, discard-mode
// server) with debug files off and with both debug outputs on, in one
// process: "off" against the code before the hook measured the same (the
// off path is one range over an empty slice).
func BenchmarkSendBatchDebug(b *testing.B) {
	benchModes(b, map[string]func(b *testing.B) []Option{
		"off": func(*testing.B) []Option { return nil },
		"on": func(b *testing.B) []Option {
			return []Option{WithDebug(true), WithDebugOutputDir(b.TempDir()),
				WithDebugMaxFileSize(64 << 20), WithDebugMaxFilesRetained(2)}
		},
	})
}

// BenchmarkSendBatchTelemetry measures SendBatch with telemetry off and on
// (the OpenTelemetry SDK recording every instrument and span, collected by a
// manual reader and a batcher to a discarding exporter), in one process.
// With telemetry off every instrumentation point is a nil check.
func BenchmarkSendBatchTelemetry(b *testing.B) {
	benchModes(b, map[string]func(b *testing.B) []Option{
		"off": func(*testing.B) []Option { return nil },
		"on": func(b *testing.B) []Option {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() {
				_ = mp.Shutdown(context.Background())
				_ = tp.Shutdown(context.Background())
			})
			return []Option{WithMeterProvider(mp), WithTracerProvider(tp)}
		},
	})
}

// benchModes runs SendBatch at each size in each mode, the modes in sorted
// order.
func benchModes(b *testing.B, modes map[string]func(b *testing.B) []Option) {
	for _, mode := range slices.Sorted(maps.Keys(modes)) {
		for _, sz := range benchSizes {
			b.Run(mode+"/"+sz.name, func(b *testing.B) {
				srv := newServer(b, zerobustest.WithDiscard())
				w := newWrapper(b, srv, modes[mode](b)...)
				rec := makeBatch(0, benchRows, sz.payload)
				defer rec.Release()
				ctx := context.Background()
				res, err := w.SendBatch(ctx, rec)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(res.BatchSizeBytes))
				for b.Loop() {
					if _, err := w.SendBatch(ctx, rec); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkStreamsUnderQuota sends 220-byte rows through SendReader to a
// discard-mode server with the service's per-stream quota (100,000
// records/s) and time to durability (median 150 ms, p95 500 ms), with 1, 4
// and 16 streams: what a table takes is the streams' quotas added up, once
// enough is in flight (Little's law: rate times latency).
func BenchmarkStreamsUnderQuota(b *testing.B) {
	srv := newServer(b, zerobustest.WithDiscard(), zerobustest.WithProfile(zerobustest.ProfileDatabricks))
	// 6,000,000 rows (40 batches sent 15 times over: the server discards
	// them), so that a run lasts seconds even at a million rows/s. Its
	// fixed costs (opening the streams, then the last acknowledgements,
	// which wait on the slowest of each stream's final requests: with the
	// profile's log-normal tail, about 1 s) would otherwise weigh as much
	// as the rate: 16 streams moved 0.8 million rows/s over 2,000,000 rows
	// and 1.3 million over 6,000,000.
	const perBatch, distinct, rounds = 10_000, 40, 15
	const rows = perBatch * distinct * rounds
	batches := make([]arrow.RecordBatch, distinct)
	for i := range batches {
		batches[i] = makeBatch(i*perBatch, perBatch, 200)
	}
	defer func() {
		for _, r := range batches {
			r.Release()
		}
	}()
	var recs []arrow.RecordBatch
	for range rounds {
		recs = append(recs, batches...)
	}
	// SendReader's default concurrency: DefaultConcurrency chunks per
	// stream the Wrapper may use.
	for _, n := range []int{1, 4, 16, StreamsAuto} {
		name := fmt.Sprintf("streams=%d", n)
		if n == StreamsAuto {
			name = "streams=auto"
		}
		b.Run(name, func(b *testing.B) {
			w := newWrapper(b, srv, WithStreams(n), WithAckTimeout(30*time.Second))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				rdr, err := array.NewRecordReader(testSchema, recs)
				if err != nil {
					b.Fatal(err)
				}
				res, err := w.SendReader(context.Background(), rdr)
				rdr.Release()
				if err != nil || res.SuccessfulCount != rows {
					b.Fatalf("SendReader: %v, %v", res, err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/time.Since(start).Seconds(), "rows/s")
			b.ReportMetric(float64(w.Stats().Streams), "streams")
		})
	}
}

// BenchmarkSyncSendLatency is the latency of a synchronous SendBatch of
// 1,000 rows when the server takes the real service's time to durability:
// a fixed 150 ms (the engine's overhead is what goes past it) and the
// databricks profile's distribution (median 150 ms, p95 500 ms, with its
// quotas). Run with -benchtime=200x or so for stable percentiles.
func BenchmarkSyncSendLatency(b *testing.B) {
	rec := makeBatch(0, 1000, 200)
	defer rec.Release()
	for _, tc := range []struct {
		name string
		opts []zerobustest.Option
	}{
		{"fixed150ms", []zerobustest.Option{zerobustest.WithAckLatency(zerobustest.AckLatency{Median: 150 * time.Millisecond})}},
		{"databricks", []zerobustest.Option{zerobustest.WithProfile(zerobustest.ProfileDatabricks)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := newServer(b, append([]zerobustest.Option{zerobustest.WithDiscard()}, tc.opts...)...)
			w := newWrapper(b, srv)
			if _, err := w.SendBatch(context.Background(), rec); err != nil { // opens the stream
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if _, err := w.SendBatch(context.Background(), rec); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
			b.ReportMetric(ms(0.5), "p50-ms")
			b.ReportMetric(ms(0.95), "p95-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
		})
	}
}

// BenchmarkTransports compares the transports on the same 1,000-row
// batches against a discard-mode server, pipelined from one goroutine
// (SendBatchAsync, flushed at the end): proto, and arrow uncompressed, with
// LZ4 and with ZSTD. Payloads are random hex digits, so that compression
// meets data that is neither incompressible nor all one byte. MB/s is of Arrow data (the batch's buffers), so the
// transports compare on the same bytes; wire-B/row is what the server
// received per row (requests' bytes: protobuf records, or Arrow IPC after
// compression). Run it with -count to interleave the contenders:
//
//	go test -run '^$' -bench BenchmarkTransports -count 3 ./zbwrap/
func BenchmarkTransports(b *testing.B) {
	contenders := []struct {
		name string
		opts []Option
	}{
		{"proto", nil},
		{"arrow", []Option{WithTransport(TransportArrow)}},
		{"arrow-lz4", []Option{WithTransport(TransportArrow), WithArrowCompression("lz4")}},
		{"arrow-zstd", []Option{WithTransport(TransportArrow), WithArrowCompression("zstd")}},
	}
	for _, sz := range benchSizes[1:] { // 220 B and 1 KB rows
		rec := randomBatch(benchRows, sz.payload)
		for _, c := range contenders {
			b.Run(sz.name+"/"+c.name, func(b *testing.B) {
				srv := newServer(b, zerobustest.WithDiscard())
				w := newWrapper(b, srv, c.opts...)
				ctx := context.Background()
				if _, err := w.SendBatch(ctx, rec); err != nil { // opens the stream
					b.Fatal(err)
				}
				b.SetBytes(arrowBytes(rec))
				wire0 := srv.Stats().BytesReceived
				start := time.Now()
				for b.Loop() {
					if _, err := w.SendBatchAsync(ctx, rec); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(start)
				b.ReportMetric(float64(b.N*benchRows)/elapsed.Seconds(), "rows/s")
				b.ReportMetric(float64(srv.Stats().BytesReceived-wire0)/float64(b.N*benchRows), "wire-B/row")
			})
		}
		rec.Release()
	}
}

// arrowBytes is the size of a batch's Arrow buffers, children included.
func arrowBytes(rec arrow.RecordBatch) int64 {
	var n int64
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, c := range rec.Columns() {
		add(c.Data())
	}
	return n
}

// randomBatch is makeBatch's schema with payloads of random hex digits.
func randomBatch(n, size int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	rng := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, (size+1)/2)
	for i := range n {
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(hex.EncodeToString(raw)[:size])
	}
	return b.NewRecordBatch()
}
