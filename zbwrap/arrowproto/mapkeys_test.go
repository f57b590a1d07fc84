package arrowproto

import (
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A protobuf map keeps one value per key, so an Arrow map value that holds a
// key twice would lose entries silently on the server: it is a row error
// naming the key.

func TestDuplicateMapKeysAreRowErrors(t *testing.T) {
	dt := arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64)
	a := fromJSON(t, dt, `[
		[{"key": "a", "value": 1}, {"key": "b", "value": 2}],
		[{"key": "a", "value": 1}, {"key": "a", "value": 2}],
		[],
		[{"key": "x", "value": 1}, {"key": "y", "value": 2}, {"key": "x", "value": 3}],
		null,
		[{"key": "", "value": 1}, {"key": "", "value": 1}],
		[{"key": "ab", "value": 1}, {"key": "a", "value": 2}, {"key": "b", "value": 3}]
	]`)
	ids := fromJSON(t, arrow.PrimitiveTypes.Int16, `[0, 1, 2, 3, 4, 5, 6]`)
	sc, b := roundTrip(t, record(t, column{"id", ids}, column{"m", a}))
	wantRowErrors(t, b, "m.key", "duplicate map key", 1, 3, 5)
	for row, want := range map[int]string{1: `key "a" (entries 0 and 1 `, 3: `key "x" (entries 0 and 2 `, 5: `key "" (entries 0 and 1 `} {
		if e := rowError(b, row); !strings.Contains(e.Reason, want) {
			t.Fatalf("row %d: reason %q does not say %s", row, e.Reason, want)
		}
	}
	wantRows(t, sc, b, []map[string]any{
		{"id": int32(0), "m": map[any]any{"a": int64(1), "b": int64(2)}}, nil, {"id": int32(2)}, nil, {"id": int32(4)}, nil,
		{"id": int32(6), "m": map[any]any{"ab": int64(1), "a": int64(2), "b": int64(3)}},
	})
}

func TestDuplicateMapKeysInLargeMaps(t *testing.T) {
	// Maps beyond maxPairwiseKeys entries are sorted to find duplicates.
	mb := array.NewMapBuilder(mem, arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32, false)
	ib := array.NewMapBuilder(mem, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int32, false)
	const n = 3 * maxPairwiseKeys
	for row := range 4 {
		mb.Append(true)
		ib.Append(true)
		for k := range n {
			key := k
			if row == 1 && k == n-2 || row == 3 && k == n-1 {
				key = 7 // the same as entry 7
			}
			mb.KeyBuilder().(*array.StringBuilder).Append(fmt.Sprintf("key-%03d", key))
			mb.ItemBuilder().(*array.Int32Builder).Append(int32(k))
			ib.KeyBuilder().(*array.Int64Builder).Append(int64(key) << 40)
			ib.ItemBuilder().(*array.Int32Builder).Append(int32(k))
		}
	}
	_, b := roundTrip(t, record(t, column{"s", mb.NewArray()}))
	wantRowErrors(t, b, "s.key", `duplicate map key "key-007"`, 1, 3)
	if e := rowError(b, 1); !strings.Contains(e.Reason, fmt.Sprintf("(entries 7 and %d ", n-2)) {
		t.Fatalf("reason %q", e.Reason)
	}
	_, b = roundTrip(t, record(t, column{"i", ib.NewArray()}))
	wantRowErrors(t, b, "i.key", fmt.Sprintf("duplicate map key %d ", int64(7)<<40), 1, 3)
	if e := rowError(b, 3); !strings.Contains(e.Reason, fmt.Sprintf("(entries 7 and %d ", n-1)) {
		t.Fatalf("reason %q", e.Reason)
	}
}

// keyedMap builds a map<kt, int8> whose single row holds keys.
func keyedMap(t *testing.T, keys arrow.ArrayData) arrow.Array {
	t.Helper()
	mt := arrow.MapOf(keys.DataType(), arrow.PrimitiveTypes.Int8)
	n := keys.Len()
	items := array.NewData(arrow.PrimitiveTypes.Int8, n, []*memory.Buffer{nil, memory.NewBufferBytes(make([]byte, n))}, nil, 0, 0)
	entries := array.NewData(mt.Elem(), n, []*memory.Buffer{nil}, []arrow.ArrayData{keys, items}, 0, 0)
	return array.MakeFromData(array.NewData(mt, 1, []*memory.Buffer{nil, i32s(0, int32(n))}, []arrow.ArrayData{entries}, 0, 0))
}

