package lake

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

const arrowDDL = "id bigint not null, b boolean, i8 tinyint, i16 smallint, i32 int, f float, d double, " +
	"s string, bin binary, day date, ts timestamp, ntz timestamp_ntz, dec decimal(10,2), v variant, " +
	"tags array<string>, nested array<array<int>>, attrs map<string,bigint>, mm map<int,map<string,string>>, " +
	"point struct<x:double,y:double not null,labels:array<string>>"

const arrowRows = `[
{"id": 1, "b": true, "i8": -8, "i16": 300, "i32": -70000, "f": 1.5, "d": 2.25, "s": "héllo", "bin": "AQID",
 "day": "2024-02-29", "ts": 1704164645123456, "ntz": 946684799000000, "dec": "-12.34", "v": "{\"a\":1}",
 "tags": ["a", "b"], "nested": [[1, 2], [], [3]], "attrs": [{"key": "k", "value": 7}],
 "mm": [{"key": 1, "value": [{"key": "x", "value": "y"}]}], "point": {"x": 1, "y": 2, "labels": ["p"]}},
{"id": 2, "b": null, "i8": null, "i16": null, "i32": null, "f": null, "d": null, "s": null, "bin": null,
 "day": null, "ts": null, "ntz": null, "dec": null, "v": null, "tags": [], "nested": [], "attrs": [],
 "mm": [], "point": null}
]`

func arrowRecord(t *testing.T, schema *arrow.Schema, rows string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(rows))
	if err != nil {
		t.Fatalf("RecordFromJSON: %v", err)
	}
	t.Cleanup(rec.Release)
	return rec
}

func TestArrowRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	cols := mustColumns(t, arrowDDL)
	mustCreate(t, l, "main.default.arrow", arrowDDL)
	schema := ArrowSchema(cols)
	b, err := l.BindArrow("main.default.arrow", schema, false)
	if err != nil {
		t.Fatalf("BindArrow: %v", err)
	}
	rec := arrowRecord(t, schema, arrowRows)
	recs, err := b.Encode(rec)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if err := b.Check(recs); err != nil {
		t.Fatalf("Check: %v", err)
	}
	mustAppend(t, b.Binding, recs)
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	tbl := readAll(t, dir, "main.default.arrow")
	got := array.NewTableReader(tbl, -1)
	defer got.Release()
	if !got.Next() {
		t.Fatal("no rows")
	}
	// Null arrays and maps read back empty (protobuf has no null repeated
	// field): compare the first row whole and the second one's scalars.
	if !array.RecordEqual(got.RecordBatch().NewSlice(0, 1), rec.NewSlice(0, 1)) {
		t.Errorf("row 0:\n got %v\nwant %v", got.RecordBatch().NewSlice(0, 1), rec.NewSlice(0, 1))
	}
	for i := 1; i < 14; i++ {
		if !got.RecordBatch().Column(i).IsNull(1) {
			t.Errorf("row 1 column %s: not null", cols[i].Name)
		}
	}
}

func TestArrowSchemaVariants(t *testing.T) {
	l := openLake(t, t.TempDir())
	mustCreate(t, l, "main.default.v", "id bigint not null, s string, bin binary, ts timestamp, tags array<string>, opt int")
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "TS", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.LargeBinary, Nullable: true},
		{Name: "tags", Type: arrow.LargeListOf(arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	b, err := l.BindArrow("main.default.v", schema, false)
	if err != nil {
		t.Fatalf("BindArrow: %v", err)
	}
	rec := arrowRecord(t, schema, `[{"TS": 1577836800000000, "id": 5, "s": "x", "bin": "AA==", "tags": ["q"]},
		{"TS": null, "id": null, "s": null, "bin": null, "tags": null}]`)
	_, err = b.Encode(rec)
	var re *RecordError
	if !errors.As(err, &re) || re.Index != 1 || re.Column != "id" || !strings.Contains(re.Reason, "NOT NULL") {
		t.Fatalf("Encode: %v, want a NOT NULL error of record 1 column id", err)
	}
	recs, err := b.Encode(rec.NewSlice(0, 1))
	if err != nil || len(recs) != 1 {
		t.Fatalf("Encode: %v", err)
	}
	if err := b.Check(recs); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestArrowSchemaErrors(t *testing.T) {
	l := openLake(t, t.TempDir())
	mustCreate(t, l, "main.default.e", "id bigint not null, ntz timestamp_ntz, p struct<x:int not null>, m map<string,int>, a array<int>, dec decimal(5,1)")
	f := func(name string, dt arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: dt, Nullable: true}
	}
	id := f("id", arrow.PrimitiveTypes.Int64)
	for _, tc := range []struct {
		fields []arrow.Field
		column string
		reason string
	}{
		{[]arrow.Field{f("other", arrow.PrimitiveTypes.Int64)}, "id", "NOT NULL column missing"},
		{[]arrow.Field{id, f("extra", arrow.PrimitiveTypes.Int64)}, "extra", "not a column of the table"},
		{[]arrow.Field{id, f("ID", arrow.PrimitiveTypes.Int64)}, "", "names a column twice"},
		{[]arrow.Field{f("id", arrow.PrimitiveTypes.Int32)}, "id", "Arrow type int32 does not match column type bigint"},
		{[]arrow.Field{id, f("ntz", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})}, "ntz", "without a time zone"},
		{[]arrow.Field{id, f("ntz", &arrow.TimestampType{Unit: arrow.Nanosecond})}, "ntz", "does not match"},
		{[]arrow.Field{id, f("p", arrow.StructOf(f("y", arrow.PrimitiveTypes.Int32)))}, "p.x", "NOT NULL column missing"},
		{[]arrow.Field{id, f("p", arrow.PrimitiveTypes.Int32)}, "p", "want struct"},
		{[]arrow.Field{id, f("m", arrow.MapOf(arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int32))}, "m.key", "does not match"},
		{[]arrow.Field{id, f("m", arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64))}, "m.value", "does not match"},
		{[]arrow.Field{id, f("m", arrow.PrimitiveTypes.Int32)}, "m", "want map"},
		{[]arrow.Field{id, f("a", arrow.ListOf(arrow.PrimitiveTypes.Int64))}, "a.element", "does not match"},
		{[]arrow.Field{id, f("a", arrow.BinaryTypes.String)}, "a", "want list or large_list"},
		{[]arrow.Field{id, f("dec", &arrow.Decimal128Type{Precision: 5, Scale: 2})}, "dec", "want decimal(5, 1)"},
	} {
		_, err := l.BindArrow("main.default.e", arrow.NewSchema(tc.fields, nil), false)
		var se *SchemaError
		if !errors.As(err, &se) || se.Column != tc.column || !strings.Contains(se.Reason, tc.reason) {
			t.Errorf("%v: got %v, want column %q: %q", tc.fields, err, tc.column, tc.reason)
		}
	}
	if _, err := l.BindArrow("main.default.missing", arrow.NewSchema([]arrow.Field{id}, nil), false); !errors.Is(err, ErrTableNotFound) {
		t.Errorf("missing table: %v", err)
	}
	if _, err := l.BindArrow("bad name", arrow.NewSchema([]arrow.Field{id}, nil), true); err == nil {
		t.Error("bad name: no error")
	}
}

