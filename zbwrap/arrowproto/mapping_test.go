package arrowproto

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"google.golang.org/protobuf/types/descriptorpb"
)

// One test per row of the mapping table ("Type mapping" in doc.go). Each builds
// columns with nulls, empty values and extremes, checks the descriptor type,
// checks decoded values against literals, and runs the oracle over the whole
// batch and over slices with non-zero offsets.

const (
	tBool   = descriptorpb.FieldDescriptorProto_TYPE_BOOL
	tInt32  = descriptorpb.FieldDescriptorProto_TYPE_INT32
	tInt64  = descriptorpb.FieldDescriptorProto_TYPE_INT64
	tFloat  = descriptorpb.FieldDescriptorProto_TYPE_FLOAT
	tDouble = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE
	tString = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tBytes  = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	tMsg    = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	lOpt    = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	lRep    = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
)

// wantField checks the type and label of top-level field name.
func wantField(t *testing.T, sc *Schema, name string, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label) *descriptorpb.FieldDescriptorProto {
	t.Helper()
	for _, f := range sc.Descriptor().GetField() {
		if f.GetName() == name {
			if f.GetType() != typ || f.GetLabel() != label {
				t.Fatalf("field %s: %v %v, want %v %v", name, f.GetLabel(), f.GetType(), label, typ)
			}
			return f
		}
	}
	t.Fatalf("no field %s in %v", name, sc.Descriptor())
	return nil
}

// wantRows checks the decoded rows against literals (nil: the row failed).
func wantRows(t *testing.T, sc *Schema, b *Batch, want []map[string]any) {
	t.Helper()
	for r, w := range want {
		got := decoded(t, sc, b, r)
		if w == nil {
			if got != nil {
				t.Fatalf("row %d encoded as %s, want a row error", r, show(got))
			}
			continue
		}
		if !equalValue(got, w) {
			t.Fatalf("row %d:\n got  %s\n want %s", r, show(got), show(w))
		}
	}
}

func TestMappingBool(t *testing.T) {
	rec := record(t, column{"b", fromJSON(t, arrow.FixedWidthTypes.Boolean, `[true, false, null, true, false]`)})
	sc, b := roundTrip(t, rec)
	wantField(t, sc, "b", tBool, lOpt)
	wantRows(t, sc, b, []map[string]any{{"b": true}, {"b": false}, {}, {"b": true}, {"b": false}})
}

func TestMappingSmallSignedInts(t *testing.T) {
	for _, tc := range []struct {
		dt       arrow.DataType
		min, max int64
	}{
		{arrow.PrimitiveTypes.Int8, math.MinInt8, math.MaxInt8},
		{arrow.PrimitiveTypes.Int16, math.MinInt16, math.MaxInt16},
		{arrow.PrimitiveTypes.Int32, math.MinInt32, math.MaxInt32},
	} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			a := fromJSON(t, tc.dt, `[0, null, -1, 1, `+itoa(tc.min)+`, `+itoa(tc.max)+`]`)
			sc, b := roundTrip(t, record(t, column{"v", a}))
			wantField(t, sc, "v", tInt32, lOpt)
			wantRows(t, sc, b, []map[string]any{{"v": int32(0)}, {}, {"v": int32(-1)}, {"v": int32(1)}, {"v": int32(tc.min)}, {"v": int32(tc.max)}})
			// A negative int32 is a 10-byte varint, as protobuf requires.
			if got := len(b.Records[2]); got != 11 {
				t.Fatalf("record of -1 is %d bytes, want 11", got)
			}
		})
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestMappingInt64(t *testing.T) {
	a := fromJSON(t, arrow.PrimitiveTypes.Int64, `[0, null, -1, 9223372036854775807, -9223372036854775808]`)
	sc, b := roundTrip(t, record(t, column{"v", a}))
	wantField(t, sc, "v", tInt64, lOpt)
	wantRows(t, sc, b, []map[string]any{{"v": int64(0)}, {}, {"v": int64(-1)}, {"v": int64(math.MaxInt64)}, {"v": int64(math.MinInt64)}})
}

