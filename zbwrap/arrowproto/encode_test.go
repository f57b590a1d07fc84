package arrowproto

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func buf(b ...byte) *memory.Buffer { return memory.NewBufferBytes(b) }

func i32s(v ...int32) *memory.Buffer {
	return memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(v))
}

func i64s(v ...int64) *memory.Buffer {
	return memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(v))
}

// view16 builds a 16-byte binary view header.
func view16(size, bufIndex, offset int32) []byte {
	v := make([]byte, 16)
	binary.LittleEndian.PutUint32(v, uint32(size))
	binary.LittleEndian.PutUint32(v[8:], uint32(bufIndex))
	binary.LittleEndian.PutUint32(v[12:], uint32(offset))
	return v
}

// bindData binds d (a column of type dt) as the encoder does for a batch.
func bindData(t *testing.T, dt arrow.DataType, d arrow.ArrayData) error {
	t.Helper()
	sc, err := NewSchema(schemaOf(fld("c", dt)))
	if err != nil {
		t.Fatal(err)
	}
	e := sc.getEncoder()
	n := 0
	if d != nil {
		n = d.Len()
	}
	return e.bind(sc.top[0].col, d, 0, n)
}

func TestInvalidDataIsAnError(t *testing.T) {
	i8, i32, str, bin := arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String, arrow.BinaryTypes.BinaryView
	st := arrow.StructOf(fld("a", i8), fld("b", i8))
	li := arrow.ListOf(i8)
	lv := arrow.ListViewOf(i8)
	fl := arrow.FixedSizeListOf(2, i8)
	dict := &arrow.DictionaryType{IndexType: i8, ValueType: str}
	ree := arrow.RunEndEncodedOf(arrow.PrimitiveTypes.Int16, i8)
	child := array.NewData(i8, 2, []*memory.Buffer{nil, buf(1, 2)}, nil, 0, 0)
	strs := array.NewData(str, 1, []*memory.Buffer{nil, i32s(0, 1), buf('x')}, nil, 0, 0)
	withDict := func(idx *memory.Buffer, n int, d arrow.ArrayData) arrow.ArrayData {
		a := array.NewData(dict, n, []*memory.Buffer{nil, idx}, nil, 0, 0)
		a.SetDictionary(d)
		return a
	}
	reeData := func(ends arrow.ArrayData, vals arrow.ArrayData, n int) arrow.ArrayData {
		return array.NewData(ree, n, []*memory.Buffer{nil}, []arrow.ArrayData{ends, vals}, 0, 0)
	}
	ends := func(v ...int16) arrow.ArrayData {
		return array.NewData(arrow.PrimitiveTypes.Int16, len(v), []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int16Traits.CastToBytes(v))}, nil, 0, 0)
	}
	for _, tc := range []struct {
		name string
		dt   arrow.DataType
		d    arrow.ArrayData
		want string
	}{
		{"nil", i8, nil, "missing"},
		{"wrong type", i32, child, "the schema says int32"},
		{"short validity", i8, array.NewData(i8, 20, []*memory.Buffer{buf(0), make20()}, nil, 1, 0), "validity"},
		{"short values", i32, array.NewData(i32, 3, []*memory.Buffer{nil, buf(1, 2, 3, 4)}, nil, 0, 0), "values buffer"},
		{"short bools", arrow.FixedWidthTypes.Boolean, array.NewData(arrow.FixedWidthTypes.Boolean, 9, []*memory.Buffer{nil, buf(1)}, nil, 0, 0), "values buffer"},
		{"short offsets", str, array.NewData(str, 2, []*memory.Buffer{nil, i32s(0, 1), buf('x')}, nil, 0, 0), "offsets buffer"},
		{"negative offset", str, array.NewData(str, 1, []*memory.Buffer{nil, i32s(-1, 1), buf('x')}, nil, 0, 0), "negative offset"},
		{"decreasing offsets", str, array.NewData(str, 2, []*memory.Buffer{nil, i32s(0, 1, 0), buf('x')}, nil, 0, 0), "decrease"},
		{"offsets past data", str, array.NewData(str, 1, []*memory.Buffer{nil, i32s(0, 5), buf('x')}, nil, 0, 0), "beyond the values"},
		{"large offsets past data", arrow.BinaryTypes.LargeString, array.NewData(arrow.BinaryTypes.LargeString, 1, []*memory.Buffer{nil, i64s(0, 5), buf('x')}, nil, 0, 0), "beyond the values"},
		{"short views", bin, array.NewData(bin, 2, []*memory.Buffer{nil, memory.NewBufferBytes(view16(1, 0, 0))}, nil, 0, 0), "views buffer"},
		{"negative view size", bin, array.NewData(bin, 1, []*memory.Buffer{nil, memory.NewBufferBytes(view16(-5, 0, 0))}, nil, 0, 0), "negative view size"},
		{"view buffer index", bin, array.NewData(bin, 1, []*memory.Buffer{nil, memory.NewBufferBytes(view16(20, 1, 0)), buf(make([]byte, 30)...)}, nil, 0, 0), "outside its data buffers"},
		{"view past buffer", bin, array.NewData(bin, 1, []*memory.Buffer{nil, memory.NewBufferBytes(view16(20, 0, 15)), buf(make([]byte, 30)...)}, nil, 0, 0), "outside its data buffers"},
		{"struct children", st, array.NewData(st, 1, []*memory.Buffer{nil}, []arrow.ArrayData{child}, 0, 0), "has 1 children"},
		{"struct child short", st, array.NewData(st, 3, []*memory.Buffer{nil}, []arrow.ArrayData{child, child}, 0, 0), "cannot hold elements"},
		{"list without values", li, array.NewData(li, 1, []*memory.Buffer{nil, i32s(0, 1)}, nil, 0, 0), "without its values"},
		{"list past values", li, array.NewData(li, 1, []*memory.Buffer{nil, i32s(0, 3)}, []arrow.ArrayData{child}, 0, 0), "beyond the values"},
		{"list view buffers", lv, array.NewData(lv, 2, []*memory.Buffer{nil, i32s(0), i32s(1)}, []arrow.ArrayData{child}, 0, 0), "list view buffers"},
		{"list view range", lv, array.NewData(lv, 1, []*memory.Buffer{nil, i32s(1), i32s(2)}, []arrow.ArrayData{child}, 0, 0), "outside its values"},
		{"large list view range", arrow.LargeListViewOf(i8), array.NewData(arrow.LargeListViewOf(i8), 1, []*memory.Buffer{nil, i64s(-1), i64s(1)}, []arrow.ArrayData{child}, 0, 0), "outside its values"},
		{"fixed list short", fl, array.NewData(fl, 2, []*memory.Buffer{nil}, []arrow.ArrayData{child}, 0, 0), "too short"},
		{"no dictionary", dict, array.NewData(dict, 1, []*memory.Buffer{nil, buf(0)}, nil, 0, 0), "without a dictionary"},
		{"short indices", dict, withDict(buf(0), 2, strs), "indices too short"},
		{"index out of range", dict, withDict(buf(0, 1), 2, strs), "outside the dictionary"},
		{"negative index", dict, withDict(buf(0xff), 1, strs), "outside the dictionary"},
		{"ree children", ree, array.NewData(ree, 1, []*memory.Buffer{nil}, nil, 0, 0), "without run ends"},
		{"ree run end type", ree, reeData(array.NewData(arrow.PrimitiveTypes.Int32, 1, []*memory.Buffer{nil, i32s(1)}, nil, 0, 0), child, 1), "run ends of type int32"},
		{"ree short ends", ree, reeData(array.NewData(arrow.PrimitiveTypes.Int16, 2, []*memory.Buffer{nil, buf(1, 0)}, nil, 0, 0), child, 2), "run ends buffer"},
		{"ree null ends", ree, reeData(array.NewData(arrow.PrimitiveTypes.Int16, 1, []*memory.Buffer{buf(0), buf(1, 0)}, nil, 1, 0), child, 1), "nulls"},
		{"ree few values", ree, reeData(ends(1, 2, 3), child, 3), "fewer values"},
		{"ree decreasing", ree, reeData(ends(2, 1), child, 2), "increasing"},
		{"ree too short", ree, reeData(ends(1, 2), child, 3), "before the array's end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := bindData(t, tc.dt, tc.d)
			if !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"c`) {
				t.Fatalf("err = %v, want ErrInvalidData with %q", err, tc.want)
			}
		})
	}
	// An empty binary array may have no offsets at all.
	if err := bindData(t, str, array.NewData(str, 0, []*memory.Buffer{nil, nil, nil}, nil, 0, 0)); err != nil {
		t.Fatalf("empty binary: %v", err)
	}
}

