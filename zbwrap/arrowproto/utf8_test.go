package arrowproto

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Protobuf string fields must hold UTF-8, and a server rejects a whole
// request for one value that does not. Arrow producers do not always check
// (pyarrow does not on export), so a value that is not UTF-8 is a row error.

// badText holds values that are not UTF-8 at rows 1, 3, 4 and 6: a stray
// 0xff, a character split between two values (together they are a valid
// "é"), and a truncated 4-byte sequence. Row 5 is null.
var badText = []string{"ok", "\xff", "fine", "\xc3", "\xa9", "", "\xf0\x9f\x98", "中文 ✓"}

// textArray builds an array of string-like type dt holding vals, null where
// valid is false (nil: no nulls).
func textArray(t testing.TB, dt arrow.DataType, vals []string, valid []bool) arrow.Array {
	t.Helper()
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for i, v := range vals {
		if valid != nil && !valid[i] {
			b.AppendNull()
			continue
		}
		switch b := b.(type) {
		case *array.StringBuilder:
			b.Append(v)
		case *array.LargeStringBuilder:
			b.Append(v)
		case *array.StringViewBuilder:
			b.Append(v)
		case *array.BinaryBuilder:
			b.Append([]byte(v))
		default:
			t.Fatalf("textArray: %T", b)
		}
	}
	return b.NewArray()
}

// wantRowErrors checks that exactly rows fail, each at column path with a
// reason containing reason.
func wantRowErrors(t *testing.T, b *Batch, path, reason string, rows ...int) {
	t.Helper()
	if len(b.Errors) != len(rows) {
		t.Fatalf("errors = %v, want rows %v", b.Errors, rows)
	}
	for i, r := range rows {
		e := b.Errors[i]
		if e.Row != r || e.Column != path || !strings.Contains(e.Reason, reason) {
			t.Fatalf("error %d = %v, want row %d at %q (%s)", i, e, r, path, reason)
		}
		if msg := e.Error(); !strings.Contains(msg, path) {
			t.Fatalf("message %q does not name the column", msg)
		}
	}
}

const notUTF8 = "not valid UTF-8"

func TestInvalidUTF8IsARowError(t *testing.T) {
	valid := []bool{true, true, true, true, true, false, true, true}
	for _, dt := range []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.StringView} {
		for _, nulls := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/nulls=%v", dt, nulls), func(t *testing.T) {
				var v []bool
				if nulls {
					v = valid
				}
				a := textArray(t, dt, badText, v)
				ids := fromJSON(t, arrow.PrimitiveTypes.Int32, `[0, 1, 2, 3, 4, 5, 6, 7]`)
				sc, b := roundTrip(t, record(t, column{"id", ids}, column{"s", a}))
				wantRowErrors(t, b, "s", notUTF8, 1, 3, 4, 6)
				want := map[string]any{"id": int32(5), "s": ""}
				if nulls {
					want = map[string]any{"id": int32(5)}
				}
				wantRows(t, sc, b, []map[string]any{
					{"id": int32(0), "s": "ok"}, nil, {"id": int32(2), "s": "fine"}, nil, nil, want, nil, {"id": int32(7), "s": "中文 ✓"},
				})
			})
		}
	}
	// Bytes that are UTF-8 as a whole can still split a character between
	// two values.
	a := textArray(t, arrow.BinaryTypes.String, []string{"a", "\xc3", "\xa9", "b"}, nil)
	_, b := roundTrip(t, record(t, column{"s", a}))
	wantRowErrors(t, b, "s", notUTF8, 1, 2)
	// The reason says where the value goes wrong.
	a = textArray(t, arrow.BinaryTypes.String, []string{"ab\xffc"}, nil)
	_, b = roundTrip(t, record(t, column{"s", a}))
	wantRowErrors(t, b, "s", "byte 2 of 4 is 0xff", 0)
}

func TestInvalidUTF8UnderANullIsNotChecked(t *testing.T) {
	// The bytes behind a null value are never sent.
	d := array.NewData(arrow.BinaryTypes.String, 3, []*memory.Buffer{buf(0b101), i32s(0, 1, 2, 3), buf('a', 0xff, 'c')}, nil, 1, 0)
	sc, b := roundTrip(t, record(t, column{"s", array.MakeFromData(d)}))
	if len(b.Errors) != 0 {
		t.Fatalf("errors = %v", b.Errors)
	}
	wantRows(t, sc, b, []map[string]any{{"s": "a"}, {}, {"s": "c"}})
	// Nor behind a null struct, on the struct fast path.
	st := arrow.StructOf(fld("n", arrow.BinaryTypes.String))
	sd := array.NewData(st, 3, []*memory.Buffer{buf(0b101)}, []arrow.ArrayData{
		array.NewData(arrow.BinaryTypes.String, 3, []*memory.Buffer{nil, i32s(0, 1, 2, 3), buf('a', 0xff, 'c')}, nil, 0, 0),
	}, 1, 0)
	sc, b = roundTrip(t, record(t, column{"st", array.MakeFromData(sd)}))
	if len(b.Errors) != 0 {
		t.Fatalf("errors = %v", b.Errors)
	}
	wantRows(t, sc, b, []map[string]any{{"st": map[string]any{"n": "a"}}, {}, {"st": map[string]any{"n": "c"}}})
}

