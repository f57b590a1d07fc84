package debugfiles

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
)

// pythonFor returns an interpreter with pyarrow, protobuf and duckdb, or
// skips the test.
func pythonFor(t *testing.T) string {
	t.Helper()
	py := os.Getenv("PYZEROBUS_PYTHON")
	if py == "" {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		py = filepath.Join(root, ".venv", "bin", "python")
	}
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no Python interpreter at %s (set PYZEROBUS_PYTHON, or run make py-deps): %v", py, err)
	}
	out, err := exec.Command(py, "-c", "import pyarrow, google.protobuf, duckdb").CombinedOutput()
	if err != nil {
		t.Skipf("%s lacks pyarrow, protobuf or duckdb (run make py-deps): %v\n%s", py, err, out)
	}
	return py
}

// expectedRow is row id of makeBatch as the readers return it (maps as
// lists of [key, value]).
func expectedRow(id int, v2 bool) map[string]any {
	r := map[string]any{"id": id, "kind": kinds[id%3], "score": nil, "addr": nil, "extra": nil}
	if id%5 != 0 {
		r["score"] = float64(id) / 2
	}
	tags := []any{}
	for j := range id % 3 {
		tags = append(tags, fmt.Sprintf("t%d", j))
	}
	if badRow(id) {
		tags = append(tags, nil)
	}
	r["tags"] = tags
	if id%7 != 0 {
		r["addr"] = map[string]any{"city": fmt.Sprintf("city%d", id%4), "zip": 10000 + id}
	}
	attrs := [][]any{}
	if id%4 != 0 {
		attrs = [][]any{{"a", id}, {"b", 2 * id}}
	}
	r["attrs"] = attrs
	if v2 {
		r["extra"] = fmt.Sprintf("x%d", id)
	}
	return r
}

// TestPythonReaders writes files with rotations, a schema change and rows
// that fail to convert, then runs pyzerobus/debug.py's readers and the
// README's DuckDB queries on them: first while the Writer is open (the
// ticker flushed them, no Close), then after Close.
func TestPythonReaders(t *testing.T) {
	py := pythonFor(t)
	debugPy, err := filepath.Abs(filepath.Join("..", "..", "pyzerobus", "debug.py"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	table := "main.debug.événements_" + strings.Repeat("x", 240) // changed and cut to fit
	w := newWriter(t, Config{Dir: dir, Table: table, Arrow: true, Protobuf: true,
		MaxFileSize: 8 << 10, FlushInterval: 20 * time.Millisecond})
	cache := arrowproto.NewCache(4)

	var rows []map[string]any
	var recordIDs []int64
	const n, batch, v2From = 900, 50, 600
	for start := 0; start < n; start += batch {
		schema := schemaV1()
		if start >= v2From {
			schema = schemaV2()
		}
		recordIDs = append(recordIDs, send(t, w, cache, schema, start, batch)...)
		for id := start; id < start+batch; id++ {
			rows = append(rows, expectedRow(id, start >= v2From))
		}
	}
	// What the README's queries must return.
	kindCount := map[string]int{}
	var failed [][]any
	type city struct{ n, b int }
	cities := map[string]*city{}
	for _, r := range rows {
		id := r["id"].(int)
		kindCount[r["kind"].(string)]++
		if badRow(id) {
			failed = append(failed, []any{id, r["tags"]})
			continue
		}
		if r["addr"] == nil {
			continue
		}
		c := r["addr"].(map[string]any)["city"].(string)
		if cities[c] == nil {
			cities[c] = &city{}
		}
		cities[c].n++
		if id%4 != 0 {
			cities[c].b += 2 * id
		}
	}
	var kindRows, cityRows [][]any
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range kindCount {
			if !yield(k) {
				return
			}
		}
	}) {
		kindRows = append(kindRows, []any{k, kindCount[k]})
	}
	for _, c := range []string{"city0", "city1", "city2", "city3"} {
		var b any
		if c != "city0" { // every id with id%4 == 0 is in city0, and has no "b"
			b = cities[c].b
		}
		cityRows = append(cityRows, []any{c, cities[c].n, b})
	}
	expected, err := json.Marshal(map[string]any{
		"rows": rows, "record_ids": recordIDs, "kinds": kindRows, "failed": failed, "cities": cityRows,
	})
	if err != nil {
		t.Fatal(err)
	}
	expectedPath := filepath.Join(t.TempDir(), "expected.json")
	if err := os.WriteFile(expectedPath, expected, 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(stage string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, py, filepath.Join("testdata", "check_readers.py"),
			debugPy, dir, table, expectedPath).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: the Python readers disagree: %v\n%s", stage, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if lines[0] != w.base {
			t.Errorf("Python names the files %q, Go %q", lines[0], w.base)
		}
		t.Logf("%s: %s", stage, lines[len(lines)-1])
	}

	// No Close and no Flush: the ticker writes everything out.
	testutil.Eventually(t, "the tick", func() bool { return allWritten(w) })
	if got := flat(arrowIDs(t, dataFiles(t, w, w.arrowDir(), extArrow))); len(got) != n {
		t.Fatalf("%d rows on disk, want %d", len(got), n)
	}
	if _, ended := readArrowFile(t, filepath.Join(w.arrowDir(), w.base+".arrows")); ended {
		t.Fatal("the active Arrow file is already ended")
	}
	if st := w.Stats(); st.Rotations < 10 {
		t.Fatalf("only %d rotations", st.Rotations)
	}
	run("open")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	run("closed")
}

