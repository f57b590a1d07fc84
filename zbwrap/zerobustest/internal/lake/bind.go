package lake

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// plan is a stream descriptor compiled against a table: for every column,
// the protobuf field that carries it and how its values are read.
type plan struct {
	md     protoreflect.MessageDescriptor
	fields []fplan // one per table column, in order
	desc   []byte  // the descriptor, serialized deterministically
	root   *mplan  // how records are read off the wire
	pool   decoderPool
}

// fplan is one field of a message carrying one column (or struct field).
type fplan struct {
	fd       protoreflect.FieldDescriptor
	name     string // column path, for errors
	nullable bool
	vp       *vplan
}

// vplan says how one protobuf value carries a value of a Delta type.
type vplan struct {
	typ    *Type
	path   string
	fields []fplan // Struct
	elem   *vplan  // Array element, Map value
	key    *vplan  // Map key
	// wrap is set for an ARRAY or MAP value that sits where protobuf cannot
	// repeat (an array element, a map value): a message whose only field is
	// the repeated or map field carries it.
	wrap protoreflect.FieldDescriptor
}

// compileDescriptor turns a DescriptorProto into a message descriptor. Type
// references may be relative or fully qualified; a fully qualified reference
// that names a package (as descriptors copied from compiled .proto files do)
// is resolved by declaring that package.
func compileDescriptor(desc *descriptorpb.DescriptorProto) (protoreflect.MessageDescriptor, []byte, error) {
	if desc == nil {
		return nil, nil, &SchemaError{Reason: "descriptor is missing"}
	}
	desc = proto.Clone(desc).(*descriptorpb.DescriptorProto)
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(desc)
	if err != nil {
		return nil, nil, &SchemaError{Reason: "descriptor does not serialize: " + err.Error()}
	}
	build := func(pkg string) (protoreflect.FileDescriptor, error) {
		fdp := &descriptorpb.FileDescriptorProto{
			Name:        proto.String("zerobus_stream.proto"),
			Syntax:      proto.String("proto2"),
			MessageType: []*descriptorpb.DescriptorProto{desc},
		}
		if pkg != "" {
			fdp.Package = proto.String(pkg)
		}
		return protodesc.NewFile(fdp, nil)
	}
	fd, err := build("")
	if err != nil {
		if pkg := inferPackage(desc); pkg != "" {
			if fd2, err2 := build(pkg); err2 == nil {
				fd, err = fd2, nil
			}
		}
	}
	if err != nil {
		return nil, nil, &SchemaError{Reason: "descriptor does not resolve: " + err.Error()}
	}
	return fd.Messages().Get(0), raw, nil
}

// inferPackage finds the package implied by a fully qualified reference to
// the top-level message: ".pkg.sub.Top.Nested" implies "pkg.sub".
func inferPackage(desc *descriptorpb.DescriptorProto) string {
	top := "." + desc.GetName()
	var found string
	var walk func(m *descriptorpb.DescriptorProto)
	walk = func(m *descriptorpb.DescriptorProto) {
		for _, f := range m.GetField() {
			ref := f.GetTypeName()
			if found != "" || !strings.HasPrefix(ref, ".") {
				continue
			}
			if i := strings.Index(ref+".", top+"."); i > 0 {
				found = ref[1:i]
			}
		}
		for _, n := range m.GetNestedType() {
			walk(n)
		}
	}
	walk(desc)
	return found
}

