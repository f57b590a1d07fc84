package lake

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// fieldOf finds a field in a descriptor by a path of message names and the
// field name: fieldOf(d, "inner") or fieldOf(d, "InnerMsg", "x").
func fieldOf(d *descriptorpb.DescriptorProto, path ...string) *descriptorpb.FieldDescriptorProto {
	for _, p := range path[:len(path)-1] {
		var next *descriptorpb.DescriptorProto
		for _, n := range d.NestedType {
			if n.GetName() == p {
				next = n
			}
		}
		if next == nil {
			panic("no nested type " + p)
		}
		d = next
	}
	for _, f := range d.Field {
		if f.GetName() == path[len(path)-1] {
			return f
		}
	}
	panic("no field " + strings.Join(path, "."))
}

var (
	optional = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	required = descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
	repeated = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
)

func typ(t descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto_Type {
	return t.Enum()
}

func TestBindMatches(t *testing.T) {
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "main.default.all", allTypesDDL)
	b := mustBind(t, l, "Main.Default.ALL", DescriptorFor("Row", tb.Columns()))
	if b.Table() != tb {
		t.Fatalf("binding is on %s, want %s", b.Table().Name(), tb.Name())
	}

	// sint/sfixed carry int32/int64 columns; names match without regard to case.
	d := DescriptorFor("Row", tb.Columns())
	fieldOf(d, "i32").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_SINT32)
	fieldOf(d, "day").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_SFIXED32)
	fieldOf(d, "id").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_SFIXED64)
	fieldOf(d, "ts").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_SINT64)
	fieldOf(d, "s").Name = proto.String("S")
	mustBind(t, l, "main.default.all", d)

	// A descriptor copied from a compiled .proto file refers to its nested
	// types by fully qualified name, package included.
	d = DescriptorFor("Row", tb.Columns())
	for _, f := range []*descriptorpb.FieldDescriptorProto{fieldOf(d, "inner"), fieldOf(d, "items"), fieldOf(d, "scores")} {
		f.TypeName = proto.String(".my.pkg.Row." + f.GetTypeName())
	}
	mustBind(t, l, "main.default.all", d)
}