func make20() *memory.Buffer { return memory.NewBufferBytes(make([]byte, 20)) }

// shortRecord claims more rows than its columns hold.
type shortRecord struct{ arrow.RecordBatch }

func (shortRecord) NumRows() int64 { return 5 }

func TestEncodeRejectsInvalidBatches(t *testing.T) {
	rec := record(t, column{"a", fromJSON(t, arrow.PrimitiveTypes.Int8, `[1, 2]`)})
	sc, err := NewSchema(rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Encode(shortRecord{rec}); !errors.Is(err, ErrInvalidData) {
		t.Fatalf("column shorter than the batch: %v", err)
	}
	// Malformed buffers reach Encode through arrays built without validation.
	child := array.NewData(arrow.PrimitiveTypes.Int8, 1, []*memory.Buffer{nil, buf(1)}, nil, 0, 0)
	bad := array.MakeFromData(array.NewData(arrow.ListOf(arrow.PrimitiveTypes.Int8), 1, []*memory.Buffer{nil, i32s(0, 9)}, []arrow.ArrayData{child}, 0, 0))
	brec := record(t, column{"s", bad})
	bsc, err := NewSchema(brec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bsc.Encode(brec); !errors.Is(err, ErrInvalidData) {
		t.Fatalf("offsets past the data: %v", err)
	}
	// The encoder stays usable after an error.
	good := record(t, column{"s", fromJSON(t, arrow.ListOf(arrow.PrimitiveTypes.Int8), `[[1, 2]]`)})
	if b, err := bsc.Encode(good); err != nil || len(b.Records) != 1 {
		t.Fatalf("after an error: %v", err)
	}
}

func TestUnalignedBuffersTakeTheGeneralPath(t *testing.T) {
	// Buffers from IPC or C data need not be aligned for their type; the
	// column fast paths step aside and the result is the same.
	raw := make([]byte, 8*5+1)[1:]
	for i := 0; i < 5; i++ {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(int64(i*1000-2000)))
	}
	ints := array.MakeFromData(array.NewData(arrow.PrimitiveTypes.Int64, 5, []*memory.Buffer{nil, memory.NewBufferBytes(raw)}, nil, 0, 0))
	offs := make([]byte, 4*6+2)[2:]
	for i := 0; i <= 5; i++ {
		binary.LittleEndian.PutUint32(offs[4*i:], uint32(i))
	}
	strs := array.MakeFromData(array.NewData(arrow.BinaryTypes.String, 5, []*memory.Buffer{nil, memory.NewBufferBytes(offs), buf('a', 'b', 'c', 'd', 'e')}, nil, 0, 0))
	loffs := make([]byte, 8*6+4)[4:]
	for i := 0; i <= 5; i++ {
		binary.LittleEndian.PutUint64(loffs[8*i:], uint64(i))
	}
	lstrs := array.MakeFromData(array.NewData(arrow.BinaryTypes.LargeString, 5, []*memory.Buffer{nil, memory.NewBufferBytes(loffs), buf('v', 'w', 'x', 'y', 'z')}, nil, 0, 0))
	sc, b := roundTrip(t, record(t, column{"i", ints}, column{"s", strs}, column{"l", lstrs}))
	wantRows(t, sc, b, []map[string]any{
		{"i": int64(-2000), "s": "a", "l": "v"}, {"i": int64(-1000), "s": "b", "l": "w"}, {"i": int64(0), "s": "c", "l": "x"},
		{"i": int64(1000), "s": "d", "l": "y"}, {"i": int64(2000), "s": "e", "l": "z"},
	})
}

func TestOversizeRows(t *testing.T) {
	rec := record(t,
		column{"id", fromJSON(t, arrow.PrimitiveTypes.Int32, `[1, 2, 3, 4]`)},
		column{"body", fromJSON(t, arrow.BinaryTypes.String, `["short", "`+strings.Repeat("x", 100)+`", "", null]`)},
		column{"tags", fromJSON(t, arrow.ListOf(arrow.PrimitiveTypes.Int64), `[[], [1], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60], null]`)},
	)
	sc, err := NewSchema(rec.Schema(), WithMaxRecordSize(64))
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Errors) != 2 || b.Errors[0].Row != 1 || b.Errors[0].Column != "body" || b.Errors[1].Row != 2 || b.Errors[1].Column != "tags" {
		t.Fatalf("errors = %v", b.Errors)
	}
	if !strings.Contains(b.Errors[0].Reason, "more than the limit of 64") {
		t.Fatalf("reason %q", b.Errors[0].Reason)
	}
	checkBatch(t, sc, rec, b)
	if len(b.Rows) != 2 || b.Rows[0] != 0 || b.Rows[1] != 3 {
		t.Fatalf("rows = %v", b.Rows)
	}
	// The default limit is the service's.
	if sc, _ := NewSchema(rec.Schema(), WithMaxRecordSize(0)); sc.maxRecord != MaxRecordSize {
		t.Fatalf("default limit %d", sc.maxRecord)
	}
}