func TestDuplicateMapKeysOfEveryKind(t *testing.T) {
	// Keys are compared as the protobuf map compares them: after unit
	// conversion, by decimal value, through dictionaries.
	ns := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Nanosecond})
	ns.AppendValues([]arrow.Timestamp{1000, 2000, 1999}, nil) // 1999 ns is 1 µs, as 1000 ns is
	dec := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 10, Scale: 2})
	dec.AppendValues([]decimal128.Num{decimal128.FromI64(150), decimal128.FromI64(-150), decimal128.FromI64(150)}, nil)
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	dk := array.NewData(dict, 2, []*memory.Buffer{nil, buf(0, 1)}, nil, 0, 0)
	dk.SetDictionary(fromJSON(t, arrow.BinaryTypes.String, `["same", "same"]`).Data())
	for _, tc := range []struct {
		name string
		keys arrow.ArrayData
		want string
	}{
		{"bool", fromJSON(t, arrow.FixedWidthTypes.Boolean, `[true, false, true]`).Data(), "key true (entries 0 and 2 "},
		{"int8", fromJSON(t, arrow.PrimitiveTypes.Int8, `[-1, 1, -1]`).Data(), "key -1 (entries 0 and 2 "},
		{"uint32", fromJSON(t, arrow.PrimitiveTypes.Uint32, `[4294967295, 4294967295]`).Data(), "key 4294967295 (entries 0 and 1 "},
		{"timestamp", ns.NewArray().Data(), "key 1 (entries 0 and 2 "},
		{"uint64", fromJSON(t, arrow.PrimitiveTypes.Uint64, `[9223372036854775807, 1, 9223372036854775807]`).Data(), "key 9223372036854775807 (entries 0 and 2 "},
		{"decimal", dec.NewArray().Data(), "key 1.50 (entries 0 and 2 "},
		{"dictionary", dk, `key "same" (entries 0 and 1 `},
		{"string_view", fromJSON(t, arrow.BinaryTypes.StringView, `["a long key past the inline part", "short", "a long key past the inline part"]`).Data(),
			`key "a long key past the inline part" (entries 0 and 2 `},
		{"large_string", fromJSON(t, arrow.BinaryTypes.LargeString, `["`+strings.Repeat("k", 100)+`", "`+strings.Repeat("k", 100)+`"]`).Data(),
			`key "` + strings.Repeat("k", 64) + `"... (entries 0 and 1 `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, b := roundTrip(t, record(t, column{"m", keyedMap(t, tc.keys)}))
			wantRowErrors(t, b, "m.key", "duplicate map "+tc.want, 0)
		})
	}
}

func TestDuplicateMapKeysNested(t *testing.T) {
	// A map inside a list and a map inside a map's value; the inner map is
	// checked first, as its entries are encoded first.
	inner := arrow.MapOf(arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String)
	l := fromJSON(t, arrow.ListOf(inner), `[
		[[{"key": 1, "value": "a"}], [{"key": 1, "value": "a"}]],
		[[{"key": 1, "value": "a"}, {"key": 2, "value": "b"}], [{"key": 3, "value": "c"}, {"key": 3, "value": "d"}]]
	]`)
	sc, b := roundTrip(t, record(t, column{"l", l}))
	wantRowErrors(t, b, "l[].key", "duplicate map key 3 ", 1)
	wantRows(t, sc, b, []map[string]any{{"l": []any{
		map[string]any{"element": map[any]any{int32(1): "a"}}, map[string]any{"element": map[any]any{int32(1): "a"}},
	}}, nil})

	mm := fromJSON(t, arrow.MapOf(arrow.BinaryTypes.String, inner), `[
		[{"key": "x", "value": [{"key": 1, "value": "a"}, {"key": 1, "value": "b"}]}, {"key": "x", "value": []}],
		[{"key": "x", "value": []}, {"key": "x", "value": []}],
		[{"key": "x", "value": [{"key": 1, "value": "a"}]}, {"key": "y", "value": [{"key": 1, "value": "a"}]}]
	]`)
	sc, b = roundTrip(t, record(t, column{"mm", mm}))
	if len(b.Errors) != 2 || b.Errors[0].Row != 0 || b.Errors[0].Column != "mm.value.key" || b.Errors[1].Row != 1 || b.Errors[1].Column != "mm.key" {
		t.Fatalf("errors = %v", b.Errors)
	}
	wantRows(t, sc, b, []map[string]any{nil, nil, {"mm": map[any]any{
		"x": map[string]any{"element": map[any]any{int32(1): "a"}}, "y": map[string]any{"element": map[any]any{int32(1): "a"}},
	}}})
}

func TestDuplicateKeysOfRepeatedMessagesAreKept(t *testing.T) {
	// A caller's descriptor may spell a map as a repeated key/value message
	// that is not a map entry: every entry is kept, duplicates included.
	d := mustDesc(t, `name: "R"
		field { name: "m" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "Pair" }
		nested_type { name: "Pair"
			field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
			field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 } }`)
	rec := record(t, column{"m", fromJSON(t, arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64),
		`[[{"key": "a", "value": 1}, {"key": "a", "value": 2}]]`)})
	sc, err := NewSchemaWithDescriptor(rec.Schema(), d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	checkBatchDesc(t, d, rec, b)
	want := map[string]any{"m": []any{map[string]any{"key": "a", "value": int64(1)}, map[string]any{"key": "a", "value": int64(2)}}}
	if got := decodedDesc(t, d, b, 0); len(b.Errors) != 0 || !equalValue(got, want) {
		t.Fatalf("errors %v, row 0 = %s", b.Errors, show(got))
	}
}