func TestArrowAutoCreate(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "ntz", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "p", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int8, Nullable: true}), Nullable: true},
		{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.ListOf(arrow.PrimitiveTypes.Int16)), Nullable: true},
		{Name: "small", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "d", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 4, Scale: 1}, Nullable: true},
		{Name: "i", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	}, nil)
	b, err := l.BindArrow("main.default.auto", schema, true)
	if err != nil {
		t.Fatalf("BindArrow: %v", err)
	}
	want := "id bigint not null, ts timestamp, ntz timestamp_ntz, p struct<x:tinyint>, m map<string,array<smallint>>, " +
		"small smallint, flag boolean, f float, d double, bin binary, day date, dec decimal(4,1), i int, s string"
	tb, _ := l.Table("main.default.auto")
	if got := ColumnsDDL(tb.Columns()); got != ColumnsDDL(mustColumns(t, want)) {
		t.Errorf("columns: %s\nwant %s", got, want)
	}
	rec := arrowRecord(t, schema, `[{"id": 1, "m": [{"key": "a", "value": [1, 2]}], "p": {"x": 3}}]`)
	recs, err := b.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b.Binding, recs)
	// A second stream with another schema does not recreate the table.
	other := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil)
	if _, err := l.BindArrow("main.default.auto", other, true); err == nil || !strings.Contains(err.Error(), "column id") {
		t.Errorf("other schema: %v", err)
	}
	for _, dt := range []arrow.DataType{arrow.PrimitiveTypes.Uint8, &arrow.TimestampType{Unit: arrow.Second},
		arrow.ListOf(arrow.PrimitiveTypes.Uint8), arrow.MapOf(arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Int8),
		arrow.MapOf(arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Uint8), arrow.StructOf(arrow.Field{Name: "u", Type: arrow.PrimitiveTypes.Uint8})} {
		_, err := l.BindArrow("main.default.auto2", arrow.NewSchema([]arrow.Field{{Name: "u", Type: dt}}, nil), true)
		var se *SchemaError
		if !errors.As(err, &se) || !strings.Contains(se.Reason, "has no Delta column type") {
			t.Errorf("%s: %v", dt, err)
		}
	}
	if _, err := l.BindArrow("main.default.auto3", arrow.NewSchema([]arrow.Field{{Name: "9x", Type: arrow.PrimitiveTypes.Int8}}, nil), true); err == nil {
		t.Error("invalid column name: no error")
	}
}

func TestArrowNullElements(t *testing.T) {
	l := openLake(t, t.TempDir())
	mustCreate(t, l, "main.default.n", "a array<int>, m map<string,int>")
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32), Nullable: true},
	}, nil)
	b, err := l.BindArrow("main.default.n", schema, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ rows, column, reason string }{
		{`[{"a": [1, null]}]`, "a", "null element at index 1"},
		{`[{"m": [{"key": "k", "value": null}]}]`, "m", "null value at entry 0"},
	} {
		_, err := b.Encode(arrowRecord(t, schema, tc.rows))
		var re *RecordError
		if !errors.As(err, &re) || re.Column != tc.column || !strings.Contains(re.Reason, tc.reason) {
			t.Errorf("%s: %v", tc.rows, err)
		}
	}
}