func TestMappingSmallUnsignedInts(t *testing.T) {
	for _, tc := range []struct {
		dt  arrow.DataType
		max int64
	}{{arrow.PrimitiveTypes.Uint8, math.MaxUint8}, {arrow.PrimitiveTypes.Uint16, math.MaxUint16}} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			a := fromJSON(t, tc.dt, `[0, null, 1, `+itoa(tc.max)+`]`)
			sc, b := roundTrip(t, record(t, column{"v", a}))
			wantField(t, sc, "v", tInt32, lOpt)
			wantRows(t, sc, b, []map[string]any{{"v": int32(0)}, {}, {"v": int32(1)}, {"v": int32(tc.max)}})
		})
	}
}

func TestMappingUint32(t *testing.T) {
	a := fromJSON(t, arrow.PrimitiveTypes.Uint32, `[0, null, 4294967295]`)
	sc, b := roundTrip(t, record(t, column{"v", a}))
	wantField(t, sc, "v", tInt64, lOpt)
	wantRows(t, sc, b, []map[string]any{{"v": int64(0)}, {}, {"v": int64(math.MaxUint32)}})
}

func TestMappingUint64(t *testing.T) {
	a := fromJSON(t, arrow.PrimitiveTypes.Uint64, `[0, null, 9223372036854775807, 9223372036854775808, 18446744073709551615, 7]`)
	other := fromJSON(t, arrow.BinaryTypes.String, `["a", "b", "c", "d", "e", "f"]`)
	sc, b := roundTrip(t, record(t, column{"v", a}, column{"s", other}))
	wantField(t, sc, "v", tInt64, lOpt)
	wantRows(t, sc, b, []map[string]any{
		{"v": int64(0), "s": "a"}, {"s": "b"}, {"v": int64(math.MaxInt64), "s": "c"}, nil, nil, {"v": int64(7), "s": "f"},
	})
	if len(b.Errors) != 2 || b.Errors[0].Row != 3 || b.Errors[1].Row != 4 || b.Errors[0].Column != "v" {
		t.Fatalf("errors = %v, want rows 3 and 4 at column v", b.Errors)
	}
	if msg := b.Errors[0].Error(); !strings.Contains(msg, "row 3") || !strings.Contains(msg, `"v"`) || !strings.Contains(msg, "9223372036854775808") {
		t.Fatalf("error message %q should name row, column and value", msg)
	}
}

func TestMappingFloat16AndFloat32(t *testing.T) {
	h := array.NewFloat16Builder(mem)
	for _, f := range []float32{0, 1.5, -2, 65504, 6.1035156e-05 /* smallest normal */} {
		h.Append(float16.New(f))
	}
	h.Append(float16.FromBits(0x0001)) // smallest subnormal
	h.AppendNull()
	h.Append(float16.FromBits(0x7c00)) // +Inf
	h.Append(float16.FromBits(0xfc00)) // -Inf
	h.Append(float16.FromBits(0x7e01)) // NaN with payload
	h.Append(float16.FromBits(0x8000)) // -0
	h.Append(float16.FromBits(0x03ff)) // largest subnormal
	f16 := h.NewArray()
	f32 := fromJSON(t, arrow.PrimitiveTypes.Float32, `[0, 1.5, -2, 3.4028235e38, 1e-45, -1e-45, null, 1, 2, 3, -0.0, 5]`)
	sc, b := roundTrip(t, record(t, column{"h", f16}, column{"f", f32}))
	wantField(t, sc, "h", tFloat, lOpt)
	wantField(t, sc, "f", tFloat, lOpt)
	row := decoded(t, sc, b, 11)
	if got := row["h"].(float32); got != float32(math.Ldexp(1023, -24)) {
		t.Fatalf("largest subnormal half = %g", got)
	}
	if got := decoded(t, sc, b, 5)["h"].(float32); got != float32(math.Ldexp(1, -24)) {
		t.Fatalf("smallest subnormal half = %g", got)
	}
	if got := decoded(t, sc, b, 9)["h"].(float32); math.Float32bits(got) != 0x7fc02000 {
		t.Fatalf("NaN payload not kept: %#x", math.Float32bits(got))
	}
	if _, ok := decoded(t, sc, b, 6)["h"]; ok {
		t.Fatal("null half encoded")
	}
}