func TestRecordAtTheServiceLimit(t *testing.T) {
	// A record of exactly MaxRecordSize bytes is sent; one byte more is not.
	n := MaxRecordSize - 1 - 4 // tag, 4-byte length
	body := strings.Repeat("z", n)
	bb := array.NewStringBuilder(mem)
	bb.Append(body)
	bb.Append(body + "z")
	rec := record(t, column{"b", bb.NewArray()})
	sc, err := NewSchema(rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 1 || len(b.Records[0]) != MaxRecordSize || len(b.Errors) != 1 || b.Errors[0].Row != 1 {
		t.Fatalf("records %d (%d bytes), errors %v", len(b.Records), b.Bytes, b.Errors)
	}
}

func TestRowErrorsDoNotDisturbOtherRows(t *testing.T) {
	// Failing rows are interleaved with good ones, in several columns; the
	// first failing column of a row is the one reported.
	rec := record(t,
		column{"u", fromJSON(t, arrow.PrimitiveTypes.Uint64, `[1, 18446744073709551615, 3, 18446744073709551615, 5]`)},
		column{"l", fromJSON(t, arrow.ListOf(arrow.BinaryTypes.String), `[["a"], [null], [null, "b"], ["c"], ["d", "e"]]`)},
		column{"m", fromJSON(t, arrow.MapOf(arrow.BinaryTypes.String, arrow.StructOf(fld("x", arrow.PrimitiveTypes.Int8))),
			`[[{"key": "k", "value": {"x": 1}}], [], [], [{"key": "k", "value": null}], [{"key": "k2", "value": {"x": null}}]]`)},
	)
	sc, b := roundTrip(t, rec)
	want := []RowError{{Row: 1, Column: "u"}, {Row: 2, Column: "l[]"}, {Row: 3, Column: "u"}}
	if len(b.Errors) != len(want) {
		t.Fatalf("errors = %v", b.Errors)
	}
	for i, w := range want {
		if b.Errors[i].Row != w.Row || b.Errors[i].Column != w.Column {
			t.Fatalf("error %d = %v, want row %d column %s", i, b.Errors[i], w.Row, w.Column)
		}
	}
	wantRows(t, sc, b, []map[string]any{
		{"u": int64(1), "l": []any{"a"}, "m": map[any]any{"k": map[string]any{"x": int32(1)}}},
		nil, nil, nil,
		{"u": int64(5), "l": []any{"d", "e"}, "m": map[any]any{"k2": map[string]any{}}},
	})
}

func TestNullMapKeyAndEntry(t *testing.T) {
	// Arrow forbids null map keys and entries; they are row errors, not
	// panics. A dictionary key can hide a null from arrow-go's own checks.
	kt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	mt := arrow.MapOf(kt, arrow.PrimitiveTypes.Int8)
	keys := array.NewData(kt, 3, []*memory.Buffer{nil, buf(0, 1, 0)}, nil, 0, 0)
	keys.SetDictionary(array.NewData(arrow.BinaryTypes.String, 2, []*memory.Buffer{buf(0b01), i32s(0, 1, 1), buf('a')}, nil, 1, 0))
	items := array.NewData(arrow.PrimitiveTypes.Int8, 3, []*memory.Buffer{nil, buf(1, 2, 3)}, nil, 0, 0)
	entries := array.NewData(mt.Elem(), 3, []*memory.Buffer{nil}, []arrow.ArrayData{keys, items}, 0, 0)
	m := array.MakeFromData(array.NewData(mt, 3, []*memory.Buffer{nil, i32s(0, 1, 2, 3)}, []arrow.ArrayData{entries}, 0, 0))
	_, b := roundTrip(t, record(t, column{"m", m}))
	if len(b.Errors) != 1 || b.Errors[0].Row != 1 || b.Errors[0].Column != "m.key" || !strings.Contains(b.Errors[0].Reason, "null map key") {
		t.Fatalf("errors = %v", b.Errors)
	}

	// arrow-go will not even build a map with a null entry, so run the
	// encoder's size pass on the raw data.
	entries = array.NewData(mt.Elem(), 3, []*memory.Buffer{buf(0b011)}, []arrow.ArrayData{keys, items}, 1, 0)
	d := array.NewData(mt, 3, []*memory.Buffer{nil, i32s(0, 1, 2, 3)}, []arrow.ArrayData{entries}, 0, 0)
	sc, err := NewSchema(schemaOf(fld("m", mt)))
	if err != nil {
		t.Fatal(err)
	}
	e := sc.getEncoder()
	if err := e.bind(sc.top[0].col, d, 0, 3); err != nil {
		t.Fatal(err)
	}
	e.prepare(3)
	e.sizeColumn(sc.top[0], 3)
	if len(e.errs) != 2 || e.errs[0].Column != "m.key" || e.errs[1].Row != 2 || e.errs[1].Column != "m" || !strings.Contains(e.errs[1].Reason, "null map entry") {
		t.Fatalf("errors = %v", e.errs)
	}
}

func TestEmptyBatch(t *testing.T) {
	rec := record(t, column{"a", fromJSON(t, arrow.BinaryTypes.String, `[]`)}, column{"b", fromJSON(t, arrow.PrimitiveTypes.Int64, `[]`)})
	_, b := roundTrip(t, rec)
	if len(b.Records) != 0 || len(b.Rows) != 0 || b.Errors != nil || b.Bytes != 0 {
		t.Fatalf("%+v", b)
	}
	// No columns at all: every row is an empty record.
	empty := array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 3)
	sc, err := NewSchema(empty.Schema())
	if err != nil {
		t.Fatal(err)
	}
	b, err = sc.Encode(empty)
	if err != nil || len(b.Records) != 3 || len(b.Records[2]) != 0 {
		t.Fatalf("%+v %v", b, err)
	}
}