func TestInvalidUTF8WithUnalignedOffsets(t *testing.T) {
	// Offsets not aligned for their type skip the check of all values at
	// once and the column fast path: every value is checked on its own.
	vals := []byte("a\xc3\xa9b\xff")
	ends := []int{0, 1, 2, 3, 4, 5}
	offs := make([]byte, 4*len(ends)+1)[1:]
	loffs := make([]byte, 8*len(ends)+2)[2:]
	for i, e := range ends {
		binary.LittleEndian.PutUint32(offs[4*i:], uint32(e))
		binary.LittleEndian.PutUint64(loffs[8*i:], uint64(e))
	}
	s := array.NewData(arrow.BinaryTypes.String, 5, []*memory.Buffer{nil, memory.NewBufferBytes(offs), memory.NewBufferBytes(vals)}, nil, 0, 0)
	l := array.NewData(arrow.BinaryTypes.LargeString, 5, []*memory.Buffer{nil, memory.NewBufferBytes(loffs), memory.NewBufferBytes(vals)}, nil, 0, 0)
	for name, d := range map[string]arrow.ArrayData{"string": s, "large_string": l} {
		t.Run(name, func(t *testing.T) {
			sc, b := roundTrip(t, record(t, column{"s", array.MakeFromData(d)}))
			wantRowErrors(t, b, "s", notUTF8, 1, 2, 4)
			wantRows(t, sc, b, []map[string]any{{"s": "a"}, nil, nil, {"s": "b"}, nil})
		})
	}
}

func TestInvalidUTF8Nested(t *testing.T) {
	str := arrow.BinaryTypes.String
	bad := func(vals ...string) arrow.Array { return textArray(t, str, vals, nil) }

	// A list element.
	lb := array.NewListBuilder(mem, str)
	for _, row := range [][]string{{"a", "b"}, {"c", "\xff"}, {}, {"\xc3", "\xa9"}, {"é"}} {
		lb.Append(true)
		for _, v := range row {
			lb.ValueBuilder().(*array.StringBuilder).Append(v)
		}
	}
	sc, b := roundTrip(t, record(t, column{"l", lb.NewArray()}))
	wantRowErrors(t, b, "l[]", notUTF8, 1, 3)
	wantRows(t, sc, b, []map[string]any{{"l": []any{"a", "b"}}, nil, {}, nil, {"l": []any{"é"}}})

	// A struct of scalars (the struct fast path) and a struct holding a list
	// (the general path); the first bad field of a row is the one reported.
	st := arrow.StructOf(fld("id", arrow.PrimitiveTypes.Int32), fld("name", str), fld("alias", str))
	sd := array.NewStructData(array.NewData(st, 4, []*memory.Buffer{nil}, []arrow.ArrayData{
		fromJSON(t, arrow.PrimitiveTypes.Int32, `[1, 2, 3, 4]`).Data(), bad("x", "\xff", "y", "\xfe").Data(), bad("p", "q", "\xfd", "\xfc").Data(),
	}, 0, 0))
	deep := arrow.StructOf(fld("tags", arrow.ListOf(str)))
	tags := array.NewListBuilder(mem, str)
	for _, row := range [][]string{{"t"}, {}, {}, {"\xff"}} {
		tags.Append(true)
		for _, v := range row {
			tags.ValueBuilder().(*array.StringBuilder).Append(v)
		}
	}
	dd := array.NewStructData(array.NewData(deep, 4, []*memory.Buffer{nil}, []arrow.ArrayData{tags.NewArray().Data()}, 0, 0))
	sc, b = roundTrip(t, record(t, column{"s", sd}, column{"d", dd}))
	if len(b.Errors) != 3 || b.Errors[0].Row != 1 || b.Errors[0].Column != "s.name" || b.Errors[1].Row != 2 || b.Errors[1].Column != "s.alias" ||
		b.Errors[2].Row != 3 || b.Errors[2].Column != "s.name" {
		t.Fatalf("errors = %v", b.Errors)
	}
	wantRows(t, sc, b, []map[string]any{{"s": map[string]any{"id": int32(1), "name": "x", "alias": "p"}, "d": map[string]any{"tags": []any{"t"}}}, nil, nil, nil})
	_, b = roundTrip(t, record(t, column{"d", dd}))
	wantRowErrors(t, b, "d.tags[]", notUTF8, 3)

	// Map keys and values, and a dictionary-encoded key.
	mt := arrow.MapOf(str, str)
	entries := array.NewData(mt.Elem(), 5, []*memory.Buffer{nil}, []arrow.ArrayData{bad("k", "\xff", "k", "k2", "k").Data(), bad("v", "v", "\xff", "v", "v").Data()}, 0, 0)
	m := array.MakeFromData(array.NewData(mt, 4, []*memory.Buffer{nil, i32s(0, 1, 2, 4, 5)}, []arrow.ArrayData{entries}, 0, 0))
	sc, b = roundTrip(t, record(t, column{"m", m}))
	if len(b.Errors) != 2 || b.Errors[0].Row != 1 || b.Errors[0].Column != "m.key" || b.Errors[1].Row != 2 || b.Errors[1].Column != "m.value" {
		t.Fatalf("errors = %v", b.Errors)
	}
	wantRows(t, sc, b, []map[string]any{{"m": map[any]any{"k": "v"}}, nil, nil, {"m": map[any]any{"k": "v"}}})

	kt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: str}
	keys := array.NewData(kt, 3, []*memory.Buffer{nil, buf(0, 1, 0)}, nil, 0, 0)
	keys.SetDictionary(bad("a", "\xc0\x80").Data()) // an overlong encoding of NUL
	dm := arrow.MapOf(kt, arrow.PrimitiveTypes.Int8)
	entries = array.NewData(dm.Elem(), 3, []*memory.Buffer{nil}, []arrow.ArrayData{keys, fromJSON(t, arrow.PrimitiveTypes.Int8, `[1, 2, 3]`).Data()}, 0, 0)
	m = array.MakeFromData(array.NewData(dm, 3, []*memory.Buffer{nil, i32s(0, 1, 2, 3)}, []arrow.ArrayData{entries}, 0, 0))
	sc, b = roundTrip(t, record(t, column{"m", m}))
	wantRowErrors(t, b, "m.key", notUTF8, 1)
	wantRows(t, sc, b, []map[string]any{{"m": map[any]any{"a": int32(1)}}, nil, {"m": map[any]any{"a": int32(3)}}})
}