func TestMappingFloat64(t *testing.T) {
	a := fromJSON(t, arrow.PrimitiveTypes.Float64, `[0, null, -0.0, 1.7976931348623157e308, 5e-324, -1.5]`)
	sc, b := roundTrip(t, record(t, column{"d", a}))
	wantField(t, sc, "d", tDouble, lOpt)
	wantRows(t, sc, b, []map[string]any{{"d": 0.0}, {}, {"d": math.Copysign(0, -1)}, {"d": math.MaxFloat64}, {"d": 5e-324}, {"d": -1.5}})
}

func TestMappingStrings(t *testing.T) {
	long := strings.Repeat("x", 300) // longer than a view's inline 12 bytes, 2-byte length varint
	for _, dt := range []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.StringView} {
		t.Run(dt.String(), func(t *testing.T) {
			a := fromJSON(t, dt, `["", null, "héllo wörld ✓", "`+long+`", "twelve bytes", "thirteen byte"]`)
			sc, b := roundTrip(t, record(t, column{"s", a}))
			wantField(t, sc, "s", tString, lOpt)
			wantRows(t, sc, b, []map[string]any{{"s": ""}, {}, {"s": "héllo wörld ✓"}, {"s": long}, {"s": "twelve bytes"}, {"s": "thirteen byte"}})
		})
	}
}

func TestMappingBinaries(t *testing.T) {
	for _, dt := range []arrow.DataType{arrow.BinaryTypes.Binary, arrow.BinaryTypes.LargeBinary, arrow.BinaryTypes.BinaryView} {
		t.Run(dt.String(), func(t *testing.T) {
			// base64 in JSON: "", null, 00 ff, 16 bytes
			a := fromJSON(t, dt, `["", null, "AP8=", "AAECAwQFBgcICQoLDA0ODw=="]`)
			sc, b := roundTrip(t, record(t, column{"b", a}))
			wantField(t, sc, "b", tBytes, lOpt)
			wantRows(t, sc, b, []map[string]any{{"b": []byte{}}, {}, {"b": []byte{0, 0xff}}, {"b": []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}})
		})
	}
	t.Run("fixed_size_binary", func(t *testing.T) {
		a := fromJSON(t, &arrow.FixedSizeBinaryType{ByteWidth: 3}, `["AAEC", null, "////"]`)
		sc, b := roundTrip(t, record(t, column{"b", a}))
		wantField(t, sc, "b", tBytes, lOpt)
		wantRows(t, sc, b, []map[string]any{{"b": []byte{0, 1, 2}}, {}, {"b": []byte{0xff, 0xff, 0xff}}})
	})
}

func TestMappingDate32(t *testing.T) {
	a := fromJSON(t, arrow.FixedWidthTypes.Date32, `[0, null, -1, 19000, 2147483647, -2147483648]`)
	sc, b := roundTrip(t, record(t, column{"d", a}))
	wantField(t, sc, "d", tInt32, lOpt)
	wantRows(t, sc, b, []map[string]any{{"d": int32(0)}, {}, {"d": int32(-1)}, {"d": int32(19000)}, {"d": int32(math.MaxInt32)}, {"d": int32(math.MinInt32)}})
}

func TestMappingDate64(t *testing.T) {
	// 1 ms before the epoch is day -1 (floor); an out-of-range day is a row error.
	a := fromJSON(t, arrow.FixedWidthTypes.Date64, `[0, null, -1, 86400000, 86399999, -86400000, -86400001, 9223372036854775807]`)
	sc, b := roundTrip(t, record(t, column{"d", a}))
	wantField(t, sc, "d", tInt32, lOpt)
	wantRows(t, sc, b, []map[string]any{{"d": int32(0)}, {}, {"d": int32(-1)}, {"d": int32(1)}, {"d": int32(0)}, {"d": int32(-1)}, {"d": int32(-2)}, nil})
	if e := rowError(b, 7); e == nil || !strings.Contains(e.Reason, "int32") {
		t.Fatalf("row 7 error = %v", e)
	}
}

func TestMappingTimestampWithTimeZone(t *testing.T) {
	testTimestamps(t, "UTC")
}

func TestMappingTimestampWithoutTimeZone(t *testing.T) {
	testTimestamps(t, "")
}