// checkDescriptorNames rejects too many columns and field names that are not
// ASCII letters, digits and underscores, anywhere in the message tree.
func checkDescriptorNames(md protoreflect.MessageDescriptor) error {
	if n := md.Fields().Len(); n > MaxColumns {
		return &SchemaError{Column: string(md.Fields().Get(MaxColumns).Name()), Reason: fmt.Sprintf("descriptor has %d fields, more than the limit of %d columns", n, MaxColumns)}
	}
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor, prefix string) error
	walk = func(md protoreflect.MessageDescriptor, prefix string) error {
		if seen[md.FullName()] {
			return nil
		}
		seen[md.FullName()] = true
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			path := prefix + string(fd.Name())
			if !validName(string(fd.Name())) {
				return &SchemaError{Column: path, Reason: fmt.Sprintf("invalid name %q: %s", fd.Name(), nameRule)}
			}
			if fd.Message() != nil {
				if err := walk(fd.Message(), path+"."); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(md, "")
}

// compilePlan matches a message against a table's columns.
func compilePlan(md protoreflect.MessageDescriptor, raw []byte, cols []Column) (*plan, error) {
	fields, err := matchColumns(md, cols, "")
	if err != nil {
		return nil, err
	}
	return &plan{md: md, fields: fields, desc: raw, root: buildMsg(fields, "")}, nil
}

func matchColumns(md protoreflect.MessageDescriptor, cols []Column, prefix string) ([]fplan, error) {
	fields := md.Fields()
	if fields.Len() != len(cols) {
		what := "table"
		if prefix != "" {
			what = "struct"
		}
		return nil, &SchemaError{
			Column: strings.TrimSuffix(prefix, "."),
			Reason: fmt.Sprintf("%s has %d columns (%s), descriptor message %s has %d fields", what, len(cols), columnNames(cols), md.Name(), fields.Len()),
		}
	}
	out := make([]fplan, len(cols))
	for i := range cols {
		fd := fields.Get(i)
		path := prefix + cols[i].Name
		if !strings.EqualFold(string(fd.Name()), cols[i].Name) {
			return nil, &SchemaError{Column: path, Reason: fmt.Sprintf("expected field %q at position %d, got %q", cols[i].Name, i, fd.Name())}
		}
		fp, err := matchField(fd, &cols[i], path)
		if err != nil {
			return nil, err
		}
		out[i] = fp
	}
	return out, nil
}

func columnNames(cols []Column) string {
	names := make([]string, 0, min(len(cols), 6))
	for i, c := range cols {
		if i == 5 {
			names = append(names, "...")
			break
		}
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

func matchField(fd protoreflect.FieldDescriptor, col *Column, path string) (fplan, error) {
	t := &col.Type
	fp := fplan{fd: fd, name: path, nullable: col.Nullable}
	switch t.Kind {
	case Array:
		if !fd.IsList() {
			return fp, mismatch(path, t, "a repeated field", fd)
		}
		elem, err := matchValue(fd, t.Elem, path+".element")
		if err != nil {
			return fp, err
		}
		fp.vp = &vplan{typ: t, path: path, elem: elem}
	case Map:
		if !fd.IsMap() {
			return fp, mismatch(path, t, "a map field", fd)
		}
		key, err := matchValue(fd.MapKey(), t.Key, path+".key")
		if err != nil {
			return fp, err
		}
		val, err := matchValue(fd.MapValue(), t.Elem, path+".value")
		if err != nil {
			return fp, err
		}
		fp.vp = &vplan{typ: t, path: path, key: key, elem: val}
	default:
		if fd.IsList() || fd.IsMap() {
			return fp, mismatch(path, t, "a single "+protoWant(t), fd)
		}
		if col.Nullable && fd.Cardinality() != protoreflect.Optional {
			return fp, &SchemaError{Column: path, Reason: fmt.Sprintf("nullable column: expected an optional field, got %s", describeField(fd))}
		}
		if !col.Nullable && fd.Cardinality() != protoreflect.Required {
			return fp, &SchemaError{Column: path, Reason: fmt.Sprintf("NOT NULL column: expected a required field, got %s", describeField(fd))}
		}
		vp, err := matchValue(fd, t, path)
		if err != nil {
			return fp, err
		}
		fp.vp = vp
	}
	return fp, nil
}

// matchValue checks that the values of fd (whatever its cardinality) carry
// the Delta type t.
func matchValue(fd protoreflect.FieldDescriptor, t *Type, path string) (*vplan, error) {
	vp := &vplan{typ: t, path: path}
	k := fd.Kind()
	ok := false
	switch t.Kind {
	case Boolean:
		ok = k == protoreflect.BoolKind
	case Byte, Short, Int, Date:
		ok = k == protoreflect.Int32Kind || k == protoreflect.Sint32Kind || k == protoreflect.Sfixed32Kind
	case Long, Timestamp, TimestampNTZ:
		ok = k == protoreflect.Int64Kind || k == protoreflect.Sint64Kind || k == protoreflect.Sfixed64Kind
	case Float:
		ok = k == protoreflect.FloatKind
	case Double:
		ok = k == protoreflect.DoubleKind
	case String, Decimal, Variant:
		ok = k == protoreflect.StringKind
	case Binary:
		ok = k == protoreflect.BytesKind
	case Struct:
		if k != protoreflect.MessageKind || fd.Message().IsMapEntry() {
			return nil, mismatch(path, t, "a nested message", fd)
		}
		fields, err := matchColumns(fd.Message(), t.Fields, path+".")
		if err != nil {
			return nil, err
		}
		vp.fields = fields
		return vp, nil
	case Array, Map:
		// Only an array element or a map value gets here: protobuf has no
		// repeated-of-repeated, so a one-field wrapper message carries it.
		want := "a message with one repeated field"
		if t.Kind == Map {
			want = "a message with one map field"
		}
		if k != protoreflect.MessageKind || fd.Message().IsMapEntry() || fd.Message().Fields().Len() != 1 {
			return nil, mismatch(path, t, want, fd)
		}
		inner := fd.Message().Fields().Get(0)
		fp, err := matchField(inner, &Column{Name: string(inner.Name()), Type: *t}, path)
		if err != nil {
			return nil, err
		}
		w := *fp.vp
		w.typ, w.wrap = t, inner
		return &w, nil
	}
	if !ok {
		return nil, mismatch(path, t, protoWant(t), fd)
	}
	return vp, nil
}

// protoWant is the protobuf type a Delta type travels as.
func protoWant(t *Type) string {
	switch t.Kind {
	case Boolean:
		return "bool"
	case Byte, Short, Int, Date:
		return "int32"
	case Long, Timestamp, TimestampNTZ:
		return "int64"
	case Float:
		return "float"
	case Double:
		return "double"
	case Binary:
		return "bytes"
	case Struct:
		return "nested message"
	}
	return "string"
}

func mismatch(path string, t *Type, want string, fd protoreflect.FieldDescriptor) error {
	return &SchemaError{Column: path, Reason: fmt.Sprintf("column type %s: expected %s, got %s", t.TypeText(), want, describeField(fd))}
}

// describeField renders a field's label and type: "optional int32",
// "repeated string", "map<string, int32>", "required message Payload".
func describeField(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "map<" + describeKind(fd.MapKey()) + ", " + describeKind(fd.MapValue()) + ">"
	}
	label := "optional"
	switch fd.Cardinality() {
	case protoreflect.Repeated:
		label = "repeated"
	case protoreflect.Required:
		label = "required"
	}
	return label + " " + describeKind(fd)
}

func describeKind(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return fd.Kind().String() + " " + string(fd.Message().Name())
	case protoreflect.EnumKind:
		return "enum " + string(fd.Enum().Name())
	}
	return fd.Kind().String()
}

// columnsFromMessage maps a descriptor plainly to table columns, for tables
// created on first use: int32 -> INT, int64 -> BIGINT, string -> STRING,
// bytes -> BINARY, float -> FLOAT, double -> DOUBLE, bool -> BOOLEAN,
// repeated -> ARRAY, map -> MAP, message -> STRUCT; optional -> nullable,
// required -> NOT NULL; ARRAY and MAP columns are NOT NULL (protobuf cannot
// tell an empty list from a missing one).
func columnsFromMessage(md protoreflect.MessageDescriptor, prefix string, stack []protoreflect.FullName) ([]Column, error) {
	if len(stack) > maxTypeDepth {
		return nil, &SchemaError{Column: strings.TrimSuffix(prefix, "."), Reason: fmt.Sprintf("messages nested more than %d levels deep", maxTypeDepth)}
	}
	for _, name := range stack {
		if name == md.FullName() {
			return nil, &SchemaError{Column: strings.TrimSuffix(prefix, "."), Reason: fmt.Sprintf("recursive message %s has no Delta type", md.FullName())}
		}
	}
	stack = append(stack, md.FullName())
	fields := md.Fields()
	if fields.Len() == 0 {
		return nil, &SchemaError{Column: strings.TrimSuffix(prefix, "."), Reason: fmt.Sprintf("message %s has no fields", md.Name())}
	}
	cols := make([]Column, fields.Len())
	for i := range cols {
		fd := fields.Get(i)
		path := prefix + string(fd.Name())
		c := Column{Name: string(fd.Name())}
		switch {
		case fd.IsMap():
			key, err := typeFromField(fd.MapKey(), path+".key", stack)
			if err != nil {
				return nil, err
			}
			val, err := typeFromField(fd.MapValue(), path+".value", stack)
			if err != nil {
				return nil, err
			}
			c.Type = Type{Kind: Map, Key: &key, Elem: &val}
		case fd.IsList():
			elem, err := typeFromField(fd, path+".element", stack)
			if err != nil {
				return nil, err
			}
			c.Type = Type{Kind: Array, Elem: &elem}
		default:
			t, err := typeFromField(fd, path, stack)
			if err != nil {
				return nil, err
			}
			c.Type, c.Nullable = t, fd.Cardinality() == protoreflect.Optional
		}
		cols[i] = c
	}
	return cols, nil
}

func typeFromField(fd protoreflect.FieldDescriptor, path string, stack []protoreflect.FullName) (Type, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return Type{Kind: Boolean}, nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return Type{Kind: Int}, nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return Type{Kind: Long}, nil
	case protoreflect.FloatKind:
		return Type{Kind: Float}, nil
	case protoreflect.DoubleKind:
		return Type{Kind: Double}, nil
	case protoreflect.StringKind:
		return Type{Kind: String}, nil
	case protoreflect.BytesKind:
		return Type{Kind: Binary}, nil
	case protoreflect.MessageKind:
		fields, err := columnsFromMessage(fd.Message(), path+".", stack)
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Struct, Fields: fields}, nil
	}
	return Type{}, &SchemaError{Column: path, Reason: fmt.Sprintf("protobuf type %s has no Delta column type", describeKind(fd))}
}
