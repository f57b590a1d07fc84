package arrowproto

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Tests of NewSchemaWithDescriptor: a user-supplied descriptor, checked
// against the Arrow schema and used for field numbers and wire types.

func mustDesc(t testing.TB, text string) *descriptorpb.DescriptorProto {
	t.Helper()
	d := &descriptorpb.DescriptorProto{}
	if err := (prototext.UnmarshalOptions{AllowPartial: true}).Unmarshal([]byte(text), d); err != nil {
		t.Fatalf("bad descriptor text: %v", err)
	}
	return d
}

func fieldText(name string, num int, label, typ string, extra ...string) string {
	return fmt.Sprintf(`field { name: %q number: %d label: LABEL_%s type: TYPE_%s %s }`, name, num, label, typ, strings.Join(extra, " "))
}

func TestDescriptorScalarWireTypes(t *testing.T) {
	rec := record(t,
		column{"i8", fromJSON(t, arrow.PrimitiveTypes.Int8, `[-1, 1, null, -128]`)},
		column{"i32", fromJSON(t, arrow.PrimitiveTypes.Int32, `[-1, 1, null, -2147483648]`)},
		column{"i64", fromJSON(t, arrow.PrimitiveTypes.Int64, `[-1, 1, null, -9223372036854775808]`)},
		column{"u16", fromJSON(t, arrow.PrimitiveTypes.Uint16, `[65535, 1, null, 0]`)},
		column{"u32", fromJSON(t, arrow.PrimitiveTypes.Uint32, `[4294967295, 1, null, 0]`)},
		column{"u64", fromJSON(t, arrow.PrimitiveTypes.Uint64, `[18446744073709551615, 1, null, 0]`)},
		column{"u64s", fromJSON(t, arrow.PrimitiveTypes.Uint64, `[1, 2, null, 9223372036854775808]`)},
		column{"d64", fromJSON(t, arrow.FixedWidthTypes.Date64, `[9223372036854775807, 0, null, -1]`)},
		column{"h", fromJSON(t, arrow.FixedWidthTypes.Float16, `[1.5, -2, null, 0]`)},
		column{"f", fromJSON(t, arrow.PrimitiveTypes.Float32, `[1.5, -2, null, 0]`)},
		column{"s", fromJSON(t, arrow.BinaryTypes.String, `["a", "", null, "z"]`)},
		column{"ts", fromJSON(t, &arrow.TimestampType{Unit: arrow.Second}, `[1, -1, null, 0]`)},
	)
	d := mustDesc(t, `name: "Rec" `+strings.Join([]string{
		fieldText("i8", 100, "OPTIONAL", "SINT32"),
		fieldText("i32", 7, "OPTIONAL", "SFIXED32"),
		fieldText("i64", 536870911, "OPTIONAL", "SFIXED64"),
		fieldText("u16", 3, "OPTIONAL", "FIXED32"),
		fieldText("u32", 4, "OPTIONAL", "UINT32"),
		fieldText("u64", 5, "OPTIONAL", "FIXED64"),
		fieldText("u64s", 6, "OPTIONAL", "SINT64"),
		fieldText("d64", 8, "OPTIONAL", "INT64"),
		fieldText("h", 9, "OPTIONAL", "DOUBLE"),
		fieldText("f", 10, "OPTIONAL", "DOUBLE"),
		fieldText("s", 11, "OPTIONAL", "BYTES"),
		fieldText("ts", 12, "OPTIONAL", "SINT64"),
		fieldText("unused", 13, "OPTIONAL", "STRING"),
	}, " "))
	sc, err := NewSchemaWithDescriptor(rec.Schema(), d)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(sc.Descriptor(), d) {
		t.Fatal("the user's descriptor must be used as given")
	}
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	checkBatch(t, sc, rec, b)
	// Only the uint64 above 2^63-1 in a signed field fails; uint64 and fixed64
	// take the full range; date64 days beyond int32 fit an int64 field.
	if len(b.Errors) != 1 || b.Errors[0].Row != 3 || b.Errors[0].Column != "u64s" {
		t.Fatalf("errors = %v", b.Errors)
	}
	got := decoded(t, sc, b, 0)
	if got["u64"] != uint64(math.MaxUint64) || got["i8"] != int32(-1) || got["d64"] != int64(math.MaxInt64/86_400_000) || got["s"] == nil {
		t.Fatalf("row 0 = %v", got)
	}
}

