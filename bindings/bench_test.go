package bindings

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// BenchmarkSendStream measures one send of a C stream as pyzerobus makes
// it (SendStream, Wait, Result): 100,000 rows in 10 batches, cut into
// chunks of batch_rows. "dry" converts only (writer disabled); "server"
// sends to the local server in discard mode. It reports rows/s.
func BenchmarkSendStream(b *testing.B) {
	const batchCount, batchLen = 10, 10_000
	recs := batches(batchCount, batchLen)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	var size int64
	for _, r := range recs {
		for _, c := range r.Columns() {
			size += arrowBytes(c.Data())
		}
	}
	for _, mode := range []string{"dry", "server"} {
		b.Run(mode, func(b *testing.B) {
			cfg := `{"zerobus_writer_disabled":true,"table_name":"a.b.c"}`
			if mode == "server" {
				srv := newServer(b, zerobustest.WithDiscard())
				cfg = configFor(srv, nil)
			}
			w := newWrapper(b, cfg, false)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				_, addr := exportStream(b, testSchema, recs...)
				id, err := w.SendStream(addr, "")
				if err != nil {
					b.Fatal(err)
				}
				if r := waitResult(b, w, id); !r.Success || r.TotalRows != batchCount*batchLen {
					b.Fatalf("result %+v", r)
				}
			}
			b.ReportMetric(float64(batchCount*batchLen*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// arrowBytes is the size of an array's buffers.
func arrowBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, buf := range d.Buffers() {
		if buf != nil {
			n += int64(buf.Len())
		}
	}
	for _, c := range d.Children() {
		n += arrowBytes(c)
	}
	return n
}