func TestConcurrentEncode(t *testing.T) {
	g := newRandGen(99)
	s := g.schema(6, 3)
	sc, err := NewSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]arrow.RecordBatch, 8)
	want := make([]*Batch, len(recs))
	for i := range recs {
		recs[i] = g.record(s, 50)
		if want[i], err = sc.Encode(recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				i := (w + k) % len(recs)
				got, err := sc.Encode(recs[i])
				if err != nil {
					t.Error(err)
					return
				}
				if len(got.Records) != len(want[i].Records) || len(got.Errors) != len(want[i].Errors) {
					t.Errorf("batch %d: different result under concurrency", i)
					return
				}
				for r := range got.Records {
					if string(got.Records[r]) != string(want[i].Records[r]) {
						t.Errorf("batch %d record %d differs under concurrency", i, r)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestAllocationsDoNotGrowWithRows(t *testing.T) {
	// The number of allocations of an Encode is the same for 100 rows and
	// for 50,000 rows, for flat and nested schemas.
	for _, shape := range []struct {
		name string
		make func() arrow.RecordBatch
	}{
		{"mixed", mixedBatch},
		{"nested", nestedBatch},
	} {
		t.Run(shape.name, func(t *testing.T) {
			large := repeatRows(t, shape.make(), 12) // about 50,000 rows
			small := sliceRows(large, 100)
			sc, err := NewSchema(small.Schema())
			if err != nil {
				t.Fatal(err)
			}
			allocs := func(rec arrow.RecordBatch) float64 {
				return testing.AllocsPerRun(5, func() {
					if _, err := sc.Encode(rec); err != nil {
						t.Fatal(err)
					}
				})
			}
			a, b := allocs(small), allocs(large)
			if b > a || a > 6 {
				t.Fatalf("allocations per Encode: %v for %d rows, %v for %d rows", a, small.NumRows(), b, large.NumRows())
			}
		})
	}
}

func sliceRows(rec arrow.RecordBatch, n int) arrow.RecordBatch { return rec.NewSlice(0, int64(n)) }

// repeatRows concatenates rec with itself k times.
func repeatRows(t *testing.T, rec arrow.RecordBatch, k int) arrow.RecordBatch {
	t.Helper()
	cols := make([]arrow.Array, rec.NumCols())
	for c := range cols {
		parts := make([]arrow.Array, k)
		for i := range parts {
			parts[i] = rec.Column(c)
		}
		var err error
		if cols[c], err = array.Concatenate(parts, mem); err != nil {
			t.Fatal(err)
		}
	}
	return array.NewRecordBatch(rec.Schema(), cols, rec.NumRows()*int64(k))
}

func TestLargeBatchScratchIsNotPooled(t *testing.T) {
	n := maxPooledRows + 1
	b := array.NewInt8Builder(mem)
	for i := 0; i < n; i++ {
		b.Append(int8(i))
	}
	rec := record(t, column{"a", b.NewArray()})
	sc, err := NewSchema(rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	out, err := sc.Encode(rec)
	if err != nil || len(out.Records) != n || out.Records[n-1][1] != byte(int8(n-1)) {
		t.Fatalf("%v", err)
	}
	if len(sc.free) != 0 {
		t.Fatal("a huge scratch was kept")
	}
}

func TestOffsetsThatWrapAround(t *testing.T) {
	// A huge offset followed by a negative one must not pass as increasing.
	for _, tc := range []struct {
		dt   arrow.DataType
		offs *memory.Buffer
	}{
		{arrow.BinaryTypes.String, i32s(0, 2147483647, -2147483648)},
		{arrow.BinaryTypes.LargeString, i64s(0, 9223372036854775807, -9223372036854775808)},
	} {
		err := bindData(t, tc.dt, array.NewData(tc.dt, 2, []*memory.Buffer{nil, tc.offs, buf('x')}, nil, 0, 0))
		if !errors.Is(err, ErrInvalidData) {
			t.Fatalf("%s: %v", tc.dt, err)
		}
		// Unaligned buffers take the other path, with the same verdict.
		raw := append([]byte{0}, tc.offs.Bytes()...)[1:]
		err = bindData(t, tc.dt, array.NewData(tc.dt, 2, []*memory.Buffer{nil, memory.NewBufferBytes(raw), buf('x')}, nil, 0, 0))
		if !errors.Is(err, ErrInvalidData) {
			t.Fatalf("%s unaligned: %v", tc.dt, err)
		}
	}
}

func TestStructOfScalarsFastPath(t *testing.T) {
	// A struct whose fields are all common scalars is written column by
	// column; nulls of the struct hide its fields' values.
	dt := arrow.StructOf(
		fld("i", arrow.PrimitiveTypes.Int32), fld("f", arrow.PrimitiveTypes.Float64),
		fld("b", arrow.FixedWidthTypes.Boolean), fld("s", arrow.BinaryTypes.LargeString),
		fld("g", arrow.PrimitiveTypes.Float32), fld("u", arrow.PrimitiveTypes.Uint16),
	)
	a := fromJSON(t, dt, `[
		{"i": 1, "f": 1.5, "b": true, "s": "x", "g": 2.5, "u": 7},
		null,
		{"i": null, "f": null, "b": null, "s": null, "g": null, "u": null},
		{"i": -1, "f": -0.0, "b": false, "s": "", "g": -1, "u": 65535},
		{"i": 2147483647, "f": 2, "b": true, "s": "long enough to need more", "g": 0, "u": 0}
	]`)
	plain := fromJSON(t, arrow.StructOf(fld("x", arrow.PrimitiveTypes.Int64)), `[{"x": 1}, {"x": null}, null, {"x": 3}, {"x": 4}]`)
	sc, b := roundTrip(t, record(t, column{"st", a}, column{"p", plain}))
	if sc.top[0].fast != fastStruct || sc.top[1].fast != fastStruct {
		t.Fatal("structs of scalars should take the fast path")
	}
	wantRows(t, sc, b, []map[string]any{
		{"st": map[string]any{"i": int32(1), "f": 1.5, "b": true, "s": "x", "g": float32(2.5), "u": int32(7)}, "p": map[string]any{"x": int64(1)}},
		{"p": map[string]any{}},
		{"st": map[string]any{}},
		{"st": map[string]any{"i": int32(-1), "f": math.Copysign(0, -1), "b": false, "s": "", "g": float32(-1), "u": int32(65535)}, "p": map[string]any{"x": int64(3)}},
		{"st": map[string]any{"i": int32(2147483647), "f": 2.0, "b": true, "s": "long enough to need more", "g": float32(0), "u": int32(0)}, "p": map[string]any{"x": int64(4)}},
	})
	// A field with an unaligned buffer sends the struct down the general path.
	raw := make([]byte, 4*5+1)[1:]
	for i := 0; i < 5; i++ {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(i))
	}
	ints := array.NewData(arrow.PrimitiveTypes.Int32, 5, []*memory.Buffer{nil, memory.NewBufferBytes(raw)}, nil, 0, 0)
	sdt := arrow.StructOf(fld("i", arrow.PrimitiveTypes.Int32))
	st := array.MakeFromData(array.NewData(sdt, 5, []*memory.Buffer{buf(0b11101)}, []arrow.ArrayData{ints}, 1, 0))
	sc2, b2 := roundTrip(t, record(t, column{"st", st}))
	wantRows(t, sc2, b2, []map[string]any{
		{"st": map[string]any{"i": int32(0)}}, {}, {"st": map[string]any{"i": int32(2)}}, {"st": map[string]any{"i": int32(3)}}, {"st": map[string]any{"i": int32(4)}},
	})
}