func TestInvalidUTF8InABytesField(t *testing.T) {
	// A string column in a bytes field of the caller's descriptor takes any
	// bytes; a binary column in a string field must be UTF-8.
	d := &descriptorpb.DescriptorProto{
		Name: proto.String("R"),
		Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("s"), Number: proto.Int32(1), Label: lOpt.Enum(), Type: tBytes.Enum()},
			{Name: proto.String("b"), Number: proto.Int32(2), Label: lOpt.Enum(), Type: tString.Enum()},
		},
	}
	rec := record(t,
		column{"s", textArray(t, arrow.BinaryTypes.String, []string{"\xff", "ok", "\xc3"}, nil)},
		column{"b", textArray(t, arrow.BinaryTypes.Binary, []string{"x", "\xff", "y"}, nil)},
	)
	sc, err := NewSchemaWithDescriptor(rec.Schema(), d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	checkBatchDesc(t, d, rec, b)
	wantRowErrors(t, b, "b", notUTF8, 1)
	for r, want := range []map[string]any{{"s": []byte{0xff}, "b": "x"}, nil, {"s": []byte{0xc3}, "b": "y"}} {
		if got := decodedDesc(t, d, b, r); !equalValue(got, want) {
			t.Fatalf("row %d: got %s, want %s", r, show(got), show(want))
		}
	}
}

func TestAllValuesUTF8AtOnce(t *testing.T) {
	// Whether bind finds all values of a string column valid at once, so that
	// they are not checked one by one.
	for _, tc := range []struct {
		vals []string
		all  bool
	}{
		{[]string{"a", "é", "", "中文", "😀"}, true},
		{[]string{"", ""}, true},
		{[]string{"a", "\xc3", "\xa9"}, false},        // valid together, split apart
		{[]string{"\xc3\xa9\xe4", "\xb8\xad"}, false}, // likewise, inside longer values
		{[]string{"a", "\xff"}, false},
		{[]string{"\xe4\xb8"}, false},
	} {
		for _, dt := range []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString} {
			a := textArray(t, dt, tc.vals, nil)
			sc, err := NewSchema(schemaOf(fld("s", dt)))
			if err != nil {
				t.Fatal(err)
			}
			e := sc.getEncoder()
			if err := e.bind(sc.top[0].col, a.Data(), 0, a.Len()); err != nil {
				t.Fatal(err)
			}
			if got := !e.cols[sc.top[0].col].utf8; got != tc.all {
				t.Fatalf("%s %q: all valid at once = %v, want %v", dt, tc.vals, got, tc.all)
			}
		}
	}
}

func TestIsASCII(t *testing.T) {
	for n := range 80 {
		b := []byte(strings.Repeat("x", n))
		if !isASCII(b) {
			t.Fatalf("%d ASCII bytes not ASCII", n)
		}
		for i := range n {
			b[i] = 0x80
			if isASCII(b) {
				t.Fatalf("0x80 at %d of %d bytes passes", i, n)
			}
			b[i] = 'x'
		}
	}
}