func testTimestamps(t *testing.T, tz string) {
	for _, tc := range []struct {
		unit arrow.TimeUnit
		in   string
		want []map[string]any
	}{
		{arrow.Second, `[0, null, -1, 1700000000, 9223372036854775807]`,
			[]map[string]any{{"t": int64(0)}, {}, {"t": int64(-1_000_000)}, {"t": int64(1_700_000_000_000_000)}, nil}},
		{arrow.Millisecond, `[0, null, -1, 1700000000123, -9223372036854775808]`,
			[]map[string]any{{"t": int64(0)}, {}, {"t": int64(-1000)}, {"t": int64(1_700_000_000_123_000)}, nil}},
		{arrow.Microsecond, `[0, null, -1, 9223372036854775807, -9223372036854775808]`,
			[]map[string]any{{"t": int64(0)}, {}, {"t": int64(-1)}, {"t": int64(math.MaxInt64)}, {"t": int64(math.MinInt64)}}},
		// Nanoseconds round toward negative infinity.
		{arrow.Nanosecond, `[0, null, -1, 1999, -1001, -9223372036854775808]`,
			[]map[string]any{{"t": int64(0)}, {}, {"t": int64(-1)}, {"t": int64(1)}, {"t": int64(-2)}, {"t": int64(-9223372036854776)}}},
	} {
		t.Run(tc.unit.String(), func(t *testing.T) {
			dt := &arrow.TimestampType{Unit: tc.unit, TimeZone: tz}
			sc, b := roundTrip(t, record(t, column{"t", fromJSON(t, dt, tc.in)}))
			wantField(t, sc, "t", tInt64, lOpt)
			wantRows(t, sc, b, tc.want)
		})
	}
}

func TestMappingTimeOfDay(t *testing.T) {
	for _, tc := range []struct {
		dt   arrow.DataType
		in   string
		want []map[string]any
	}{
		{arrow.FixedWidthTypes.Time32s, `[0, null, 86399]`, []map[string]any{{"t": int64(0)}, {}, {"t": int64(86_399_000_000)}}},
		{arrow.FixedWidthTypes.Time32ms, `[0, null, 86399999]`, []map[string]any{{"t": int64(0)}, {}, {"t": int64(86_399_999_000)}}},
		{arrow.FixedWidthTypes.Time64us, `[0, null, 86399999999]`, []map[string]any{{"t": int64(0)}, {}, {"t": int64(86_399_999_999)}}},
		{arrow.FixedWidthTypes.Time64ns, `[0, null, 86399999999999, 1999]`, []map[string]any{{"t": int64(0)}, {}, {"t": int64(86_399_999_999)}, {"t": int64(1)}}},
	} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			sc, b := roundTrip(t, record(t, column{"t", fromJSON(t, tc.dt, tc.in)}))
			wantField(t, sc, "t", tInt64, lOpt)
			wantRows(t, sc, b, tc.want)
		})
	}
}

func TestMappingDuration(t *testing.T) {
	for _, tc := range []struct {
		dt   arrow.DataType
		in   string
		want []map[string]any
	}{
		{arrow.FixedWidthTypes.Duration_s, `[1, null, -3, 9223372036854775807]`, []map[string]any{{"d": int64(1_000_000)}, {}, {"d": int64(-3_000_000)}, nil}},
		{arrow.FixedWidthTypes.Duration_ms, `[1, null, -3]`, []map[string]any{{"d": int64(1000)}, {}, {"d": int64(-3000)}}},
		{arrow.FixedWidthTypes.Duration_us, `[1, null, -3]`, []map[string]any{{"d": int64(1)}, {}, {"d": int64(-3)}}},
		{arrow.FixedWidthTypes.Duration_ns, `[1, null, -3, 5000]`, []map[string]any{{"d": int64(0)}, {}, {"d": int64(-1)}, {"d": int64(5)}}},
	} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			sc, b := roundTrip(t, record(t, column{"d", fromJSON(t, tc.dt, tc.in)}))
			wantField(t, sc, "d", tInt64, lOpt)
			wantRows(t, sc, b, tc.want)
		})
	}
}