func TestBindMismatch(t *testing.T) {
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "main.default.all", allTypesDDL)
	tests := []struct {
		name   string
		mutate func(d *descriptorpb.DescriptorProto)
		column string
		want   string
	}{
		{"missing field", func(d *descriptorpb.DescriptorProto) { d.Field = d.Field[:len(d.Field)-1] }, "", "table has 19 columns"},
		{"extra field", func(d *descriptorpb.DescriptorProto) {
			d.Field = append(d.Field, &descriptorpb.FieldDescriptorProto{Name: proto.String("extra"), Number: proto.Int32(99), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)})
		}, "", "descriptor message Row has 20 fields"},
		{"renamed", func(d *descriptorpb.DescriptorProto) { fieldOf(d, "b").Name = proto.String("bb") }, "b", `expected field "b" at position 1, got "bb"`},
		{"swapped", func(d *descriptorpb.DescriptorProto) { d.Field[1], d.Field[2] = d.Field[2], d.Field[1] }, "b", `got "i8"`},
		{"int as string", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "i32").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)
		}, "i32", "column type int: expected int32, got optional string"},
		{"bigint as int32", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "id").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)
		}, "id", "expected int64, got required int32"},
		{"int as uint32", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "i16").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_UINT32)
		}, "i16", "expected int32, got optional uint32"},
		{"float as double", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "f").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_DOUBLE)
		}, "f", "expected float"},
		{"double as float", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "d").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_FLOAT)
		}, "d", "expected double"},
		{"bool as int", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "b").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)
		}, "b", "expected bool"},
		{"binary as string", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "bin").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)
		}, "bin", "expected bytes"},
		{"decimal as double", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "dec").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_DOUBLE)
		}, "dec", "column type decimal(10,2): expected string"},
		{"timestamp as int32", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "ts").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)
		}, "ts", "expected int64"},
		{"nullable as required", func(d *descriptorpb.DescriptorProto) { fieldOf(d, "s").Label = required }, "s", "nullable column: expected an optional field, got required string"},
		{"not null as optional", func(d *descriptorpb.DescriptorProto) { fieldOf(d, "id").Label = optional }, "id", "NOT NULL column: expected a required field, got optional int64"},
		{"scalar as repeated", func(d *descriptorpb.DescriptorProto) { fieldOf(d, "s").Label = repeated }, "s", "expected a single string, got repeated string"},
		{"array as scalar", func(d *descriptorpb.DescriptorProto) { fieldOf(d, "tags").Label = optional }, "tags", "column type array<string>: expected a repeated field, got optional string"},
		{"array element type", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "tags").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_BYTES)
		}, "tags.element", "expected string, got repeated bytes"},
		{"map as repeated message", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "items").TypeName = proto.String("ItemsElemMsg")
			fieldOf(d, "scores").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)
			fieldOf(d, "scores").TypeName = nil
		}, "scores", "expected a map field, got repeated string"},
		{"map value type", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "ScoresEntry", "value").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_INT64)
		}, "scores.value", "expected int32, got optional int64"},
		{"map key type", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "ScoresEntry", "key").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_INT64)
		}, "scores.key", "expected string, got optional int64"},
		{"struct field type", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "InnerMsg", "x").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_INT64)
		}, "inner.x", "expected int32, got required int64"},
		{"struct field nullability", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "InnerMsg", "x").Label = optional
		}, "inner.x", "NOT NULL column"},
		{"struct field count", func(d *descriptorpb.DescriptorProto) {
			m := d.NestedType[len(d.NestedType)-1]
			for _, n := range d.NestedType {
				if n.GetName() == "InnerMsg" {
					m = n
				}
			}
			m.Field = m.Field[:1]
		}, "inner", "struct has 3 columns (x, names, m), descriptor message InnerMsg has 1 fields"},
		{"struct as scalar", func(d *descriptorpb.DescriptorProto) {
			f := fieldOf(d, "inner")
			f.Type, f.TypeName = typ(descriptorpb.FieldDescriptorProto_TYPE_STRING), nil
		}, "inner", "column type struct<x:int not null,names:array<string> not null,m:map<int,string> not null>: expected a nested message, got optional string"},
		{"struct as map entry", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "inner").TypeName = proto.String("ScoresEntry")
		}, "", "does not resolve"},
		{"array of struct element", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "ItemsElemMsg", "n").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)
		}, "items.element.n", "expected int64"},
		{"nested array without wrapper", func(d *descriptorpb.DescriptorProto) {
			f := fieldOf(d, "nested")
			f.Type, f.TypeName = typ(descriptorpb.FieldDescriptorProto_TYPE_INT32), nil
		}, "nested.element", "column type array<int>: expected a message with one repeated field, got repeated int32"},
		{"nested array wrapper not repeated", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "NestedElemWrap", "items").Label = optional
		}, "nested.element", "expected a repeated field, got optional int32"},
		{"nested array inner type", func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "NestedElemWrap", "items").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)
		}, "nested.element.element", "expected int32, got repeated string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := DescriptorFor("Row", tb.Columns())
			tc.mutate(d)
			_, err := l.Bind("main.default.all", d, false)
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("Bind = %v, want *SchemaError", err)
			}
			if se.Column != tc.column || !strings.Contains(se.Reason, tc.want) {
				t.Fatalf("Bind error: column %q reason %q\nwant column %q reason containing %q", se.Column, se.Reason, tc.column, tc.want)
			}
			if tc.column != "" && !strings.HasPrefix(err.Error(), "column "+tc.column+": ") {
				t.Errorf("Error() = %q does not name the column", err)
			}
		})
	}
}

