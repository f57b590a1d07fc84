package arrowproto

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

var mem = memory.DefaultAllocator

// fromJSON builds an array of type dt from JSON text.
func fromJSON(t testing.TB, dt arrow.DataType, js string) arrow.Array {
	t.Helper()
	a, _, err := array.FromJSON(mem, dt, strings.NewReader(js))
	if err != nil {
		t.Fatalf("FromJSON(%s, %s): %v", dt, js, err)
	}
	return a
}

// column is a named column for record.
type column struct {
	name string
	arr  arrow.Array
}

func record(t testing.TB, cols ...column) arrow.RecordBatch {
	t.Helper()
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	n := int64(-1)
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.arr.DataType(), Nullable: true}
		arrs[i] = c.arr
		n = int64(c.arr.Len())
	}
	if n < 0 {
		n = 0
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, n)
}

// roundTrip encodes rec and every slice of it that starts at 1 or 2 and ends
// one short of the end, checking each with the oracle. It returns the schema
// and the batch of the whole record.
func roundTrip(t testing.TB, rec arrow.RecordBatch) (*Schema, *Batch) {
	t.Helper()
	sc, err := NewSchema(rec.Schema())
	if err != nil {
		t.Fatalf("NewSchema: %v", err)
	}
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	checkBatch(t, sc, rec, b)
	n := rec.NumRows()
	for start := int64(1); start <= 2 && start <= n; start++ {
		for _, end := range []int64{n, n - 1} {
			if end < start {
				continue
			}
			s := rec.NewSlice(start, end)
			bs, err := sc.Encode(s)
			if err != nil {
				t.Fatalf("Encode slice [%d,%d): %v", start, end, err)
			}
			checkBatch(t, sc, s, bs)
			s.Release()
		}
	}
	checkFramedReuse(t, sc, rec, b)
	return sc, b
}

// decoded returns the decoded record of row r (nil if r did not encode).
func decoded(t testing.TB, sc *Schema, b *Batch, r int) map[string]any {
	t.Helper()
	return decodedDesc(t, sc.Descriptor(), b, r)
}

func decodedDesc(t testing.TB, d *descriptorpb.DescriptorProto, b *Batch, r int) map[string]any {
	t.Helper()
	md := messageDescriptor(t, d)
	for i, row := range b.Rows {
		if row == r {
			m := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(b.Records[i], m); err != nil {
				t.Fatalf("row %d: %v", r, err)
			}
			return actualMessage(m)
		}
	}
	return nil
}

// rowError returns the error of row r, if any.
func rowError(b *Batch, r int) *RowError {
	for i := range b.Errors {
		if b.Errors[i].Row == r {
			return &b.Errors[i]
		}
	}
	return nil
}