func TestMappingDecimals(t *testing.T) {
	for _, tc := range []struct {
		dt   arrow.DataType
		in   string
		want []string
	}{
		{&arrow.Decimal32Type{Precision: 9, Scale: 3}, `["-12.340", null, "0", "0.005", "999999.999", "-999999.999"]`,
			[]string{"-12.340", "", "0.000", "0.005", "999999.999", "-999999.999"}},
		{&arrow.Decimal64Type{Precision: 18, Scale: 2}, `["1.5", null, "-0.01", "9999999999999999.99"]`,
			[]string{"1.50", "", "-0.01", "9999999999999999.99"}},
		{&arrow.Decimal128Type{Precision: 38, Scale: 0}, `["99999999999999999999999999999999999999", null, "-99999999999999999999999999999999999999", "0"]`,
			[]string{"99999999999999999999999999999999999999", "", "-99999999999999999999999999999999999999", "0"}},
		{&arrow.Decimal128Type{Precision: 10, Scale: 10}, `["0.0000000001", "-0.5"]`, []string{"0.0000000001", "-0.5000000000"}},
		{&arrow.Decimal128Type{Precision: 5, Scale: -2}, `["12300", "0", "-100"]`, []string{"12300", "0", "-100"}},
		{&arrow.Decimal256Type{Precision: 76, Scale: 5},
			`["-1234567890123456789012345678901234567890123456789012345678901234567.89012", null, "0.00001"]`,
			[]string{"-1234567890123456789012345678901234567890123456789012345678901234567.89012", "", "0.00001"}},
	} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			sc, b := roundTrip(t, record(t, column{"d", fromJSON(t, tc.dt, tc.in)}))
			wantField(t, sc, "d", tString, lOpt)
			var want []map[string]any
			for _, w := range tc.want {
				if w == "" {
					want = append(want, map[string]any{})
				} else {
					want = append(want, map[string]any{"d": w})
				}
			}
			wantRows(t, sc, b, want)
		})
	}
}

func TestMappingDictionary(t *testing.T) {
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	dict := fromJSON(t, arrow.BinaryTypes.String, `["red", null, "blue", ""]`)
	idx := fromJSON(t, arrow.PrimitiveTypes.Int8, `[0, 2, null, 1, 3, 0, 2]`)
	a := array.NewDictionaryArray(dt, idx, dict)
	// Dictionary values of a struct, with a uint64 index type.
	sdt := arrow.StructOf(arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true})
	sdict := fromJSON(t, sdt, `[{"n": 1}, {"n": null}, null]`)
	sidx := fromJSON(t, arrow.PrimitiveTypes.Uint64, `[2, 1, 0, 0, null, 1, 2]`)
	sa := array.NewDictionaryArray(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint64, ValueType: sdt}, sidx, sdict)
	sc, b := roundTrip(t, record(t, column{"c", a}, column{"s", sa}))
	wantField(t, sc, "c", tString, lOpt)
	wantField(t, sc, "s", tMsg, lOpt)
	wantRows(t, sc, b, []map[string]any{
		{"c": "red"}, {"c": "blue", "s": map[string]any{}}, {"s": map[string]any{"n": int64(1)}}, {"s": map[string]any{"n": int64(1)}},
		{"c": ""}, {"c": "red", "s": map[string]any{}}, {"c": "blue"},
	})
}

func TestMappingRunEndEncoded(t *testing.T) {
	runEnds := fromJSON(t, arrow.PrimitiveTypes.Int32, `[2, 3, 6, 7]`)
	values := fromJSON(t, arrow.PrimitiveTypes.Float64, `[1.5, null, -2, 0]`)
	a := array.NewRunEndEncodedArray(runEnds, values, 7, 0)
	re16 := fromJSON(t, arrow.PrimitiveTypes.Int16, `[1, 7]`)
	sv := fromJSON(t, arrow.BinaryTypes.String, `["first", "rest"]`)
	b16 := array.NewRunEndEncodedArray(re16, sv, 7, 0)
	re64 := fromJSON(t, arrow.PrimitiveTypes.Int64, `[7]`)
	lv := fromJSON(t, arrow.ListOf(arrow.PrimitiveTypes.Int32), `[[1, 2]]`)
	c64 := array.NewRunEndEncodedArray(re64, lv, 7, 0)
	sc, b := roundTrip(t, record(t, column{"r", a}, column{"s", b16}, column{"l", c64}))
	wantField(t, sc, "r", tDouble, lOpt)
	wantField(t, sc, "l", tInt32, lRep)
	l := []any{int32(1), int32(2)}
	wantRows(t, sc, b, []map[string]any{
		{"r": 1.5, "s": "first", "l": l}, {"r": 1.5, "s": "rest", "l": l}, {"s": "rest", "l": l},
		{"r": -2.0, "s": "rest", "l": l}, {"r": -2.0, "s": "rest", "l": l}, {"r": -2.0, "s": "rest", "l": l}, {"r": 0.0, "s": "rest", "l": l},
	})
	// A run-end encoded array sliced in the middle of a run.
	s := array.NewSlice(a, 3, 6)
	rec := record(t, column{"r", s})
	sc2, b2 := roundTrip(t, rec)
	wantRows(t, sc2, b2, []map[string]any{{"r": -2.0}, {"r": -2.0}, {"r": -2.0}})
}

