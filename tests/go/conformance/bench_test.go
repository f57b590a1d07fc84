package conformance

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/databricks/zerobus-sdk/purego/zerobus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pyzerobus/pyzerobus/zbwrap"
	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// The same rows for every client: an int64 id, an int64 timestamp and a
// string payload sized so that one encoded record is about the named size.
var benchSizes = []struct {
	name    string
	payload int
}{
	{"20B", 9},
	{"220B", 205},
	{"1KB", 1007},
}

const benchBatchRows = 1000

var benchSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "ts", Type: arrow.PrimitiveTypes.Int64},
	{Name: "payload", Type: arrow.BinaryTypes.String},
}, nil)

func benchBatch(payload int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, benchSchema)
	defer b.Release()
	text := strings.Repeat("x", payload)
	for i := range benchBatchRows {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Int64Builder).Append(1_700_000_000_000_000 + int64(i))
		b.Field(2).(*array.StringBuilder).Append(text)
	}
	return b.NewRecordBatch()
}

const benchTable = "main.bench.rows"

func discardServer(b *testing.B) *zerobustest.Server {
	srv, err := zerobustest.NewServer(zerobustest.WithTLS(), zerobustest.WithDiscard(),
		zerobustest.WithClient(clientID, clientSecret))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	return srv
}

