package lake

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestParseTypeRenders(t *testing.T) {
	tests := []struct {
		in, text, name, json string
	}{
		{"int", "int", "INT", `"integer"`},
		{"INTEGER", "int", "INT", `"integer"`},
		{"bigint", "bigint", "LONG", `"long"`},
		{"Long", "bigint", "LONG", `"long"`},
		{"tinyint", "tinyint", "BYTE", `"byte"`},
		{"byte", "tinyint", "BYTE", `"byte"`},
		{"smallint", "smallint", "SHORT", `"short"`},
		{"short", "smallint", "SHORT", `"short"`},
		{"float", "float", "FLOAT", `"float"`},
		{"real", "float", "FLOAT", `"float"`},
		{"double", "double", "DOUBLE", `"double"`},
		{"boolean", "boolean", "BOOLEAN", `"boolean"`},
		{"bool", "boolean", "BOOLEAN", `"boolean"`},
		{"string", "string", "STRING", `"string"`},
		{"binary", "binary", "BINARY", `"binary"`},
		{"date", "date", "DATE", `"date"`},
		{"timestamp", "timestamp", "TIMESTAMP", `"timestamp"`},
		{"timestamp_ltz", "timestamp", "TIMESTAMP", `"timestamp"`},
		{"TIMESTAMP_NTZ", "timestamp_ntz", "TIMESTAMP_NTZ", `"timestamp_ntz"`},
		{"variant", "variant", "VARIANT", `"variant"`},
		{"decimal(10,2)", "decimal(10,2)", "DECIMAL", `"decimal(10,2)"`},
		{"DECIMAL( 38 , 0 )", "decimal(38,0)", "DECIMAL", `"decimal(38,0)"`},
		{"decimal", "decimal(10,0)", "DECIMAL", `"decimal(10,0)"`},
		{"numeric(5)", "decimal(5,0)", "DECIMAL", `"decimal(5,0)"`},
		{"array<string>", "array<string>", "ARRAY", `{"type":"array","elementType":"string","containsNull":false}`},
		{"ARRAY< INT >", "array<int>", "ARRAY", `{"type":"array","elementType":"integer","containsNull":false}`},
		{"map<string,int>", "map<string,int>", "MAP", `{"type":"map","keyType":"string","valueType":"integer","valueContainsNull":false}`},
		{"struct<a:int,b:array<string>>", "struct<a:int,b:array<string>>", "STRUCT",
			`{"type":"struct","fields":[{"name":"a","type":"integer","nullable":true,"metadata":{}},{"name":"b","type":{"type":"array","elementType":"string","containsNull":false},"nullable":true,"metadata":{}}]}`},
		{"struct<a int NOT NULL COMMENT 'the \\'a\\'', b: map<bigint, struct<c:date>>>", "struct<a:int not null,b:map<bigint,struct<c:date>>>", "STRUCT",
			`{"type":"struct","fields":[{"name":"a","type":"integer","nullable":false,"metadata":{}},{"name":"b","type":{"type":"map","keyType":"long","valueType":{"type":"struct","fields":[{"name":"c","type":"date","nullable":true,"metadata":{}}]},"valueContainsNull":false},"nullable":true,"metadata":{}}]}`},
		{"array<array<map<string,decimal(5,1)>>>", "array<array<map<string,decimal(5,1)>>>", "ARRAY",
			`{"type":"array","elementType":{"type":"array","elementType":{"type":"map","keyType":"string","valueType":"decimal(5,1)","valueContainsNull":false},"containsNull":false},"containsNull":false}`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			ty, err := ParseType(tc.in)
			if err != nil {
				t.Fatalf("ParseType: %v", err)
			}
			if got := ty.TypeText(); got != tc.text {
				t.Errorf("TypeText = %q, want %q", got, tc.text)
			}
			if got := ty.String(); got != tc.text {
				t.Errorf("String = %q, want %q", got, tc.text)
			}
			if got := ty.TypeName(); got != tc.name {
				t.Errorf("TypeName = %q, want %q", got, tc.name)
			}
			if got := ty.TypeJSON(); got != tc.json {
				t.Errorf("TypeJSON = %s, want %s", got, tc.json)
			}
			if !json.Valid([]byte(ty.TypeJSON())) {
				t.Errorf("TypeJSON is not JSON: %s", ty.TypeJSON())
			}
			back, err := ParseType(ty.TypeText())
			if err != nil || !back.Equal(ty) {
				t.Errorf("ParseType(TypeText) = %v, %v; want %v", back, err, ty)
			}
		})
	}
}

func TestParseTypeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "unknown type"},
		{"int4", "unknown type"},
		{"array<int", `expected ">"`},
		{"array int", `expected "<"`},
		{"map<int>", `expected ","`},
		{"map<string,int", `expected ">"`},
		{"map<double,int>", "map key type double"},
		{"map<binary,int>", "map key type binary"},
		{"map<array<int>,int>", "map key type"},
		{"struct<>", "struct without fields"},
		{"struct<a:int,>", "expected a field name"},
		{"struct<a:int b:int>", `expected ","`},
		{"struct<a int not nul>", "expected NULL after NOT"},
		{"struct<a int comment x>", "expected a quoted comment"},
		{"struct<a int comment 'x>", "unterminated comment"},
		{"struct<a:int,A:int>", "duplicate name"},
		{"struct<`a b`:int>", "expected a field name"},
		{"struct<a:foo>", "unknown type"},
		{"decimal(40,2)", "invalid decimal(40,2)"},
		{"decimal(5,6)", "invalid decimal(5,6)"},
		{"decimal(0)", "invalid decimal(0,0)"},
		{"decimal(x)", "expected a number"},
		{"decimal(5,y)", "expected a number"},
		{"decimal(5,2", `expected ")"`},
		{"int extra", "after the type"},
		{"map<string,int", `expected ">"`},
		{"map<", "unknown type"},
		{"map<string,", "unknown type"},
		{"struct<a:", "unknown type"},
		{"struct", `expected "<"`},
		{"map", `expected "<"`},
		{"array<", "unknown type"},
		{"struct<a:int", `expected ","`},
		{strings.Repeat("array<", 70) + "int" + strings.Repeat(">", 70), "levels deep"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseType(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseType(%q) error = %v, want it to contain %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestParseColumns(t *testing.T) {
	cols, err := ParseColumns("id BIGINT NOT NULL COMMENT \"key\", name string, tags array<string> not null")
	if err != nil {
		t.Fatal(err)
	}
	want := []Column{
		{Name: "id", Type: Type{Kind: Long}},
		{Name: "name", Type: Type{Kind: String}, Nullable: true},
		{Name: "tags", Type: Type{Kind: Array, Elem: &Type{Kind: String}}},
	}
	if !columnsEqual(cols, want) {
		t.Fatalf("ParseColumns = %v, want %v", cols, want)
	}
	if got := ColumnsDDL(cols); got != "id bigint not null, name string, tags array<string> not null" {
		t.Errorf("ColumnsDDL = %q", got)
	}
	for _, bad := range []struct{ in, want string }{
		{"", "expected a field name"},
		{"a int b int", "expected ',' between columns"},
		{"a int, A string", "duplicate name"},
		{"1a int", "invalid name"},
		{"a int,", "expected a field name"},
		{"a struct<b:int, B:int>", "column a.B: duplicate name"},
	} {
		if _, err := ParseColumns(bad.in); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseColumns(%q) = %v, want error with %q", bad.in, err, bad.want)
		}
	}
}

func TestValidateColumns(t *testing.T) {
	many := make([]Column, MaxColumns+1)
	for i := range many {
		many[i] = Column{Name: fmt.Sprintf("c%d", i), Type: Type{Kind: Int}}
	}
	deep := Type{Kind: Int}
	for range maxTypeDepth + 1 {
		d := deep
		deep = Type{Kind: Array, Elem: &d}
	}
	tests := []struct {
		name   string
		cols   []Column
		column string
		want   string
	}{
		{"none", nil, "", "at least one column"},
		{"too many", many, "c2000", "more than the limit of 2000"},
		{"bad name", []Column{{Name: "a-b", Type: Type{Kind: Int}}}, "a-b", "invalid name"},
		{"empty name", []Column{{Name: "", Type: Type{Kind: Int}}}, "", "invalid name"},
		{"unicode name", []Column{{Name: "é", Type: Type{Kind: Int}}}, "é", "invalid name"},
		{"unknown kind", []Column{{Name: "a", Type: Type{Kind: 99}}}, "a", "unknown type kind 99"},
		{"zero kind", []Column{{Name: "a"}}, "a", "unknown type kind 0"},
		{"array without elem", []Column{{Name: "a", Type: Type{Kind: Array}}}, "a", "array without element type"},
		{"map without key", []Column{{Name: "m", Type: Type{Kind: Map, Elem: &Type{Kind: Int}}}}, "m", "map without key"},
		{"bad map value", []Column{{Name: "m", Type: Type{Kind: Map, Key: &Type{Kind: Int}, Elem: &Type{Kind: Decimal, Precision: 50}}}}, "m.value", "invalid decimal"},
		{"bad map key", []Column{{Name: "m", Type: Type{Kind: Map, Key: &Type{Kind: Decimal}, Elem: &Type{Kind: Int}}}}, "m.key", "invalid decimal"},
		{"bad struct field", []Column{{Name: "s", Type: Type{Kind: Struct, Fields: []Column{{Name: "x y", Type: Type{Kind: Int}}}}}}, "s.x y", "invalid name"},
		{"too deep", []Column{{Name: "a", Type: deep}}, "a" + strings.Repeat(".element", maxTypeDepth), "levels deep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateColumns(tc.cols)
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("ValidateColumns = %v, want *SchemaError", err)
			}
			if se.Column != tc.column || !strings.Contains(se.Reason, tc.want) {
				t.Fatalf("ValidateColumns = column %q reason %q, want column %q reason containing %q", se.Column, se.Reason, tc.column, tc.want)
			}
		})
	}
	if err := ValidateColumns(many[:MaxColumns]); err != nil {
		t.Fatalf("2000 columns: %v", err)
	}
}

