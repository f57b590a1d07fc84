package zbwrap

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Extracted rows keep their values, nulls and order for nested and
// dictionary columns too, whatever runs the rows form.
func TestExtractRowsOfEveryShape(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64})},
		{Name: "d", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	const n = 8
	for i := range n {
		if i%3 == 1 {
			b.Field(0).AppendNull()
			b.Field(1).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(string(rune('a' + i)))
			lb := b.Field(1).(*array.ListBuilder)
			lb.Append(true)
			for k := range i {
				lb.ValueBuilder().(*array.Int32Builder).Append(int32(k))
			}
		}
		sb := b.Field(2).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int64Builder).Append(int64(i))
		if err := b.Field(3).(*array.BinaryDictionaryBuilder).AppendString([]string{"x", "y", "z"}[i%3]); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	for _, rows := range [][]int{{}, {0}, {7}, {0, 1, 2, 3, 4, 5, 6, 7}, {1, 2, 4, 5, 7}, {0, 3, 6}} {
		res := &TransmissionResult{TotalRows: n, SuccessfulRows: rows}
		out, err := res.ExtractSuccessfulBatch(rec)
		if err != nil {
			t.Fatalf("rows %v: %v", rows, err)
		}
		if out.NumRows() != int64(len(rows)) || !out.Schema().Equal(schema) {
			t.Fatalf("rows %v: %d rows, schema %v", rows, out.NumRows(), out.Schema())
		}
		for c := range int(rec.NumCols()) {
			for k, i := range rows {
				if !array.SliceEqual(out.Column(c), int64(k), int64(k+1), rec.Column(c), int64(i), int64(i+1)) {
					t.Errorf("rows %v: column %d row %d is not row %d", rows, c, k, i)
				}
			}
		}
		out.Release()
	}
}
