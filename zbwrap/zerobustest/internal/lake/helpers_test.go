package lake

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// openLake opens a Lake on dir with a long materialize interval (tests
// materialize explicitly) and closes it at the end of the test.
func openLake(t testing.TB, dir string) *Lake {
	t.Helper()
	l, err := Open(Options{Dir: dir, MaterializeInterval: time.Hour})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustColumns(t testing.TB, ddl string) []Column {
	t.Helper()
	cols, err := ParseColumns(ddl)
	if err != nil {
		t.Fatalf("ParseColumns(%q): %v", ddl, err)
	}
	return cols
}

func mustCreate(t testing.TB, l *Lake, name, ddl string) *Table {
	t.Helper()
	tb, err := l.CreateTable(name, mustColumns(t, ddl))
	if err != nil {
		t.Fatalf("CreateTable(%s): %v", name, err)
	}
	return tb
}

func mustBind(t testing.TB, l *Lake, name string, desc *descriptorpb.DescriptorProto) *Binding {
	t.Helper()
	b, err := l.Bind(name, desc, false)
	if err != nil {
		t.Fatalf("Bind(%s): %v", name, err)
	}
	return b
}

func mustAppend(t testing.TB, b *Binding, recs [][]byte) {
	t.Helper()
	if err := <-b.Append(recs); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// msgDesc compiles a descriptor the way Bind does.
func msgDesc(t testing.TB, d *descriptorpb.DescriptorProto) protoreflect.MessageDescriptor {
	t.Helper()
	md, _, err := compileDescriptor(d)
	if err != nil {
		t.Fatalf("compileDescriptor: %v", err)
	}
	return md
}

// encode builds a record from Go values: numbers, strings, []byte, bool,
// []any for repeated fields (and wrapped arrays), map[any]any for maps,
// map[string]any for messages. Required fields may be left out.
func encode(t testing.TB, md protoreflect.MessageDescriptor, vals map[string]any) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{AllowPartial: true, Deterministic: true}.Marshal(build(md, vals))
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func build(md protoreflect.MessageDescriptor, vals map[string]any) *dynamicpb.Message {
	m := dynamicpb.NewMessage(md)
	for k, v := range vals {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			panic(fmt.Sprintf("no field %q in %s", k, md.FullName()))
		}
		setField(m, fd, v)
	}
	return m
}

func setField(m *dynamicpb.Message, fd protoreflect.FieldDescriptor, v any) {
	switch {
	case fd.IsList():
		l := m.Mutable(fd).List()
		for _, e := range v.([]any) {
			l.Append(protoValue(fd, e))
		}
	case fd.IsMap():
		mp := m.Mutable(fd).Map()
		for k, e := range v.(map[any]any) {
			mp.Set(protoValue(fd.MapKey(), k).MapKey(), protoValue(fd.MapValue(), e))
		}
	default:
		m.Set(fd, protoValue(fd, v))
	}
}

func protoValue(fd protoreflect.FieldDescriptor, v any) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(toInt(v)))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(toInt(v))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(toInt(v)))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(toInt(v)))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(toFloat(v)))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(toFloat(v))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(v.(bool))
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(v.(string))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes(v.([]byte))
	case protoreflect.MessageKind:
		switch x := v.(type) {
		case map[string]any:
			return protoreflect.ValueOfMessage(build(fd.Message(), x))
		default: // a wrapped array or map
			sub := dynamicpb.NewMessage(fd.Message())
			setField(sub, fd.Message().Fields().Get(0), x)
			return protoreflect.ValueOfMessage(sub)
		}
	}
	panic(fmt.Sprintf("unsupported kind %s", fd.Kind()))
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	}
	panic(fmt.Sprintf("not an int: %T", v))
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	}
	panic(fmt.Sprintf("not a float: %T", v))
}

// readAll reads the Delta table back.
func readAll(t testing.TB, dir, name string) arrow.Table {
	t.Helper()
	tbl, err := ReadTable(dir, name)
	if err != nil {
		t.Fatalf("ReadTable(%s): %v", name, err)
	}
	t.Cleanup(tbl.Release)
	return tbl
}

// int64Column returns a BIGINT column's values across chunks.
func int64Column(t testing.TB, tbl arrow.Table, i int) []int64 {
	t.Helper()
	var out []int64
	for _, c := range tbl.Column(i).Data().Chunks() {
		a, ok := c.(interface{ Int64Values() []int64 })
		if !ok {
			t.Fatalf("column %d is %s, not int64", i, c.DataType())
		}
		out = append(out, a.Int64Values()...)
	}
	return out
}

// allTypesDDL is a table with every Delta type, nested ones included.
const allTypesDDL = `id bigint not null, b boolean, i8 tinyint, i16 smallint, i32 int, f float, d double,
 s string, bin binary, day date, ts timestamp, ntz timestamp_ntz, dec decimal(10,2), v variant,
 tags array<string> not null, scores map<string,int> not null,
 inner struct<x:int not null, names:array<string> not null, m:map<int,string> not null>,
 items array<struct<k:string, n:bigint>> not null, nested array<array<int>> not null`