func TestKindAndInvalidRendering(t *testing.T) {
	if got := Kind(42).String(); got != "Kind(42)" {
		t.Errorf("Kind(42).String() = %q", got)
	}
	// Broken types render without panicking.
	for _, ty := range []Type{{Kind: 42}, {Kind: Array}, {Kind: Map}} {
		_ = ty.TypeText()
		_ = ty.TypeJSON()
		if ty.ArrowType() == nil {
			t.Errorf("ArrowType(%v) = nil", ty)
		}
	}
	if (Type{Kind: 42}).ArrowType() != arrow.Null {
		t.Errorf("invalid kind should map to the null type")
	}
}

func TestTypeEqual(t *testing.T) {
	parse := func(s string) Type {
		ty, err := ParseType(s)
		if err != nil {
			t.Fatal(err)
		}
		return ty
	}
	tests := []struct {
		a, b string
		eq   bool
	}{
		{"int", "integer", true},
		{"int", "bigint", false},
		{"decimal(10,2)", "decimal(10,2)", true},
		{"decimal(10,2)", "decimal(10,3)", false},
		{"array<int>", "array<int>", true},
		{"array<int>", "array<bigint>", false},
		{"map<string,int>", "map<string,int>", true},
		{"map<string,int>", "map<int,int>", false},
		{"struct<a:int>", "struct<A:int>", true},
		{"struct<a:int>", "struct<a:int not null>", false},
		{"struct<a:int>", "struct<b:int>", false},
		{"struct<a:int>", "struct<a:int,b:int>", false},
		{"struct<a:int>", "struct<a:string>", false},
	}
	for _, tc := range tests {
		if got := parse(tc.a).Equal(parse(tc.b)); got != tc.eq {
			t.Errorf("%s.Equal(%s) = %t, want %t", tc.a, tc.b, got, tc.eq)
		}
	}
}