func newWrapper(b *testing.B, srv *zerobustest.Server) *zbwrap.Wrapper {
	w, err := zbwrap.New(context.Background(), zbwrap.Config{
		ZerobusEndpoint: srv.Endpoint(),
		UnityCatalogURL: srv.WorkspaceURL(),
		ClientID:        clientID,
		ClientSecret:    clientSecret,
		TableName:       benchTable,
	}, zbwrap.WithRootCAs(srv.CertPool()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

func pureGoStream(b *testing.B, srv *zerobustest.Server, desc []byte) *zerobus.Stream {
	sdk := newSDK(b, srv)
	st, err := sdk.CreateStream(context.Background(), benchTable, clientID, clientSecret,
		zerobus.WithProto(desc), zerobus.WithWaitForReady())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st
}

// BenchmarkIngest runs, in one command and against one discard-mode server
// over TLS, the same rows through:
//
//   - zbwrap/sync: SendBatch from Arrow, one 1,000-row batch at a time,
//     each waited for (reports p50/p99 batch latency);
//   - zbwrap/async: SendBatchAsync from Arrow, pipelined, flushed at the end;
//   - purego/preencoded: Databricks' pure-Go SDK given records already
//     encoded, 1,000 per IngestRecordsOffset call, flushed at the end;
//   - purego/dynamicpb: the same SDK starting from the Arrow batch the way
//     its users must: a dynamicpb message per row, proto.Marshal, ingest;
//   - tls-floor, tls-floor-2conns: no client at all, only TLS over loopback,
//     one connection or two at once, carrying 1 MiB writes to readers that
//     decrypt and discard (see benchTLSFloor). They are the same for every
//     row size, and are repeated under each so that a pattern such as
//     'BenchmarkIngest/.*/1KB' keeps them beside the clients.
//
// MB/s counts encoded record bytes, the same for every client.
func BenchmarkIngest(b *testing.B) {
	for _, sz := range benchSizes {
		rec := benchBatch(sz.payload)
		sch, err := arrowproto.NewSchema(benchSchema)
		if err != nil {
			b.Fatal(err)
		}
		enc, err := sch.Encode(rec)
		if err != nil {
			b.Fatal(err)
		}
		pre := make([][]byte, len(enc.Records))
		for i, r := range enc.Records {
			pre[i] = slices.Clone(r)
		}
		bytesPerBatch := int64(enc.Bytes)

		b.Run("zbwrap-sync/"+sz.name, func(b *testing.B) {
			w := newWrapper(b, discardServer(b))
			ctx := context.Background()
			if _, err := w.SendBatch(ctx, rec); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(bytesPerBatch)
			var lat []time.Duration
			start := time.Now()
			for b.Loop() {
				t0 := time.Now()
				if _, err := w.SendBatch(ctx, rec); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportRate(b, len(lat), time.Since(start))
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})

		b.Run("zbwrap-async/"+sz.name, func(b *testing.B) {
			w := newWrapper(b, discardServer(b))
			ctx := context.Background()
			if _, err := w.SendBatch(ctx, rec); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(bytesPerBatch)
			n := 0
			start := time.Now()
			for b.Loop() {
				if _, err := w.SendBatchAsync(ctx, rec); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := w.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			reportRate(b, n, time.Since(start))
		})

		b.Run("purego-preencoded/"+sz.name, func(b *testing.B) {
			st := pureGoStream(b, discardServer(b), sch.DescriptorBytes())
			b.SetBytes(bytesPerBatch)
			n := 0
			start := time.Now()
			for b.Loop() {
				if _, err := st.IngestRecordsOffset(pre); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := st.Flush(); err != nil {
				b.Fatal(err)
			}
			reportRate(b, n, time.Since(start))
		})

		b.Run("purego-dynamicpb/"+sz.name, func(b *testing.B) {
			st := pureGoStream(b, discardServer(b), sch.DescriptorBytes())
			md := messageDescriptor(b, sch.Descriptor())
			b.SetBytes(bytesPerBatch)
			n := 0
			start := time.Now()
			for b.Loop() {
				if _, err := st.IngestRecordsOffset(dynamicpbRows(b, md, rec)); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := st.Flush(); err != nil {
				b.Fatal(err)
			}
			reportRate(b, n, time.Since(start))
		})
		b.Run("tls-floor/"+sz.name, benchTLSFloor(1))
		b.Run("tls-floor-2conns/"+sz.name, benchTLSFloor(2))
		rec.Release()
	}
}

// BenchmarkStreamMemory streams 1 GB of 220-byte rows through SendBatchAsync
// and reports the peak Go heap in use, sampled every millisecond: the
// in-flight window, not the data size, must bound it.
func BenchmarkStreamMemory(b *testing.B) {
	const total = 1 << 30
	rec := benchBatch(205)
	defer rec.Release()
	for b.Loop() {
		w := newWrapper(b, discardServer(b))
		ctx := context.Background()
		res, err := w.SendBatch(ctx, rec)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			var ms runtime.MemStats
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}
		})
		batches := total / res.BatchSizeBytes
		for range batches {
			if _, err := w.SendBatchAsync(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		close(stop)
		wg.Wait()
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(base.HeapInuse)/(1<<20), "base-heap-MB")
		b.ReportMetric(float64(batches*res.BatchSizeBytes)/(1<<20), "sent-MB")
	}
}

func reportRate(b *testing.B, batches int, elapsed time.Duration) {
	b.ReportMetric(float64(batches*benchBatchRows)/elapsed.Seconds(), "rows/s")
}

func messageDescriptor(b *testing.B, d *descriptorpb.DescriptorProto) protoreflect.MessageDescriptor {
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("bench.proto"),
		Syntax:      proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{d},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return fd.Messages().Get(0)
}

// dynamicpbRows converts an Arrow batch row by row the way a user of the
// SDK must: one dynamicpb message per row, marshalled.
func dynamicpbRows(b *testing.B, md protoreflect.MessageDescriptor, rec arrow.RecordBatch) [][]byte {
	ids := rec.Column(0).(*array.Int64)
	ts := rec.Column(1).(*array.Int64)
	payload := rec.Column(2).(*array.String)
	fID, fTS, fPayload := md.Fields().Get(0), md.Fields().Get(1), md.Fields().Get(2)
	out := make([][]byte, rec.NumRows())
	for i := range out {
		m := dynamicpb.NewMessage(md)
		m.Set(fID, protoreflect.ValueOfInt64(ids.Value(i)))
		m.Set(fTS, protoreflect.ValueOfInt64(ts.Value(i)))
		m.Set(fPayload, protoreflect.ValueOfString(payload.Value(i)))
		raw, err := proto.Marshal(m)
		if err != nil {
			b.Fatal(fmt.Errorf("row %d: %w", i, err))
		}
		out[i] = raw
	}
	return out
}

// BenchmarkIngestDatabricksProfile runs 220-byte rows against a
// discard-mode server with the databricks profile (about 150 ms to
// durability, p95 500 ms; 100,000 records/s and 100 MB/s per stream): what a
// user of the real service gets. zbwrap sends a reader of 200 batches with
// 1, 4 and 16 streams; Databricks' pure-Go SDK runs the way its users run it,
// one stream, IngestRecordsOffset with 1,000 records at a time, flushed at
// the end. rows/s is the figure to read.
func BenchmarkIngestDatabricksProfile(b *testing.B) {
	const batches = 1000
	rec := benchBatch(205)
	defer rec.Release()
	sch, err := arrowproto.NewSchema(benchSchema)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := sch.Encode(rec)
	if err != nil {
		b.Fatal(err)
	}
	pre := make([][]byte, len(enc.Records))
	for i, r := range enc.Records {
		pre[i] = slices.Clone(r)
	}
	profileServer := func(b *testing.B) *zerobustest.Server {
		srv, err := zerobustest.NewServer(zerobustest.WithTLS(), zerobustest.WithDiscard(),
			zerobustest.WithProfile(zerobustest.ProfileDatabricks), zerobustest.WithClient(clientID, clientSecret))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = srv.Close() })
		return srv
	}
	recs := make([]arrow.RecordBatch, batches)
	for i := range recs {
		recs[i] = rec
	}
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("zbwrap-streams-%d", n), func(b *testing.B) {
			srv := profileServer(b)
			w, err := zbwrap.New(context.Background(), zbwrap.Config{
				ZerobusEndpoint: srv.Endpoint(), UnityCatalogURL: srv.WorkspaceURL(),
				ClientID: clientID, ClientSecret: clientSecret, TableName: benchTable,
			}, zbwrap.WithRootCAs(srv.CertPool()), zbwrap.WithStreams(n))
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close(context.Background())
			rows := 0
			start := time.Now()
			for b.Loop() {
				rdr, err := array.NewRecordReader(benchSchema, recs)
				if err != nil {
					b.Fatal(err)
				}
				res, err := w.SendReader(context.Background(), rdr, zbwrap.WithChunkRows(benchBatchRows),
					zbwrap.WithConcurrency(64*n))
				rdr.Release()
				if err != nil {
					b.Fatal(err)
				}
				rows += res.SuccessfulCount
			}
			b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
		})
	}
	b.Run("purego-1-stream", func(b *testing.B) {
		st := pureGoStream(b, profileServer(b), sch.DescriptorBytes())
		rows := 0
		start := time.Now()
		for b.Loop() {
			for range batches {
				if _, err := st.IngestRecordsOffset(pre); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.Flush(); err != nil {
				b.Fatal(err)
			}
			rows += batches * benchBatchRows
		}
		b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
	})
}
