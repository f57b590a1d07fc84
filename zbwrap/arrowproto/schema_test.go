package arrowproto

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

func schemaOf(fields ...arrow.Field) *arrow.Schema { return arrow.NewSchema(fields, nil) }

func fld(name string, dt arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: dt, Nullable: true}
}

func TestGeneratedDescriptorShape(t *testing.T) {
	inner := arrow.StructOf(fld("x", arrow.PrimitiveTypes.Int8), fld("tags", arrow.MapOf(arrow.BinaryTypes.String, arrow.ListOf(arrow.PrimitiveTypes.Int8))))
	s := schemaOf(
		fld("id", arrow.PrimitiveTypes.Int64),
		fld("addr", inner),
		fld("items", arrow.ListOf(inner)),
		fld("grid", arrow.ListOf(arrow.ListOf(arrow.MapOf(arrow.PrimitiveTypes.Int32, arrow.FixedWidthTypes.Boolean)))),
		fld("addr_Struct", arrow.PrimitiveTypes.Int8), // collides with the generated name of addr's type
	)
	sc, err := NewSchema(s, WithMessageName("Orders"))
	if err != nil {
		t.Fatal(err)
	}
	d := sc.Descriptor()
	if d.GetName() != "Orders" || sc.ArrowSchema() != s || !strings.Contains(sc.String(), "Orders") {
		t.Fatalf("name %q, schema %p, %s", d.GetName(), sc.ArrowSchema(), sc)
	}
	for i, f := range d.GetField() {
		if f.GetNumber() != int32(i+1) || f.GetName() != s.Field(i).Name {
			t.Fatalf("field %d: %s = %d", i, f.GetName(), f.GetNumber())
		}
		if f.GetLabel() != lOpt && f.GetLabel() != lRep {
			t.Fatalf("field %s label %v", f.GetName(), f.GetLabel())
		}
	}
	// Nested types: declared inside the top-level message, unique names,
	// referred to by relative names; map entries inside their message.
	names := map[string]*descriptorpb.DescriptorProto{}
	for _, n := range d.GetNestedType() {
		if names[n.GetName()] != nil {
			t.Fatalf("duplicate nested type %s", n.GetName())
		}
		names[n.GetName()] = n
	}
	for _, want := range []string{"addr_Struct_2", "items_element_Struct", "grid_element_List", "grid_element_element_List"} {
		if names[want] == nil {
			t.Fatalf("no nested type %s in %v", want, sortedKeys(names))
		}
	}
	addr := d.GetField()[1]
	if addr.GetTypeName() != "addr_Struct_2" || strings.HasPrefix(addr.GetTypeName(), ".") {
		t.Fatalf("addr type name %q", addr.GetTypeName())
	}
	st := names["addr_Struct_2"]
	if len(st.GetNestedType()) != 1 || st.GetNestedType()[0].GetName() != "TagsEntry" || !st.GetNestedType()[0].GetOptions().GetMapEntry() {
		t.Fatalf("map entry of addr.tags not declared in its message: %v", st)
	}
	if v := st.GetNestedType()[0].GetField()[1]; v.GetTypeName() != "addr_tags_value_List" || v.GetLabel() != lOpt {
		t.Fatalf("map value of lists should be a wrapper message: %v", v)
	}
	// DescriptorBytes is the serialized descriptor.
	back := &descriptorpb.DescriptorProto{}
	if err := proto.Unmarshal(sc.DescriptorBytes(), back); err != nil || !proto.Equal(back, d) {
		t.Fatalf("DescriptorBytes does not round-trip: %v", err)
	}
	// The descriptor is valid for protodesc (a server's view).
	messageDescriptor(t, d)
}