func TestSchemaStringRoundTrip(t *testing.T) {
	cols := mustColumns(t, allTypesDDL)
	s := SchemaString(cols)
	if !json.Valid([]byte(s)) {
		t.Fatalf("schemaString is not JSON: %s", s)
	}
	if !strings.Contains(s, `{"name":"v","type":"string","nullable":true,"metadata":{}}`) {
		t.Errorf("VARIANT should be stored as string in the schemaString: %s", s)
	}
	back, err := ParseSchemaString(s)
	if err != nil {
		t.Fatal(err)
	}
	// Everything comes back but VARIANT, which the Delta schema stores as STRING.
	want := cloneColumns(cols)
	for i := range want {
		if want[i].Type.Kind == Variant {
			want[i].Type.Kind = String
		}
	}
	if d := firstColumnDiff(want, back, ""); d != nil {
		t.Fatalf("round trip: %v", d)
	}
	for _, bad := range []string{`"int"`, `{`, `{"type":"struct","fields":[{"name":"a","type":"int4"}]}`,
		`{"type":"struct","fields":[{"name":"a","type":{"type":"array","elementType":"x"}}]}`,
		`{"type":"struct","fields":[{"name":"a","type":{"type":"map","keyType":"x","valueType":"int"}}]}`,
		`{"type":"struct","fields":[{"name":"a","type":{"type":"map","keyType":"string","valueType":"x"}}]}`,
		`{"type":"struct","fields":[{"name":"a","type":{"type":"udt"}}]}`,
		`{"type":"struct","fields":[{"name":"a","type":"array<int>"}]}`,
		`{"type":"struct","fields":[{"name":"a","type":7}]}`} {
		if _, err := ParseSchemaString(bad); err == nil {
			t.Errorf("ParseSchemaString(%s) succeeded", bad)
		}
	}
	deep := strings.Repeat(`{"type":"array","elementType":`, maxTypeDepth+2) + `"int"` + strings.Repeat(`,"containsNull":false}`, maxTypeDepth+2)
	if _, err := ParseSchemaString(`{"type":"struct","fields":[{"name":"a","type":` + deep + `}]}`); err == nil || !strings.Contains(err.Error(), "levels deep") {
		t.Errorf("deep schemaString: %v", err)
	}
}

func TestUCColumns(t *testing.T) {
	cols := mustColumns(t, "id bigint not null, price decimal(12,3), tags array<string> not null, v variant")
	got := UCColumnsOf(cols)
	want := []UCColumn{
		{Name: "id", TypeName: "LONG", TypeText: "bigint", TypeJSON: `{"name":"id","type":"long","nullable":false,"metadata":{}}`, Position: 0},
		{Name: "price", TypeName: "DECIMAL", TypeText: "decimal(12,3)", TypeJSON: `{"name":"price","type":"decimal(12,3)","nullable":true,"metadata":{}}`, TypePrecision: 12, TypeScale: 3, Nullable: true, Position: 1},
		{Name: "tags", TypeName: "ARRAY", TypeText: "array<string>", TypeJSON: `{"name":"tags","type":{"type":"array","elementType":"string","containsNull":false},"nullable":false,"metadata":{}}`, Position: 2},
		{Name: "v", TypeName: "VARIANT", TypeText: "variant", TypeJSON: `{"name":"v","type":"variant","nullable":true,"metadata":{}}`, Nullable: true, Position: 3},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("UCColumnsOf =\n%+v\nwant\n%+v", got, want)
	}
	raw, err := json.Marshal(got[1])
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"name":"price","type_name":"DECIMAL","type_text":"decimal(12,3)","type_json":"{\"name\":\"price\",\"type\":\"decimal(12,3)\",\"nullable\":true,\"metadata\":{}}","type_precision":12,"type_scale":3,"nullable":true,"position":1}`
	if string(raw) != wantJSON {
		t.Errorf("JSON = %s\nwant   %s", raw, wantJSON)
	}
	if c := cols[0].String(); c != "id bigint not null" {
		t.Errorf("Column.String = %q", c)
	}
}

func TestArrowSchema(t *testing.T) {
	s := ArrowSchema(mustColumns(t, allTypesDDL))
	want := map[string]string{
		"id": "int64", "b": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "f": "float32", "d": "float64",
		"s": "utf8", "bin": "binary", "day": "date32", "ts": "timestamp[us, tz=UTC]", "ntz": "timestamp[us]",
		"dec": "decimal(10, 2)", "v": "utf8", "tags": "list<element: utf8>",
		"scores": "map<utf8, int32, items_non_nullable>",
		"items":  "list<element: struct<k: utf8, n: int64>>",
		"nested": "list<element: list<element: int32>>",
	}
	for _, f := range s.Fields() {
		w, ok := want[f.Name]
		if !ok {
			continue
		}
		got := f.Type.String()
		got = strings.ReplaceAll(got, " nullable", "")
		if got != w {
			t.Errorf("%s: Arrow type %s, want %s", f.Name, got, w)
		}
	}
	if f, _ := s.FieldsByName("id"); f[0].Nullable {
		t.Errorf("NOT NULL column is nullable in Arrow")
	}
	lt := s.Field(s.FieldIndices("tags")[0]).Type.(*arrow.ListType)
	if lt.ElemField().Nullable {
		t.Errorf("array elements should be non-null")
	}
}