func TestDescriptorNestedMessagesAndNames(t *testing.T) {
	inner := arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true})
	rec := record(t,
		column{"s", fromJSON(t, inner, `[{"x": 1}, null, {"x": null}]`)},
		column{"ls", fromJSON(t, arrow.ListOf(inner), `[[{"x": 2}, {"x": 3}], [], null]`)},
		column{"ll", fromJSON(t, arrow.ListOf(arrow.ListOf(arrow.PrimitiveTypes.Int32)), `[[[1], []], null, [[2, 3]]]`)},
		column{"m", fromJSON(t, arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32), `[[{"key": "a", "value": 1}], null, []]`)},
		column{"kv", fromJSON(t, arrow.MapOf(arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String), `[[{"key": 1, "value": "x"}, {"key": 1, "value": "y"}], null, []]`)},
		column{"wrapped", fromJSON(t, arrow.ListOf(arrow.PrimitiveTypes.Int64), `[[5, 6], null, []]`)},
	)
	// Fully qualified names with a package, relative names, a map entry, a
	// map spelled as repeated key/value messages, a list of lists and a list
	// held by a singular wrapper message, all at unusual field numbers.
	d := mustDesc(t, `name: "Rec"
		field { name: "s" number: 10 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".com.example.Rec.Inner" }
		field { name: "ls" number: 11 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "Inner" }
		field { name: "ll" number: 12 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "Row" }
		field { name: "m" number: 13 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".com.example.Rec.MEntry" }
		field { name: "kv" number: 14 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "Pair" }
		field { name: "wrapped" number: 15 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "Row64" }
		nested_type { name: "Inner" field { name: "x" number: 3 label: LABEL_REQUIRED type: TYPE_SINT64 } }
		nested_type { name: "Row" field { name: "cells" number: 2 label: LABEL_REPEATED type: TYPE_SINT32 } }
		nested_type { name: "MEntry" options { map_entry: true }
			field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
			field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 } }
		nested_type { name: "Pair"
			field { name: "value" number: 7 label: LABEL_OPTIONAL type: TYPE_BYTES }
			field { name: "key" number: 8 label: LABEL_OPTIONAL type: TYPE_INT64 } }
		nested_type { name: "Row64" field { name: "v" number: 1 label: LABEL_REPEATED type: TYPE_FIXED64 } }`)
	_, err := NewSchemaWithDescriptor(rec.Schema(), d)
	if !errors.Is(err, ErrIncompatibleDescriptor) {
		// wrapped is int64 (signed) and fixed64 is unsigned: incompatible.
		t.Fatalf("int64 into fixed64: err = %v", err)
	}
	d.NestedType[4].Field[0].Type = descriptorpb.FieldDescriptorProto_TYPE_SFIXED64.Enum()
	sc, err := NewSchemaWithDescriptor(rec.Schema(), d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	// Row 2's struct has a null in a required field.
	if len(b.Errors) != 1 || b.Errors[0].Row != 2 || b.Errors[0].Column != "s.x" || !strings.Contains(b.Errors[0].Reason, "required") {
		t.Fatalf("errors = %v", b.Errors)
	}
	checkBatchFullNames(t, sc, rec, b)
	got := decodedFullNames(t, sc, b, 0)
	want := map[string]any{
		"s":       map[string]any{"x": int64(1)},
		"ls":      []any{map[string]any{"x": int64(2)}, map[string]any{"x": int64(3)}},
		"ll":      []any{map[string]any{"cells": []any{int32(1)}}, map[string]any{}},
		"m":       map[any]any{"a": int64(1)},
		"kv":      []any{map[string]any{"key": int64(1), "value": []byte("x")}, map[string]any{"key": int64(1), "value": []byte("y")}},
		"wrapped": map[string]any{"v": []any{int64(5), int64(6)}},
	}
	if !equalValue(got, want) {
		t.Fatalf("row 0:\n got  %s\n want %s", show(got), show(want))
	}
	if got := decodedFullNames(t, sc, b, 1); len(got) != 0 {
		t.Fatalf("row 1 = %v, want empty", got)
	}
}