func TestSchemaErrors(t *testing.T) {
	many := make([]arrow.Field, MaxColumns+1)
	for i := range many {
		many[i] = fld(fmt.Sprintf("c%d", i), arrow.PrimitiveTypes.Int8)
	}
	deepList := arrow.DataType(arrow.PrimitiveTypes.Int8)
	for i := 0; i < MaxNestingDepth+2; i++ {
		deepList = arrow.ListOf(deepList)
	}
	deepMap := arrow.DataType(arrow.PrimitiveTypes.Int8)
	for i := 0; i < MaxNestingDepth+1; i++ {
		deepMap = arrow.MapOf(arrow.PrimitiveTypes.Int8, deepMap)
	}
	i8 := arrow.PrimitiveTypes.Int8
	for _, tc := range []struct {
		name   string
		s      *arrow.Schema
		opts   []Option
		is     error
		column string
		reason string
	}{
		{"dash", schemaOf(fld("a-b", i8)), nil, ErrInvalidName, "a-b", "ASCII letters"},
		{"leading digit", schemaOf(fld("1a", i8)), nil, ErrInvalidName, "1a", "not starting with a digit"},
		{"empty", schemaOf(fld("", i8)), nil, ErrInvalidName, "", "ASCII letters"},
		{"non-ascii", schemaOf(fld("prix_é", i8)), nil, ErrInvalidName, "prix_é", "ASCII"},
		{"nested bad name", schemaOf(fld("s", arrow.StructOf(fld("ok", i8), fld("not ok", i8)))), nil, ErrInvalidName, "s.not ok", "ASCII"},
		{"name in list", schemaOf(fld("l", arrow.ListOf(arrow.StructOf(fld("x.y", i8))))), nil, ErrInvalidName, "l[].x.y", "ASCII"},
		{"name in map", schemaOf(fld("m", arrow.MapOf(i8, arrow.StructOf(fld("$", i8))))), nil, ErrInvalidName, "m.value.$", "ASCII"},
		{"duplicate", schemaOf(fld("a", i8), fld("a", i8)), nil, ErrInvalidName, "a", "duplicate"},
		{"too many columns", schemaOf(many...), nil, ErrSchemaLimit, "", "2001 columns"},
		{"deep lists", schemaOf(fld("l", deepList)), nil, ErrSchemaLimit, "l[][][][][][][][][][][]", "nested deeper"},
		{"deep maps", schemaOf(fld("m", deepMap)), nil, ErrSchemaLimit, "m.value.value.value.value.value", "nested deeper"},
		{"interval", schemaOf(fld("i", arrow.FixedWidthTypes.MonthDayNanoInterval)), nil, ErrUnsupportedType, "i", "no protobuf mapping"},
		{"day time interval", schemaOf(fld("s", arrow.StructOf(fld("i", arrow.FixedWidthTypes.DayTimeInterval)))), nil, ErrUnsupportedType, "s.i", "no protobuf mapping"},
		{"binary key", schemaOf(fld("m", arrow.MapOf(arrow.BinaryTypes.Binary, i8))), nil, ErrUnsupportedType, "m.key", "map key"},
		{"null key", schemaOf(fld("m", arrow.MapOf(arrow.Null, i8))), nil, ErrUnsupportedType, "m.key", "map key"},
		{"struct key", schemaOf(fld("m", arrow.MapOf(arrow.StructOf(fld("a", i8)), i8))), nil, ErrUnsupportedType, "m.key", "map key"},
		{"scale", schemaOf(fld("d", &arrow.Decimal256Type{Precision: 76, Scale: 77})), nil, ErrUnsupportedType, "d", "scale"},
		{"entry collision", schemaOf(fld("a_b", arrow.MapOf(i8, i8)), fld("aB", arrow.MapOf(i8, i8))), nil, ErrInvalidName, "aB", "collides"},
		{"entry vs field", schemaOf(fld("s", arrow.StructOf(fld("TagsEntry", i8), fld("tags", arrow.MapOf(i8, i8))))), nil, ErrInvalidName, "s.tags", "collides"},
		{"bad message name", schemaOf(fld("a", i8)), []Option{WithMessageName("my-table")}, ErrInvalidName, "", "message name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSchema(tc.s, tc.opts...)
			var se *SchemaError
			if !errors.As(err, &se) || !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if se.Column != tc.column || !strings.Contains(se.Reason, tc.reason) {
				t.Fatalf("err = %v (column %q), want column %q and %q", err, se.Column, tc.column, tc.reason)
			}
			if tc.column != "" && !strings.Contains(err.Error(), tc.column) {
				t.Fatalf("message %q does not name the column", err)
			}
		})
	}
	if _, err := NewSchema(nil); err == nil {
		t.Fatal("nil schema accepted")
	}
	// Exactly the limits is fine.
	if _, err := NewSchema(schemaOf(many[:MaxColumns]...)); err != nil {
		t.Fatalf("%d columns: %v", MaxColumns, err)
	}
	ok := arrow.DataType(i8)
	for i := 0; i < MaxNestingDepth; i++ {
		ok = arrow.StructOf(fld("s", ok))
	}
	if _, err := NewSchema(schemaOf(fld("a", ok))); err != nil {
		t.Fatalf("%d nested structs: %v", MaxNestingDepth, err)
	}
}