func TestBindMapWrapper(t *testing.T) {
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "c.s.t", "id int not null, m map<string, array<int>> not null, lm array<map<string,int>> not null")
	d := DescriptorFor("Row", tb.Columns())
	b := mustBind(t, l, "c.s.t", d)
	md := msgDesc(t, d)
	rec := encode(t, md, map[string]any{"id": 1, "m": map[any]any{"a": []any{1, 2}}, "lm": []any{map[any]any{"k": 5}}})
	if err := b.Check([][]byte{rec}); err != nil {
		t.Fatal(err)
	}
	// A map wrapper whose only field is not a map.
	bad := DescriptorFor("Row", tb.Columns())
	fieldOf(bad, "LmElemWrap", "items").Type = typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)
	fieldOf(bad, "LmElemWrap", "items").TypeName = nil
	var se *SchemaError
	if _, err := l.Bind("c.s.t", bad, false); !errors.As(err, &se) || se.Column != "lm.element" || !strings.Contains(se.Reason, "expected a map field") {
		t.Fatalf("Bind = %v, want a map-field error at lm.element", err)
	}
	bad = DescriptorFor("Row", tb.Columns())
	f := fieldOf(bad, "lm")
	f.Type, f.TypeName = typ(descriptorpb.FieldDescriptorProto_TYPE_STRING), nil
	if _, err := l.Bind("c.s.t", bad, false); !errors.As(err, &se) || se.Column != "lm.element" || !strings.Contains(se.Reason, "one map field") {
		t.Fatalf("Bind = %v, want a wrapper error at lm.element", err)
	}
}