// checkBatchFullNames runs the oracle on a descriptor whose type names carry
// a package that the package-less file of the oracle cannot resolve.
func checkBatchFullNames(t *testing.T, sc *Schema, rec arrow.RecordBatch, b *Batch) {
	t.Helper()
	checkBatchDesc(t, withFullNames(sc.Descriptor()), rec, b)
}

func decodedFullNames(t *testing.T, sc *Schema, b *Batch, r int) map[string]any {
	t.Helper()
	return decodedDesc(t, withFullNames(sc.Descriptor()), b, r)
}

// withFullNames rewrites the type names of d (whose nested types all have
// distinct names) to full names in a package-less file.
func withFullNames(d *descriptorpb.DescriptorProto) *descriptorpb.DescriptorProto {
	d = proto.Clone(d).(*descriptorpb.DescriptorProto)
	var fix func(m *descriptorpb.DescriptorProto)
	fix = func(m *descriptorpb.DescriptorProto) {
		for _, f := range m.Field {
			if tn := f.GetTypeName(); tn != "" {
				tn = tn[strings.LastIndexByte(tn, '.')+1:]
				f.TypeName = proto.String("." + d.GetName() + "." + tn)
			}
		}
		for _, n := range m.NestedType {
			fix(n)
		}
	}
	fix(d)
	return d
}

