package zbwrap

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// Two Arrow schemas through one Wrapper, interleaved: the payload as
// string in one and large_string in the other. Each schema is compiled
// once; both give the table's descriptor, so they share one stream, and
// the table holds every row of both with its payload.
func TestTwoSchemasThroughOneWrapper(t *testing.T) {
	srv := newServer(t)
	w := newWrapper(t, srv)
	ctx := context.Background()
	large := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "payload", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	}, nil)
	largeBatch := func(first, n int) arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, large)
		defer b.Release()
		for i := range n {
			b.Field(0).(*array.Int64Builder).Append(int64(first + i))
			b.Field(1).(*array.LargeStringBuilder).Append(fmt.Sprintf("%08d", first+i))
		}
		return b.NewRecordBatch()
	}
	for k := range 6 {
		rec := makeBatch(k*100, 100, 8)
		if k%2 == 1 {
			rec.Release()
			rec = largeBatch(k*100, 100)
		}
		res, err := w.SendBatch(ctx, rec)
		rec.Release()
		if err != nil || res.SuccessfulCount != 100 {
			t.Fatalf("batch %d: %+v, %v", k, res, err)
		}
	}
	if st := w.Stats(); st.Streams != 1 || st.RowsAcked != 600 {
		t.Fatalf("stats %+v: want one stream shared by both schemas, 600 rows", st)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkIDsInOrder(t, srv, 600)
	tbl, err := zerobustest.ReadTable(srv.DataDir(), testTable)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	rdr := array.NewTableReader(tbl, -1)
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		ids, payloads := rec.Column(0).(*array.Int64), rec.Column(1).(*array.String)
		for i := range int(rec.NumRows()) {
			if want := fmt.Sprintf("%08d", ids.Value(i)); payloads.Value(i) != want {
				t.Fatalf("row id %d has payload %q, want %q", ids.Value(i), payloads.Value(i), want)
			}
		}
	}
}