func TestBindRejectsBadDescriptors(t *testing.T) {
	l := openLake(t, t.TempDir())
	mustCreate(t, l, "c.s.t", "a int")
	wide := &descriptorpb.DescriptorProto{Name: proto.String("Wide")}
	for i := range MaxColumns + 1 {
		wide.Field = append(wide.Field, &descriptorpb.FieldDescriptorProto{Name: proto.String(fmt.Sprintf("c%d", i)), Number: proto.Int32(int32(i + 1)), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)})
	}
	tests := []struct {
		name string
		desc *descriptorpb.DescriptorProto
		want string
	}{
		{"nil", nil, "descriptor is missing"},
		{"unresolved type", &descriptorpb.DescriptorProto{Name: proto.String("R"), Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("a"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE), TypeName: proto.String(".google.protobuf.Timestamp")}}}, "does not resolve"},
		{"no name", &descriptorpb.DescriptorProto{}, "does not resolve"},
		{"duplicate numbers", &descriptorpb.DescriptorProto{Name: proto.String("R"), Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("a"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)},
			{Name: proto.String("b"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)}}}, "does not resolve"},
		{"bad field name", &descriptorpb.DescriptorProto{Name: proto.String("R"), Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("a-b"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)}}}, "a-b"},
		{"2001 columns", wide, "more than the limit of 2000 columns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Bind("c.s.t", tc.desc, true)
			var se *SchemaError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Bind = %v, want *SchemaError containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckDescriptorNames(t *testing.T) {
	// protodesc accepts some names that are not plain ASCII identifiers
	// (it allows any name for fields it does not validate); the lake checks
	// every level itself.
	d := DescriptorFor("Row", mustColumns(t, "a struct<b:int>"))
	md := msgDesc(t, d)
	if err := checkDescriptorNames(md); err != nil {
		t.Fatalf("valid names rejected: %v", err)
	}
	fieldOf(d, "AMsg", "b").Name = proto.String("b\u00e9")
	if _, _, err := compileDescriptor(d); err == nil {
		md := msgDesc(t, d)
		var se *SchemaError
		if err := checkDescriptorNames(md); !errors.As(err, &se) || se.Column != "a.b\u00e9" {
			t.Fatalf("checkDescriptorNames = %v, want error at a.bé", err)
		}
	}
}

func TestBindTableErrors(t *testing.T) {
	l := openLake(t, t.TempDir())
	d := DescriptorFor("Row", mustColumns(t, "a int"))
	if _, err := l.Bind("c.s.missing", d, false); !errors.Is(err, ErrTableNotFound) {
		t.Errorf("Bind missing table = %v, want ErrTableNotFound", err)
	}
	for _, name := range []string{"c.s", "c.s.t.u", "c.s-x.t", "c..t", "c.s.t!", ""} {
		if _, err := l.Bind(name, d, true); !errors.Is(err, ErrInvalidTableName) {
			t.Errorf("Bind(%q) = %v, want ErrInvalidTableName", name, err)
		}
		if _, err := l.CreateTable(name, mustColumns(t, "a int")); !errors.Is(err, ErrInvalidTableName) {
			t.Errorf("CreateTable(%q) = %v, want ErrInvalidTableName", name, err)
		}
		if _, err := l.Table(name); !errors.Is(err, ErrInvalidTableName) {
			t.Errorf("Table(%q) = %v, want ErrInvalidTableName", name, err)
		}
		if _, err := ReadTable(t.TempDir(), name); !errors.Is(err, ErrInvalidTableName) {
			t.Errorf("ReadTable(%q) = %v, want ErrInvalidTableName", name, err)
		}
	}
	// Name parts may start with a digit, as in Unity Catalog.
	if _, err := l.Bind("c.s.1t", d, true); err != nil {
		t.Errorf("Bind(c.s.1t) = %v, want a table", err)
	}
	if _, err := l.Table("c.s.nope"); !errors.Is(err, ErrTableNotFound) {
		t.Errorf("Table = %v, want ErrTableNotFound", err)
	}
}

func TestAutoCreate(t *testing.T) {
	l := openLake(t, t.TempDir())
	d := &descriptorpb.DescriptorProto{
		Name: proto.String("Event"),
		Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("id"), Number: proto.Int32(1), Label: required, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_INT64)},
			{Name: proto.String("n"), Number: proto.Int32(2), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)},
			{Name: proto.String("s"), Number: proto.Int32(3), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)},
			{Name: proto.String("raw"), Number: proto.Int32(4), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_BYTES)},
			{Name: proto.String("f"), Number: proto.Int32(5), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_FLOAT)},
			{Name: proto.String("d"), Number: proto.Int32(6), Label: required, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_DOUBLE)},
			{Name: proto.String("ok"), Number: proto.Int32(7), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_BOOL)},
			{Name: proto.String("tags"), Number: proto.Int32(8), Label: repeated, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)},
			{Name: proto.String("attrs"), Number: proto.Int32(9), Label: repeated, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE), TypeName: proto.String("AttrsEntry")},
			{Name: proto.String("who"), Number: proto.Int32(10), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE), TypeName: proto.String("Who")},
			{Name: proto.String("zs"), Number: proto.Int32(11), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_SINT64)},
		},
		NestedType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("AttrsEntry"), Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)}, Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("key"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)},
				{Name: proto.String("value"), Number: proto.Int32(2), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE), TypeName: proto.String("Who")}}},
			{Name: proto.String("Who"), Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("name"), Number: proto.Int32(1), Label: required, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)},
				{Name: proto.String("ids"), Number: proto.Int32(2), Label: repeated, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_SFIXED32)}}},
		},
	}
	b, err := l.Bind("c.s.events", d, true)
	if err != nil {
		t.Fatal(err)
	}
	want := mustColumns(t, "id bigint not null, n int, s string, raw binary, f float, d double not null, ok boolean, "+
		"tags array<string> not null, attrs map<string, struct<name:string not null, ids:array<int> not null>> not null, "+
		"who struct<name:string not null, ids:array<int> not null>, zs bigint")
	if diff := firstColumnDiff(want, b.Table().Columns(), ""); diff != nil {
		t.Fatalf("auto-created columns: %v\ngot %s", diff, ColumnsDDL(b.Table().Columns()))
	}
	// The same descriptor binds again; the table is reloaded with its types.
	mustBind(t, l, "c.s.events", d)
	if _, err := l.Bind("c.s.events", DescriptorFor("Other", mustColumns(t, "x int")), true); err == nil {
		t.Fatal("a different descriptor bound to the auto-created table")
	}
}