// TestPythonFileBase: pyzerobus.debug names the files as the Writer does.
func TestPythonFileBase(t *testing.T) {
	py := pythonFor(t)
	debugPy, err := filepath.Abs(filepath.Join("..", "..", "pyzerobus", "debug.py"))
	if err != nil {
		t.Fatal(err)
	}
	tables := []string{
		"events", "main.app.events", "main.app.`ev ents`", "a/b", "..", ".hidden", "événements",
		"x.20261127T101500.123Z.000042", strings.Repeat("a", maxBaseLen), strings.Repeat("a", maxBaseLen+1),
		strings.Repeat("é", 300), "日本語.テーブル",
	}
	in, err := json.Marshal(tables)
	if err != nil {
		t.Fatal(err)
	}
	script := `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("pyzerobus_debug", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
print(json.dumps([m.file_base(t) for t in json.loads(sys.argv[2])]))
`
	out, err := exec.Command(py, "-c", script, debugPy, string(in)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, table := range tables {
		if want := fileBase(table); got[i] != want {
			t.Errorf("table %q: Python %q, Go %q", table, got[i], want)
		}
	}
}

// TestPythonProtobufTypes decodes records of a descriptor with every kind of
// protobuf field (written as a user-supplied descriptor would be) with
// read_protobuf.
func TestPythonProtobufTypes(t *testing.T) {
	py := pythonFor(t)
	debugPy, err := filepath.Abs(filepath.Join("..", "..", "pyzerobus", "debug.py"))
	if err != nil {
		t.Fatal(err)
	}
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, label *descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(), Label: label}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	desc := &descriptorpb.DescriptorProto{
		Name: proto.String("AllTypes"),
		Field: []*descriptorpb.FieldDescriptorProto{
			field("d", 1, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, opt, ""),
			field("f", 2, descriptorpb.FieldDescriptorProto_TYPE_FLOAT, opt, ""),
			field("i64", 3, descriptorpb.FieldDescriptorProto_TYPE_INT64, opt, ""),
			field("u64", 4, descriptorpb.FieldDescriptorProto_TYPE_UINT64, opt, ""),
			field("i32", 5, descriptorpb.FieldDescriptorProto_TYPE_INT32, opt, ""),
			field("fx64", 6, descriptorpb.FieldDescriptorProto_TYPE_FIXED64, opt, ""),
			field("fx32", 7, descriptorpb.FieldDescriptorProto_TYPE_FIXED32, opt, ""),
			field("b", 8, descriptorpb.FieldDescriptorProto_TYPE_BOOL, opt, ""),
			field("s", 9, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
			field("by", 12, descriptorpb.FieldDescriptorProto_TYPE_BYTES, opt, ""),
			field("u32", 13, descriptorpb.FieldDescriptorProto_TYPE_UINT32, opt, ""),
			field("color", 14, descriptorpb.FieldDescriptorProto_TYPE_ENUM, opt, "Color"),
			field("sf32", 15, descriptorpb.FieldDescriptorProto_TYPE_SFIXED32, opt, ""),
			field("sf64", 16, descriptorpb.FieldDescriptorProto_TYPE_SFIXED64, opt, ""),
			field("si32", 17, descriptorpb.FieldDescriptorProto_TYPE_SINT32, opt, ""),
			field("si64", 18, descriptorpb.FieldDescriptorProto_TYPE_SINT64, opt, ""),
			field("items", 20, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, rep, "Item"),
			field("stock", 21, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, rep, "StockEntry"),
			field("nums", 22, descriptorpb.FieldDescriptorProto_TYPE_INT64, rep, ""),
			field("first", 23, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, opt, "Item"),
		},
		NestedType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Item"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
				field("qty", 2, descriptorpb.FieldDescriptorProto_TYPE_INT32, opt, ""),
			}},
			{Name: proto.String("StockEntry"), Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
				Field: []*descriptorpb.FieldDescriptorProto{
					field("key", 1, descriptorpb.FieldDescriptorProto_TYPE_INT32, opt, ""),
					field("value", 2, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, opt, "Item"),
				}},
		},
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Color"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: proto.String("RED"), Number: proto.Int32(0)}, {Name: proto.String("GREEN"), Number: proto.Int32(1)},
		}}},
	}
	descBytes, err := proto.Marshal(desc)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("all.proto"), Syntax: proto.String("proto2"), MessageType: []*descriptorpb.DescriptorProto{desc},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().Get(0)
	fields := md.Fields()
	full := dynamicpb.NewMessage(md)
	for name, v := range map[string]protoreflect.Value{
		"d": protoreflect.ValueOfFloat64(1.5), "f": protoreflect.ValueOfFloat32(-2.25),
		"i64": protoreflect.ValueOfInt64(-1 << 62), "u64": protoreflect.ValueOfUint64(1<<64 - 1),
		"i32": protoreflect.ValueOfInt32(-7), "fx64": protoreflect.ValueOfUint64(1 << 40),
		"fx32": protoreflect.ValueOfUint32(1 << 31), "b": protoreflect.ValueOfBool(true),
		"s": protoreflect.ValueOfString("héllo"), "by": protoreflect.ValueOfBytes([]byte{0, 1, 0xff}),
		"u32": protoreflect.ValueOfUint32(1<<32 - 1), "color": protoreflect.ValueOfEnum(1),
		"sf32": protoreflect.ValueOfInt32(-3), "sf64": protoreflect.ValueOfInt64(-4),
		"si32": protoreflect.ValueOfInt32(-5), "si64": protoreflect.ValueOfInt64(-6),
	} {
		full.Set(fields.ByName(protoreflect.Name(name)), v)
	}
	item := func(name string, qty int32) protoreflect.Value {
		m := dynamicpb.NewMessage(md.Messages().ByName("Item"))
		m.Set(m.Descriptor().Fields().ByName("name"), protoreflect.ValueOfString(name))
		m.Set(m.Descriptor().Fields().ByName("qty"), protoreflect.ValueOfInt32(qty))
		return protoreflect.ValueOfMessage(m)
	}
	items := full.Mutable(fields.ByName("items")).List()
	items.Append(item("a", 1))
	items.Append(item("b", 2))
	stock := full.Mutable(fields.ByName("stock")).Map()
	stock.Set(protoreflect.ValueOfInt32(9).MapKey(), item("z", 9))
	stock.Set(protoreflect.ValueOfInt32(3).MapKey(), item("c", 3))
	nums := full.Mutable(fields.ByName("nums")).List()
	nums.Append(protoreflect.ValueOfInt64(1))
	nums.Append(protoreflect.ValueOfInt64(-1))
	full.Set(fields.ByName("first"), item("f", 0))
	var records [][]byte
	for _, m := range []*dynamicpb.Message{full, dynamicpb.NewMessage(md)} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, b)
	}

	dir := t.TempDir()
	w := newWriter(t, Config{Dir: dir, Table: "types", Protobuf: true})
	w.OnBatchEncoded(nil, descBytes, records)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	expected := `{
	"schema": {"d": "double", "f": "float", "i64": "int64", "u64": "uint64", "i32": "int32",
		"fx64": "uint64", "fx32": "uint32", "b": "bool", "s": "string", "by": "binary", "u32": "uint32",
		"color": "string", "sf32": "int32", "sf64": "int64", "si32": "int32", "si64": "int64",
		"items": "list<item: struct<name: string, qty: int32>>",
		"stock": "map<int32, struct<name: string, qty: int32>>",
		"nums": "list<item: int64>", "first": "struct<name: string, qty: int32>"},
	"rows": [
		{"d": 1.5, "f": -2.25, "i64": -4611686018427387904, "u64": 18446744073709551615, "i32": -7,
		 "fx64": 1099511627776, "fx32": 2147483648, "b": true, "s": "héllo", "by": "0001ff", "u32": 4294967295,
		 "color": "GREEN", "sf32": -3, "sf64": -4, "si32": -5, "si64": -6,
		 "items": [{"name": "a", "qty": 1}, {"name": "b", "qty": 2}],
		 "stock": [[3, {"name": "c", "qty": 3}], [9, {"name": "z", "qty": 9}]],
		 "nums": [1, -1], "first": {"name": "f", "qty": 0}},
		{"d": null, "f": null, "i64": null, "u64": null, "i32": null, "fx64": null, "fx32": null, "b": null,
		 "s": null, "by": null, "u32": null, "color": null, "sf32": null, "sf64": null, "si32": null, "si64": null,
		 "items": [], "stock": [], "nums": [], "first": null}
	]}`
	out, err := exec.Command(py, filepath.Join("testdata", "check_types.py"), debugPy, dir, "types", expected).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