func TestProtodescGuard(t *testing.T) {
	// The generator's output always passes; a broken descriptor does not.
	bad := mustDesc(t, `name: "R" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "Missing" }`)
	if err := checkProtodesc(bad); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("err = %v", err)
	}
}

func TestEncodeSchemaMismatch(t *testing.T) {
	rec := record(t, column{"a", fromJSON(t, arrow.PrimitiveTypes.Int8, `[1]`)})
	sc, err := NewSchema(schemaOf(fld("a", arrow.PrimitiveTypes.Int16)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Encode(rec); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("err = %v", err)
	}
	if _, err := sc.Encode(nil); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("nil record: %v", err)
	}
	// An equal schema that is another value is accepted (nullability and
	// metadata do not matter).
	same := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int8, Nullable: false}}, nil)
	sc2, err := NewSchema(same)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc2.Encode(rec); err != nil {
		t.Fatalf("equal schema rejected: %v", err)
	}
}

func TestRowErrorMessage(t *testing.T) {
	e := RowError{Row: 3, Column: "a.b", Reason: "bad"}
	if got := e.Error(); got != `row 3, column "a.b": bad` {
		t.Fatalf("%q", got)
	}
	if got := (RowError{Row: 1, Reason: "too big"}).Error(); got != "row 1: too big" {
		t.Fatalf("%q", got)
	}
	se := &SchemaError{Reason: "x", Err: ErrSchemaLimit}
	if se.Error() != "arrowproto: x" || !errors.Is(se, ErrSchemaLimit) {
		t.Fatalf("%v", se)
	}
}

func TestCache(t *testing.T) {
	s1 := schemaOf(fld("a", arrow.PrimitiveTypes.Int8))
	s1again := schemaOf(fld("a", arrow.PrimitiveTypes.Int8)) // equal, another value
	s2 := schemaOf(fld("b", arrow.PrimitiveTypes.Int8))
	bad := schemaOf(fld("bad name", arrow.PrimitiveTypes.Int8))
	c := NewCache(2, WithMessageName("T"))
	a, err := c.Get(s1)
	if err != nil || a.Descriptor().GetName() != "T" {
		t.Fatalf("%v %v", a, err)
	}
	if b, _ := c.Get(s1again); b != a {
		t.Fatal("an equal schema should hit the cache")
	}
	if b, _ := c.Get(s1); b != a {
		t.Fatal("the same schema should hit the cache")
	}
	_, err1 := c.Get(bad)
	_, err2 := c.Get(bad)
	if !errors.Is(err1, ErrInvalidName) || err1 != err2 {
		t.Fatalf("errors are cached: %v %v", err1, err2)
	}
	if _, err := c.Get(s2); err != nil { // evicts s1, the least recently used
		t.Fatal(err)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d", c.Len())
	}
	if b, _ := c.Get(s1); b == a {
		t.Fatal("s1 should have been evicted and compiled again")
	}
	if _, err := c.Get(nil); err == nil {
		t.Fatal("nil schema")
	}
	// Many schema values with one key: the identity map stays bounded.
	for i := 0; i < 3*maxPtrsPerEntry; i++ {
		if _, err := c.Get(schemaOf(fld("a", arrow.PrimitiveTypes.Int8))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.byPtr); n > 2*maxPtrsPerEntry {
		t.Fatalf("%d schema values remembered", n)
	}
	if NewCache(0).size != 1 {
		t.Fatal("size below 1")
	}
}

func TestCacheConcurrentGetCompilesOnce(t *testing.T) {
	c := NewCache(4)
	s := schemaOf(fld("a", arrow.ListOf(arrow.StructOf(fld("b", arrow.BinaryTypes.String)))))
	var wg sync.WaitGroup
	got := make([]*Schema, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc, err := c.Get(schemaOf(s.Fields()...))
			if err != nil {
				t.Error(err)
			}
			got[i] = sc
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] {
			t.Fatal("concurrent Gets compiled the schema more than once")
		}
	}
}