func TestAutoCreateRejects(t *testing.T) {
	l := openLake(t, t.TempDir())
	self := &descriptorpb.DescriptorProto{Name: proto.String("Node"), Field: []*descriptorpb.FieldDescriptorProto{
		{Name: proto.String("v"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)},
		{Name: proto.String("next"), Number: proto.Int32(2), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE), TypeName: proto.String("Node")}}}
	enum := &descriptorpb.DescriptorProto{Name: proto.String("E"),
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Color"), Value: []*descriptorpb.EnumValueDescriptorProto{{Name: proto.String("RED"), Number: proto.Int32(0)}}}},
		Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("c"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_ENUM), TypeName: proto.String("Color")}}}
	unsigned := &descriptorpb.DescriptorProto{Name: proto.String("U"), Field: []*descriptorpb.FieldDescriptorProto{
		{Name: proto.String("u"), Number: proto.Int32(1), Label: repeated, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_UINT64)}}}
	empty := &descriptorpb.DescriptorProto{Name: proto.String("Empty")}
	emptyInner := &descriptorpb.DescriptorProto{Name: proto.String("R"),
		NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("In")}},
		Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("in"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE), TypeName: proto.String("In")}}}
	floatKey := &descriptorpb.DescriptorProto{Name: proto.String("R"),
		NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("MEntry"), Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)}, Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("key"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_STRING)},
			{Name: proto.String("value"), Number: proto.Int32(2), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_FIXED32)}}}},
		Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("m"), Number: proto.Int32(1), Label: repeated, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE), TypeName: proto.String("MEntry")}}}
	tests := []struct {
		name   string
		d      *descriptorpb.DescriptorProto
		column string
		want   string
	}{
		{"recursive", self, "next", "recursive message Node"},
		{"enum", enum, "c", "protobuf type enum Color has no Delta column type"},
		{"unsigned", unsigned, "u.element", "protobuf type uint64"},
		{"empty", empty, "", "message Empty has no fields"},
		{"empty struct", emptyInner, "in", "message In has no fields"},
		{"unsigned map value", floatKey, "m.value", "fixed32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Bind("c.s."+strings.ReplaceAll(tc.name, " ", "_"), tc.d, true)
			var se *SchemaError
			if !errors.As(err, &se) || se.Column != tc.column || !strings.Contains(se.Reason, tc.want) {
				t.Fatalf("Bind = %v, want *SchemaError at %q containing %q", err, tc.column, tc.want)
			}
		})
	}
	if len(l.Tables()) != 0 {
		t.Errorf("failed auto-creates left tables: %v", l.Tables())
	}
	// Deep nesting is bounded.
	deep := &descriptorpb.DescriptorProto{Name: proto.String("D0")}
	cur := deep
	for i := 1; i <= maxTypeDepth+2; i++ {
		next := &descriptorpb.DescriptorProto{Name: proto.String(fmt.Sprintf("D%d", i))}
		cur.Field = []*descriptorpb.FieldDescriptorProto{{Name: proto.String("x"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE), TypeName: proto.String(next.GetName())}}
		cur.NestedType = []*descriptorpb.DescriptorProto{next}
		cur = next
	}
	cur.Field = []*descriptorpb.FieldDescriptorProto{{Name: proto.String("v"), Number: proto.Int32(1), Label: optional, Type: typ(descriptorpb.FieldDescriptorProto_TYPE_INT32)}}
	if _, err := l.Bind("c.s.deep", deep, true); err == nil || !strings.Contains(err.Error(), "levels deep") {
		t.Fatalf("deep descriptor: %v", err)
	}
}