func TestDescriptorLabelsAndRequired(t *testing.T) {
	rec := record(t,
		column{"a", fromJSON(t, arrow.PrimitiveTypes.Int32, `[1, null, 3]`)},
		column{"b", fromJSON(t, arrow.BinaryTypes.String, `["x", "y", null]`)},
	)
	d := mustDesc(t, `name: "Rec" `+fieldText("a", 1, "REQUIRED", "INT32")+fieldText("b", 2, "OPTIONAL", "STRING"))
	sc, err := NewSchemaWithDescriptor(rec.Schema(), d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	checkBatch(t, sc, rec, b)
	if len(b.Errors) != 1 || b.Errors[0].Row != 1 || b.Errors[0].Column != "a" {
		t.Fatalf("errors = %v", b.Errors)
	}
}

func TestDescriptorErrors(t *testing.T) {
	sInt := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil)
	sList := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil)
	sStruct := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.StructOf(arrow.Field{Name: "b", Type: arrow.PrimitiveTypes.Int8})}}, nil)
	sMap := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.MapOf(arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Int8)}}, nil)
	sLL := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.ListOf(arrow.ListOf(arrow.PrimitiveTypes.Int8))}}, nil)
	sNull := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.Null}}, nil)
	sDup := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.Null}, {Name: "a", Type: arrow.Null}}, nil)
	sDupStruct := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.StructOf(arrow.Field{Name: "b", Type: arrow.Null}, arrow.Field{Name: "b", Type: arrow.Null})}}, nil)
	sInterval := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.FixedWidthTypes.MonthInterval}}, nil)
	msgA := func(typeName string) string {
		return `field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "` + typeName + `" }`
	}
	deep := `name: "Rec"`
	for i := 0; i < 11; i++ {
		deep += ` nested_type { name: "N` + fmt.Sprint(i) + `"`
	}
	deep += strings.Repeat(" }", 11)
	many := `name: "Rec"`
	for i := 1; i <= MaxColumns+1; i++ {
		many += fmt.Sprintf(` field { name: "f%d" number: %d label: LABEL_OPTIONAL type: TYPE_INT64 }`, i, i)
	}
	for _, tc := range []struct {
		name   string
		schema *arrow.Schema
		desc   string
		column string
		want   string
	}{
		{"missing column field", sInt, `name: "Rec" ` + fieldText("b", 1, "OPTIONAL", "INT64"), "a", "no field named"},
		{"narrowing", sInt, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "INT32"), "a", "cannot be encoded"},
		{"int to string", sInt, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "STRING"), "a", "cannot be encoded"},
		{"enum", sInt, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "ENUM"), "a", "cannot be encoded"},
		{"scalar as repeated", sInt, `name: "Rec" ` + fieldText("a", 1, "REPEATED", "INT64"), "a", "is repeated but the column is not a list"},
		{"list as singular", sList, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "INT64"), "a", "not repeated"},
		{"struct as scalar", sStruct, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "INT64"), "a", "not a message"},
		{"unknown message", sStruct, `name: "Rec" ` + msgA("Nope"), "a", "does not declare"},
		{"unknown full name", sStruct, `name: "Rec" ` + msgA(".x.Nope"), "a", "does not declare"},
		{"struct child missing", sStruct, `name: "Rec" ` + msgA("M") + ` nested_type { name: "M" }`, "a.b", "no field named"},
		{"required without column", sStruct, `name: "Rec" ` + msgA("M") + ` nested_type { name: "M" ` +
			fieldText("b", 1, "OPTIONAL", "INT32") + fieldText("c", 2, "REQUIRED", "INT32") + `}`, "a.c", "required field"},
		{"top required without column", sInt, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "INT64") + fieldText("z", 2, "REQUIRED", "INT64"), "z", "required field"},
		{"map entry without value", sMap, `name: "Rec" field { name: "a" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "E" } nested_type { name: "E" ` +
			fieldText("key", 1, "OPTIONAL", "INT32") + `}`, "a", "no field named \"value\""},
		{"map entry required extra", sMap, `name: "Rec" field { name: "a" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "E" } nested_type { name: "E" ` +
			fieldText("key", 1, "OPTIONAL", "INT32") + fieldText("value", 2, "OPTIONAL", "INT32") + fieldText("x", 3, "REQUIRED", "INT32") + `}`, "a.x", "required field"},
		{"map as scalar", sMap, `name: "Rec" ` + fieldText("a", 1, "REPEATED", "INT32"), "a", "not a message"},
		{"list of lists wrapper with two fields", sLL, `name: "Rec" field { name: "a" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "W" } nested_type { name: "W" ` +
			fieldText("x", 1, "REPEATED", "INT32") + fieldText("y", 2, "REPEATED", "INT32") + `}`, "a[]", "exactly one"},
		{"list of lists as scalars", sLL, `name: "Rec" ` + fieldText("a", 1, "REPEATED", "INT32"), "a[]", "not a message"},
		{"null as group", sNull, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "GROUP"), "a", "group"},
		{"field number zero", sInt, `name: "Rec" ` + fieldText("a", 0, "OPTIONAL", "INT64"), "", "outside 1..536870911"},
		{"field number too big", sInt, `name: "Rec" ` + fieldText("a", 536870912, "OPTIONAL", "INT64"), "", "outside"},
		{"reserved field number", sInt, `name: "Rec" ` + fieldText("a", 19500, "OPTIONAL", "INT64"), "", "19000-19999"},
		{"duplicate number", sInt, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "INT64") + fieldText("b", 1, "OPTIONAL", "INT64"), "", "used twice"},
		{"duplicate name", sInt, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "INT64") + fieldText("a", 2, "OPTIONAL", "INT64"), "", "used twice"},
		{"nameless field", sInt, `name: "Rec" field { number: 1 }`, "", "no name"},
		{"nameless message", sInt, `name: "Rec" nested_type { }`, "", "no name"},
		{"duplicate message", sInt, `name: "Rec" nested_type { name: "A" } nested_type { name: "A" }`, "", "declared twice"},
		{"too deep", sInt, deep, "", "nested 11 deep"},
		{"too many fields", sInt, many, "", "2001 fields"},
		{"duplicate column", sDup, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "STRING"), "a", "duplicate"},
		{"duplicate struct field", sDupStruct, `name: "Rec" ` + msgA("M") + ` nested_type { name: "M" ` + fieldText("b", 1, "OPTIONAL", "STRING") + `}`, "a.b", "duplicate"},
		{"unsupported type", sInterval, `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "INT64"), "a", "no protobuf mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSchemaWithDescriptor(tc.schema, mustDesc(t, tc.desc))
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SchemaError", err)
			}
			if se.Column != tc.column || !strings.Contains(se.Reason, tc.want) {
				t.Fatalf("err = %v (column %q), want column %q and %q", err, se.Column, tc.column, tc.want)
			}
		})
	}
	if _, err := NewSchemaWithDescriptor(sInt, nil); !errors.Is(err, ErrIncompatibleDescriptor) {
		t.Fatalf("nil descriptor: %v", err)
	}
	if _, err := NewSchemaWithDescriptor(nil, mustDesc(t, `name: "Rec"`)); !errors.Is(err, ErrIncompatibleDescriptor) {
		t.Fatalf("nil schema: %v", err)
	}
}

func TestDescriptorNestingLimitOfArrowTypes(t *testing.T) {
	// Eleven levels of structs exceed the nesting limit, with either API.
	dt := arrow.DataType(arrow.PrimitiveTypes.Int8)
	for i := 0; i < MaxNestingDepth+1; i++ {
		dt = arrow.StructOf(arrow.Field{Name: "s", Type: dt, Nullable: true})
	}
	s := arrow.NewSchema([]arrow.Field{{Name: "a", Type: dt}}, nil)
	_, err := NewSchema(s)
	if !errors.Is(err, ErrSchemaLimit) {
		t.Fatalf("NewSchema: %v", err)
	}
	// A descriptor whose messages refer to themselves passes the declaration
	// limits; the Arrow type's depth stops it.
	d := mustDesc(t, `name: "Rec" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "S" }
		nested_type { name: "S" field { name: "s" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "S" } }`)
	_, err = NewSchemaWithDescriptor(s, d)
	if !errors.Is(err, ErrSchemaLimit) {
		t.Fatalf("NewSchemaWithDescriptor: %v", err)
	}
	var se *SchemaError
	if !errors.As(err, &se) || !strings.HasPrefix(se.Column, "a.s.s") {
		t.Fatalf("error should name the deep column: %v", err)
	}
}

func TestDescriptorUsedForEncodingMatchesGenerated(t *testing.T) {
	// Compiling the generated descriptor as a user descriptor gives the same bytes.
	g := newRandGen(7)
	for i := 0; i < 30; i++ {
		s := g.schema(3, 3)
		rec := g.record(s, 20)
		a, err := NewSchema(s)
		if err != nil {
			t.Fatal(err)
		}
		bsc, err := NewSchemaWithDescriptor(s, a.Descriptor())
		if err != nil {
			t.Fatalf("generated descriptor rejected as user descriptor: %v", err)
		}
		x, err := a.Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		y, err := bsc.Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(x.Records) != len(y.Records) {
			t.Fatalf("record counts differ")
		}
		for k := range x.Records {
			if string(x.Records[k]) != string(y.Records[k]) {
				t.Fatalf("record %d differs", k)
			}
		}
	}
}

func TestDescriptorMoreErrors(t *testing.T) {
	i8 := arrow.PrimitiveTypes.Int8
	iv := arrow.FixedWidthTypes.MonthInterval
	many := make([]arrow.Field, MaxColumns+1)
	for i := range many {
		many[i] = fld(fmt.Sprintf("c%d", i), i8)
	}
	deep := arrow.DataType(i8)
	for i := 0; i < 60; i++ {
		deep = arrow.ListOf(deep)
	}
	listA := `name: "Rec" field { name: "a" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "E" }`
	for _, tc := range []struct {
		name   string
		s      *arrow.Schema
		desc   string
		is     error
		column string
		want   string
	}{
		{"too many columns", schemaOf(many...), `name: "Rec"`, ErrSchemaLimit, "", "2001 columns"},
		{"unserializable options", schemaOf(fld("a", i8)), `name: "Rec" ` + fieldText("a", 1, "OPTIONAL", "INT32") +
			` options { uninterpreted_option { name { } } }`, ErrIncompatibleDescriptor, "", "serialize"},
		{"deep arrow type", schemaOf(fld("a", deep)), `name: "Rec"`, ErrSchemaLimit, "a" + strings.Repeat("[]", 4*MaxNestingDepth+9), "nested too deeply"},
		{"float dictionary index", schemaOf(fld("a", &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Float32, ValueType: i8})), `name: "Rec"`, ErrUnsupportedType, "a", "dictionary index"},
		{"int8 run ends", schemaOf(fld("a", arrow.RunEndEncodedOf(i8, i8))), `name: "Rec"`, ErrUnsupportedType, "a", "run-end type"},
		{"map key type", schemaOf(fld("a", arrow.MapOf(iv, i8))), `name: "Rec"`, ErrUnsupportedType, "a.key", "no protobuf mapping"},
		{"map value type", schemaOf(fld("a", arrow.MapOf(i8, iv))), `name: "Rec"`, ErrUnsupportedType, "a.value", "no protobuf mapping"},
		{"list element type", schemaOf(fld("a", arrow.ListOf(iv))), `name: "Rec"`, ErrUnsupportedType, "a[]", "no protobuf mapping"},
		{"struct field type", schemaOf(fld("a", arrow.StructOf(fld("b", iv)))), `name: "Rec"`, ErrUnsupportedType, "a.b", "no protobuf mapping"},
		{"map key field type", schemaOf(fld("a", arrow.MapOf(arrow.PrimitiveTypes.Int64, i8))), listA + ` nested_type { name: "E" ` +
			fieldText("key", 1, "OPTIONAL", "INT32") + fieldText("value", 2, "OPTIONAL", "INT32") + `}`, ErrIncompatibleDescriptor, "a.key", "cannot be encoded"},
		{"wrapper field type", schemaOf(fld("a", arrow.ListOf(arrow.ListOf(arrow.BinaryTypes.String)))), listA + ` nested_type { name: "E" ` +
			fieldText("x", 1, "REPEATED", "INT32") + `}`, ErrIncompatibleDescriptor, "a[][]", "cannot be encoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSchemaWithDescriptor(tc.s, mustDesc(t, tc.desc))
			var se *SchemaError
			if !errors.As(err, &se) || !errors.Is(err, tc.is) || se.Column != tc.column || !strings.Contains(se.Reason, tc.want) {
				t.Fatalf("err = %v, want %v at %q with %q", err, tc.is, tc.column, tc.want)
			}
		})
	}
	// The generator reports the same problems before compiling.
	if _, err := NewSchema(schemaOf(fld("m", arrow.MapOf(arrow.StructOf(fld("bad name", i8)), i8)))); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad name in a map key: %v", err)
	}
}

func TestDescriptorCompoundRelativeName(t *testing.T) {
	// "Rec.Inner" written relative to the file, from inside a nested message.
	s := schemaOf(fld("a", arrow.StructOf(fld("b", arrow.StructOf(fld("x", arrow.PrimitiveTypes.Int8))))))
	d := mustDesc(t, `name: "Rec" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "Outer" }
		nested_type { name: "Outer" field { name: "b" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "Rec.Inner" } }
		nested_type { name: "Inner" field { name: "x" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 } }`)
	sc, err := NewSchemaWithDescriptor(s, d)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(t, column{"a", fromJSON(t, s.Field(0).Type, `[{"b": {"x": 5}}]`)})
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	checkBatchDesc(t, withFullNames(d), rec, b)
}