func TestMappingExtension(t *testing.T) {
	ub := extensions.NewUUIDBuilder(mem)
	ub.AppendBytes([16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	ub.AppendNull()
	uuids := ub.NewArray()
	jt, err := extensions.NewJSONType(arrow.BinaryTypes.String)
	if err != nil {
		t.Fatal(err)
	}
	js := array.NewExtensionArrayWithStorage(jt, fromJSON(t, arrow.BinaryTypes.String, `["{\"a\":1}", null]`))
	b8 := array.NewExtensionArrayWithStorage(extensions.NewBool8Type(), fromJSON(t, arrow.PrimitiveTypes.Int8, `[-3, null]`))
	sc, b := roundTrip(t, record(t, column{"u", uuids}, column{"j", js}, column{"b", b8}))
	wantField(t, sc, "u", tBytes, lOpt)
	wantField(t, sc, "j", tString, lOpt)
	wantField(t, sc, "b", tInt32, lOpt)
	wantRows(t, sc, b, []map[string]any{
		{"u": []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, "j": `{"a":1}`, "b": int32(-3)}, {},
	})
}

func TestMappingNull(t *testing.T) {
	sc, b := roundTrip(t, record(t, column{"n", array.NewNull(3)}, column{"i", fromJSON(t, arrow.PrimitiveTypes.Int32, `[1, 2, 3]`)}))
	wantField(t, sc, "n", tString, lOpt)
	wantRows(t, sc, b, []map[string]any{{"i": int32(1)}, {"i": int32(2)}, {"i": int32(3)}})
}

func TestMappingLists(t *testing.T) {
	i64 := arrow.PrimitiveTypes.Int64
	for _, dt := range []arrow.DataType{
		arrow.ListOf(i64), arrow.LargeListOf(i64), arrow.ListViewOf(i64), arrow.LargeListViewOf(i64),
	} {
		t.Run(dt.String(), func(t *testing.T) {
			a := fromJSON(t, dt, `[[1, 2, 3], null, [], [-1], [4, null, 5], [9223372036854775807]]`)
			sc, b := roundTrip(t, record(t, column{"l", a}))
			wantField(t, sc, "l", tInt64, lRep)
			wantRows(t, sc, b, []map[string]any{
				{"l": []any{int64(1), int64(2), int64(3)}}, {}, {}, {"l": []any{int64(-1)}}, nil, {"l": []any{int64(math.MaxInt64)}},
			})
			if e := rowError(b, 4); e == nil || e.Column != "l[]" || !strings.Contains(e.Reason, "null list element") {
				t.Fatalf("row 4 error = %v", e)
			}
		})
	}
	t.Run("fixed_size_list", func(t *testing.T) {
		a := fromJSON(t, arrow.FixedSizeListOf(2, arrow.BinaryTypes.String), `[["a", "b"], null, ["", "c"], ["d", null]]`)
		sc, b := roundTrip(t, record(t, column{"l", a}))
		wantField(t, sc, "l", tString, lRep)
		wantRows(t, sc, b, []map[string]any{{"l": []any{"a", "b"}}, {}, {"l": []any{"", "c"}}, nil})
	})
	t.Run("list_of_lists", func(t *testing.T) {
		dt := arrow.ListOf(arrow.ListOf(arrow.PrimitiveTypes.Int32))
		a := fromJSON(t, dt, `[[[1, 2], [], [3]], null, [], [[4], null], [[null]]]`)
		sc, b := roundTrip(t, record(t, column{"m", a}))
		f := wantField(t, sc, "m", tMsg, lRep)
		wrapper := sc.Descriptor().GetNestedType()[0]
		if f.GetTypeName() != wrapper.GetName() || wrapper.GetName() != "m_element_List" || len(wrapper.GetField()) != 1 ||
			wrapper.GetField()[0].GetName() != "element" || wrapper.GetField()[0].GetLabel() != lRep {
			t.Fatalf("list of lists wrapper: %v", sc.Descriptor())
		}
		el := func(v ...int32) map[string]any {
			if len(v) == 0 {
				return map[string]any{}
			}
			items := []any{}
			for _, x := range v {
				items = append(items, x)
			}
			return map[string]any{"element": items}
		}
		wantRows(t, sc, b, []map[string]any{{"m": []any{el(1, 2), el(), el(3)}}, {}, {}, nil, nil})
		if e := rowError(b, 3); e == nil || e.Column != "m[]" {
			t.Fatalf("row 3 error = %v", e)
		}
		if e := rowError(b, 4); e == nil || e.Column != "m[][]" {
			t.Fatalf("row 4 error = %v", e)
		}
	})
}

func TestMappingStruct(t *testing.T) {
	dt := arrow.StructOf(
		arrow.Field{Name: "zip", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "city", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "geo", Type: arrow.StructOf(arrow.Field{Name: "lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true}), Nullable: true},
	)
	a := fromJSON(t, dt, `[{"zip": 1, "city": "x", "geo": {"lat": 1.5}}, null, {"zip": null, "city": null, "geo": null}, {"zip": 2, "city": "", "geo": {"lat": null}}]`)
	sc, b := roundTrip(t, record(t, column{"addr", a}))
	wantField(t, sc, "addr", tMsg, lOpt)
	wantRows(t, sc, b, []map[string]any{
		{"addr": map[string]any{"zip": int32(1), "city": "x", "geo": map[string]any{"lat": 1.5}}},
		{},
		{"addr": map[string]any{}},
		{"addr": map[string]any{"zip": int32(2), "city": "", "geo": map[string]any{}}},
	})
}

func TestMappingMap(t *testing.T) {
	dt := arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64)
	a := fromJSON(t, dt, `[[{"key": "a", "value": 1}, {"key": "b", "value": 2}], null, [], [{"key": "c", "value": null}], [{"key": "", "value": -1}]]`)
	sc, b := roundTrip(t, record(t, column{"m", a}))
	f := wantField(t, sc, "m", tMsg, lRep)
	entry := sc.Descriptor().GetNestedType()[0]
	if f.GetTypeName() != "MEntry" || entry.GetName() != "MEntry" || !entry.GetOptions().GetMapEntry() {
		t.Fatalf("map entry: %v", sc.Descriptor())
	}
	wantRows(t, sc, b, []map[string]any{
		{"m": map[any]any{"a": int64(1), "b": int64(2)}}, {}, {}, nil, {"m": map[any]any{"": int64(-1)}},
	})
	if e := rowError(b, 3); e == nil || e.Column != "m.value" || !strings.Contains(e.Reason, "null map value") {
		t.Fatalf("row 3 error = %v", e)
	}
	// Keys must be scalar: a float key has no protobuf map equivalent.
	_, err := NewSchema(arrow.NewSchema([]arrow.Field{{Name: "bad", Type: arrow.MapOf(arrow.PrimitiveTypes.Float64, arrow.PrimitiveTypes.Int8)}}, nil))
	var se *SchemaError
	if !errors.As(err, &se) || !errors.Is(err, ErrUnsupportedType) || se.Column != "bad.key" {
		t.Fatalf("float map key: %v", err)
	}
}

func TestMappingUnion(t *testing.T) {
	for _, dt := range []arrow.DataType{
		arrow.SparseUnionOf([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int8}}, []arrow.UnionTypeCode{0}),
		arrow.DenseUnionOf([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int8}}, []arrow.UnionTypeCode{0}),
	} {
		s := arrow.NewSchema([]arrow.Field{{Name: "ok", Type: arrow.PrimitiveTypes.Int8}, {Name: "s", Type: arrow.StructOf(arrow.Field{Name: "u", Type: dt})}}, nil)
		_, err := NewSchema(s)
		var se *SchemaError
		if !errors.As(err, &se) || !errors.Is(err, ErrUnsupportedType) || se.Column != "s.u" || !strings.Contains(se.Error(), "union") {
			t.Fatalf("%s: err = %v", dt, err)
		}
	}
}
