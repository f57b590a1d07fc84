package debugfiles

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
)

// BenchmarkOnBatchEncoded writes 1,000-row batches (six columns: int64,
// string, float64, list, struct, map) to real files. The bytes per batch are
// what the enabled outputs write: the batch's Arrow IPC message and its
// length-prefixed records.
func BenchmarkOnBatchEncoded(b *testing.B) {
	rec := makeBatch(b, schemaV1(), 0, 1000, false)
	defer rec.Release()
	e := encode(b, arrowproto.NewCache(4), rec)
	var ipcBuf bytes.Buffer
	iw := ipc.NewWriter(&ipcBuf, ipc.WithSchema(rec.Schema()))
	if err := iw.Write(rec); err != nil {
		b.Fatal(err)
	}
	first := ipcBuf.Len()
	if err := iw.Write(rec); err != nil {
		b.Fatal(err)
	}
	arrowBytes := int64(ipcBuf.Len() - first)
	var protoBytes int64
	for _, r := range e.records {
		protoBytes += int64(protowire.SizeVarint(uint64(len(r))) + len(r))
	}

	for _, bm := range []struct {
		name            string
		arrow, protobuf bool
		parallel        bool
	}{
		{"both", true, true, false},
		{"arrow", true, false, false},
		{"protobuf", false, true, false},
		{"both/parallel", true, true, true},
	} {
		b.Run(bm.name, func(b *testing.B) {
			w := newWriter(b, Config{Arrow: bm.arrow, Protobuf: bm.protobuf, MaxFilesRetained: 2})
			var n int64
			if bm.arrow {
				n += arrowBytes
			}
			if bm.protobuf {
				n += protoBytes
			}
			b.SetBytes(n)
			b.ReportAllocs()
			if bm.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						w.OnBatchEncoded(rec, e.desc, e.records)
					}
				})
			} else {
				for b.Loop() {
					w.OnBatchEncoded(rec, e.desc, e.records)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			if st := w.Stats(); st.WriteErrors != 0 || st.BatchesDropped != 0 {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}
