package lake

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

const benchDDL = "id bigint not null, ts timestamp, name string, value double, count int, flag boolean, note string, price decimal(10,2), tags array<string> not null"

// benchRecords makes n records of exactly 220 bytes.
func benchRecords(b *testing.B, md protoreflect.MessageDescriptor, n int) [][]byte {
	row := func(i int, note string) map[string]any {
		return map[string]any{"id": 1_000_000_000 + i, "ts": int64(1_700_000_000_000_000 + i), "name": fmt.Sprintf("sensor-%08d", i),
			"value": 3.25, "count": 200 + i%800, "flag": i%2 == 0, "note": note, "price": "12345.67", "tags": []any{"alpha", "beta"}}
	}
	note := ""
	for len(encode(b, md, row(0, note))) < 220 {
		note += "n"
	}
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = encode(b, md, row(i, note))
		if len(recs[i]) != 220 {
			b.Fatalf("record is %d bytes", len(recs[i]))
		}
	}
	return recs
}

func benchLake(b *testing.B) (*Lake, *Table, protoreflect.MessageDescriptor) {
	l, err := Open(Options{Dir: b.TempDir(), MaterializeInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	tb, err := l.CreateTable("bench.s.t", mustColumns(b, benchDDL))
	if err != nil {
		b.Fatal(err)
	}
	return l, tb, msgDesc(b, DescriptorFor("Row", tb.Columns()))
}

// BenchmarkAppend measures durable appends (write + fsync, group commit) of
// batches of 1,000 records of 220 bytes, from 1 and 4 concurrent appenders.
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{1, 4} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			l, tb, md := benchLake(b)
			recs := benchRecords(b, md, 1000)
			binds := make([]*Binding, appenders)
			for i := range binds {
				binds[i] = mustBind(b, l, "bench.s.t", DescriptorFor("Row", tb.Columns()))
			}
			b.SetBytes(int64(appenders * len(recs) * 220))
			b.ReportAllocs()
			syncs0 := tb.log.syncs.Load()
			ops := 0
			for b.Loop() {
				var wg sync.WaitGroup
				for _, bd := range binds {
					wg.Go(func() {
						if err := <-bd.Append(recs); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				ops++
			}
			b.ReportMetric(float64(ops*appenders*len(recs))/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(tb.log.syncs.Load()-syncs0)/float64(ops*appenders), "fsyncs/append")
		})
	}
}

// BenchmarkCheck measures decoding validation of a batch of 1,000 records.
func BenchmarkCheck(b *testing.B) {
	l, tb, md := benchLake(b)
	recs := benchRecords(b, md, 1000)
	bd := mustBind(b, l, "bench.s.t", DescriptorFor("Row", tb.Columns()))
	b.SetBytes(int64(len(recs) * 220))
	b.ReportAllocs()
	ops := 0
	for b.Loop() {
		if err := bd.Check(recs); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64(ops*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkMaterialize measures turning 10,000 durable records into one
// Parquet file and its Delta commit.
func BenchmarkMaterialize(b *testing.B) {
	l, tb, md := benchLake(b)
	recs := benchRecords(b, md, 10_000)
	bd := mustBind(b, l, "bench.s.t", DescriptorFor("Row", tb.Columns()))
	b.SetBytes(int64(len(recs) * 220))
	ops := 0
	for b.Loop() {
		b.StopTimer()
		mustAppend(b, bd, recs)
		b.StartTimer()
		if err := l.Materialize(); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64(ops*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkCheckOracle is BenchmarkCheck with protobuf's reflective parser
// (dynamicpb) and a check of the parsed message, as the lake once did.
func BenchmarkCheckOracle(b *testing.B) {
	l, tb, md := benchLake(b)
	recs := benchRecords(b, md, 1000)
	bd := mustBind(b, l, "bench.s.t", DescriptorFor("Row", tb.Columns()))
	b.SetBytes(int64(len(recs) * 220))
	b.ReportAllocs()
	ops := 0
	for b.Loop() {
		for _, r := range recs {
			if _, fe := oracleDecode(bd.plan, r); fe != nil {
				b.Fatal(fe.reason)
			}
		}
		ops++
	}
	b.ReportMetric(float64(ops*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecode measures the materializer's decoding: 10,000 records
// checked and appended to the table's Arrow builders, then one record
// batch built.
func BenchmarkDecode(b *testing.B) {
	benchDecode(b, func(bb *batchBuilder, p *plan, rec []byte) { bb.add(p, rec) })
}

// BenchmarkDecodeOracle is BenchmarkDecode with protobuf's reflective
// parser, as the materializer once did.
func BenchmarkDecodeOracle(b *testing.B) {
	benchDecode(b, func(bb *batchBuilder, p *plan, rec []byte) {
		m, fe := oracleDecode(p, rec)
		if fe != nil {
			b.Fatal(fe.reason)
		}
		oracleAppend(bb.rb.Fields(), m, p.fields)
		bb.rows++
		bb.bytes += int64(len(rec))
	})
}

func benchDecode(b *testing.B, add func(bb *batchBuilder, p *plan, rec []byte)) {
	l, tb, md := benchLake(b)
	recs := benchRecords(b, md, 10_000)
	p := mustBind(b, l, "bench.s.t", DescriptorFor("Row", tb.Columns())).plan
	bb := newBatchBuilder(tb.schema, tb.cols)
	defer bb.rb.Release()
	b.SetBytes(int64(len(recs) * 220))
	b.ReportAllocs()
	ops := 0
	var hint sizeHint // as the materializer does from commit to commit
	for b.Loop() {
		bb.rows, bb.bytes = 0, 0
		bb.reserve(hint, int64(len(recs)))
		for _, r := range recs {
			add(bb, p, r)
		}
		hint = bb.sizes()
		rec := bb.rb.NewRecordBatch()
		if rec.NumRows() != int64(len(recs)) {
			b.Fatalf("%d rows", rec.NumRows())
		}
		rec.Release()
		ops++
	}
	b.ReportMetric(float64(ops*len(recs))/b.Elapsed().Seconds(), "records/s")
}