func TestAutoCreateRace(t *testing.T) {
	l := openLake(t, t.TempDir())
	a := DescriptorFor("A", mustColumns(t, "id bigint not null, s string"))
	b := DescriptorFor("B", mustColumns(t, "id int not null"))
	for round := range 20 {
		name := fmt.Sprintf("c.s.race%d", round)
		descs := []*descriptorpb.DescriptorProto{a, b, a, b}
		errs := make([]error, len(descs))
		var wg sync.WaitGroup
		for i, d := range descs {
			wg.Go(func() { _, errs[i] = l.Bind(name, d, true) })
		}
		wg.Wait()
		tb, err := l.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		winner := a
		if len(tb.Columns()) == 1 {
			winner = b
		}
		for i, d := range descs {
			var se *SchemaError
			switch {
			case d == winner && errs[i] != nil:
				t.Errorf("round %d: the winning descriptor failed: %v", round, errs[i])
			case d != winner && !errors.As(errs[i], &se):
				t.Errorf("round %d: the losing descriptor got %v, want *SchemaError", round, errs[i])
			}
		}
	}
}

func TestCreateTable(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	cols := mustColumns(t, "id bigint not null, v variant, ntz timestamp_ntz")
	t1, err := l.CreateTable("Cat.Sch.Tbl", cols)
	if err != nil {
		t.Fatal(err)
	}
	if t1.Name() != "cat.sch.tbl" {
		t.Errorf("Name = %q, want lower case", t1.Name())
	}
	cols[0].Name = "changed" // the table keeps its own copy
	t2, err := l.CreateTable("cat.sch.tbl", mustColumns(t, "id bigint not null, v variant, ntz timestamp_ntz"))
	if err != nil || t2 != t1 {
		t.Fatalf("re-declaring with the same columns = %v, %v; want the same table", t2, err)
	}
	var se *SchemaError
	if _, err := l.CreateTable("cat.sch.tbl", mustColumns(t, "id bigint not null, v string, ntz timestamp_ntz")); !errors.As(err, &se) || se.Column != "v" {
		t.Fatalf("re-declaring with other columns = %v, want *SchemaError at v", err)
	}
	if _, err := l.CreateTable("cat.sch.bad", []Column{{Name: "x y", Type: Type{Kind: Int}}}); !errors.As(err, &se) {
		t.Fatalf("bad columns = %v", err)
	}
	mustCreate(t, l, "a.b.c", "x int")
	var names []string
	for _, tb := range l.Tables() {
		names = append(names, tb.Name())
	}
	if strings.Join(names, ",") != "a.b.c,cat.sch.tbl" {
		t.Errorf("Tables = %v", names)
	}
	if got, _ := l.Table("CAT.sch.tbl"); got != t1 {
		t.Errorf("Table lookup is not case-insensitive")
	}
	if l.Dir() != dir || t1.Path() != filepath.Join(dir, "cat", "sch", "tbl") {
		t.Errorf("Path = %s", t1.Path())
	}
	if !strings.Contains(t1.SchemaString(), `"timestamp_ntz"`) {
		t.Errorf("SchemaString = %s", t1.SchemaString())
	}
	// Reopen: the columns come back with VARIANT intact.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLake(t, dir)
	tb, err := l2.Table("cat.sch.tbl")
	if err != nil {
		t.Fatal(err)
	}
	if got := ColumnsDDL(tb.Columns()); got != "id bigint not null, v variant, ntz timestamp_ntz" {
		t.Errorf("reloaded columns = %s", got)
	}
	if uc := tb.UCColumns(); uc[1].TypeName != "VARIANT" {
		t.Errorf("UC type of v = %s", uc[1].TypeName)
	}
}

func TestClosedLake(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	tb := mustCreate(t, l, "c.s.t", "a int")
	b := mustBind(t, l, "c.s.t", DescriptorFor("R", tb.Columns()))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := l.Bind("c.s.t", DescriptorFor("R", tb.Columns()), false); !errors.Is(err, ErrClosed) {
		t.Errorf("Bind after Close = %v", err)
	}
	if _, err := l.CreateTable("c.s.u", tb.Columns()); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateTable after Close = %v", err)
	}
	if err := <-b.Append([][]byte{{8, 1}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
	if err := l.Materialize(); !errors.Is(err, ErrClosed) {
		t.Errorf("Materialize after Close = %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Error("Open without Dir succeeded")
	}
	dir := t.TempDir()
	openLake(t, dir)
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open of a directory = %v, want ErrLocked", err)
	}
}
