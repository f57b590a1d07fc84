package arrowproto

import (
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Names of the fields the generator invents.
const (
	elementField = "element" // the one field of a list wrapper message
	keyField     = "key"     // map entry key (field 1)
	valueField   = "value"   // map entry value (field 2)
)

// unwrapType strips the layers that do not change the protobuf mapping:
// extension types (their storage type), dictionaries (their value type) and
// run-end encoding (its values type).
func unwrapType(dt arrow.DataType) arrow.DataType {
	for {
		switch t := dt.(type) {
		case arrow.ExtensionType:
			dt = t.StorageType()
		case *arrow.DictionaryType:
			dt = t.ValueType
		case *arrow.RunEndEncodedType:
			dt = t.Encoded()
		default:
			return dt
		}
	}
}

// isListLike reports whether dt (unwrapped) becomes a repeated field.
func isListLike(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST, arrow.LIST_VIEW, arrow.LARGE_LIST_VIEW, arrow.MAP:
		return true
	}
	return false
}

// listElem returns the element type of a list-like type other than map.
func listElem(dt arrow.DataType) arrow.DataType {
	return dt.(arrow.ListLikeType).Elem()
}

// scalarProtoType is the protobuf type of an unwrapped scalar Arrow type, per
// the mapping table. ok is false for nested and unsupported types.
func scalarProtoType(dt arrow.DataType) (t descriptorpb.FieldDescriptorProto_Type, ok bool) {
	switch dt.ID() {
	case arrow.BOOL:
		return descriptorpb.FieldDescriptorProto_TYPE_BOOL, true
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.UINT8, arrow.UINT16, arrow.DATE32, arrow.DATE64:
		return descriptorpb.FieldDescriptorProto_TYPE_INT32, true
	case arrow.INT64, arrow.UINT32, arrow.UINT64, arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64, arrow.DURATION:
		return descriptorpb.FieldDescriptorProto_TYPE_INT64, true
	case arrow.FLOAT16, arrow.FLOAT32:
		return descriptorpb.FieldDescriptorProto_TYPE_FLOAT, true
	case arrow.FLOAT64:
		return descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, true
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW,
		arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256, arrow.NULL:
		return descriptorpb.FieldDescriptorProto_TYPE_STRING, true
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY:
		return descriptorpb.FieldDescriptorProto_TYPE_BYTES, true
	}
	return 0, false
}

// validName reports whether name is a protobuf identifier made of ASCII
// letters, digits and underscore.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func childPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// generator builds the descriptor of an Arrow schema.
type generator struct {
	top  *descriptorpb.DescriptorProto
	used map[string]bool // every field and type name, for unique type names
}

func generate(s *arrow.Schema, messageName string) (*descriptorpb.DescriptorProto, error) {
	if !validName(messageName) {
		return nil, schemaErr(ErrInvalidName, "", "message name %q is not a protobuf identifier", messageName)
	}
	fields := s.Fields()
	if len(fields) > MaxColumns {
		return nil, schemaErr(ErrSchemaLimit, "", "%d columns, more than the limit of %d", len(fields), MaxColumns)
	}
	g := &generator{
		top:  &descriptorpb.DescriptorProto{Name: proto.String(messageName)},
		used: map[string]bool{messageName: true, elementField: true, keyField: true, valueField: true},
	}
	// Reserve every name that appears anywhere so that generated type names
	// never shadow a field during relative name resolution.
	if err := g.reserve(fields, ""); err != nil {
		return nil, err
	}
	for i, f := range fields {
		fd, err := g.field(f.Name, int32(i+1), f.Type, f.Name, g.top, 0)
		if err != nil {
			return nil, err
		}
		g.top.Field = append(g.top.Field, fd)
	}
	if err := checkEntryNames(g.top, ""); err != nil {
		return nil, err
	}
	return g.top, nil
}

// reserve validates the names of fields (and of nested struct fields) and
// records them as used.
func (g *generator) reserve(fields []arrow.Field, parent string) error {
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		path := childPath(parent, f.Name)
		if !validName(f.Name) {
			return schemaErr(ErrInvalidName, path, "name %q must be ASCII letters, digits and underscore, not starting with a digit", f.Name)
		}
		if seen[f.Name] {
			return schemaErr(ErrInvalidName, path, "duplicate field name %q", f.Name)
		}
		seen[f.Name] = true
		g.used[f.Name] = true
		if err := g.reserveType(f.Type, path); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) reserveType(dt arrow.DataType, path string) error {
	dt = unwrapType(dt)
	switch dt.ID() {
	case arrow.STRUCT:
		return g.reserve(dt.(*arrow.StructType).Fields(), path)
	case arrow.MAP:
		m := dt.(*arrow.MapType)
		if err := g.reserveType(m.KeyType(), path+"."+keyField); err != nil {
			return err
		}
		return g.reserveType(m.ItemType(), path+"."+valueField)
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST, arrow.LIST_VIEW, arrow.LARGE_LIST_VIEW:
		return g.reserveType(listElem(dt), path+"[]")
	}
	return nil
}

// typeName returns a fresh nested type name for the value at path.
func (g *generator) typeName(path, suffix string) string {
	base := strings.NewReplacer(".", "_", "[]", "_"+elementField).Replace(path) + "_" + suffix
	name := base
	for i := 2; g.used[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	g.used[name] = true
	return name
}

// field builds the field name = num of type dt declared in message scope.
// depth is the message nesting depth of scope (0 for the top-level message).
func (g *generator) field(name string, num int32, dt arrow.DataType, path string, scope *descriptorpb.DescriptorProto, depth int) (*descriptorpb.FieldDescriptorProto, error) {
	fd := &descriptorpb.FieldDescriptorProto{
		Name:   proto.String(name),
		Number: proto.Int32(num),
		Label:  descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
	}
	dt = unwrapType(dt)
	switch {
	case dt.ID() == arrow.MAP:
		fd.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
		entry, err := g.mapEntry(name, dt.(*arrow.MapType), path, scope, depth+1)
		if err != nil {
			return nil, err
		}
		fd.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
		fd.TypeName = entry.Name
	case isListLike(dt):
		fd.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
		if err := g.value(fd, listElem(dt), path+"[]", depth); err != nil {
			return nil, err
		}
	default:
		if err := g.value(fd, dt, path, depth); err != nil {
			return nil, err
		}
	}
	return fd, nil
}

// value sets the type of fd to hold one value of dt: a scalar, a struct
// message, or (for a list or map, which cannot be the element of a repeated
// field or a map value) a wrapper message with one repeated field "element".
func (g *generator) value(fd *descriptorpb.FieldDescriptorProto, dt arrow.DataType, path string, depth int) error {
	dt = unwrapType(dt)
	if t, ok := scalarProtoType(dt); ok {
		fd.Type = t.Enum()
		return nil
	}
	switch {
	case dt.ID() == arrow.STRUCT:
		if depth+1 > MaxNestingDepth {
			return schemaErr(ErrSchemaLimit, path, "nested deeper than %d messages", MaxNestingDepth)
		}
		st := dt.(*arrow.StructType)
		msg := &descriptorpb.DescriptorProto{Name: proto.String(g.typeName(path, "Struct"))}
		g.top.NestedType = append(g.top.NestedType, msg)
		for i, f := range st.Fields() {
			cf, err := g.field(f.Name, int32(i+1), f.Type, childPath(path, f.Name), msg, depth+1)
			if err != nil {
				return err
			}
			msg.Field = append(msg.Field, cf)
		}
		if err := checkEntryNames(msg, path); err != nil {
			return err
		}
		fd.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
		fd.TypeName = msg.Name
		return nil
	case isListLike(dt):
		if depth+1 > MaxNestingDepth {
			return schemaErr(ErrSchemaLimit, path, "nested deeper than %d messages", MaxNestingDepth)
		}
		msg := &descriptorpb.DescriptorProto{Name: proto.String(g.typeName(path, "List"))}
		g.top.NestedType = append(g.top.NestedType, msg)
		cf, err := g.field(elementField, 1, dt, path, msg, depth+1)
		if err != nil {
			return err
		}
		msg.Field = append(msg.Field, cf)
		fd.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
		fd.TypeName = msg.Name
		return nil
	}
	return schemaErr(ErrUnsupportedType, path, "type %s has no protobuf mapping", dt)
}

// mapEntry declares the map entry message of field name inside scope (where
// protobuf requires it), named as protobuf names map entries.
func (g *generator) mapEntry(name string, m *arrow.MapType, path string, scope *descriptorpb.DescriptorProto, depth int) (*descriptorpb.DescriptorProto, error) {
	if depth > MaxNestingDepth {
		return nil, schemaErr(ErrSchemaLimit, path, "nested deeper than %d messages", MaxNestingDepth)
	}
	keyPath, valuePath := path+"."+keyField, path+"."+valueField
	kt := unwrapType(m.KeyType())
	kpt, ok := scalarProtoType(kt)
	if !ok || !validMapKey(kpt) || kt.ID() == arrow.NULL {
		return nil, schemaErr(ErrUnsupportedType, keyPath, "map key type %s cannot be a protobuf map key (integers, bool, strings and decimals can)", m.KeyType())
	}
	entry := &descriptorpb.DescriptorProto{
		Name:    proto.String(mapEntryName(name)),
		Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		Field: []*descriptorpb.FieldDescriptorProto{{
			Name:   proto.String(keyField),
			Number: proto.Int32(1),
			Label:  descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			Type:   kpt.Enum(),
		}},
	}
	vf := &descriptorpb.FieldDescriptorProto{
		Name:   proto.String(valueField),
		Number: proto.Int32(2),
		Label:  descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
	}
	if err := g.value(vf, m.ItemType(), valuePath, depth); err != nil {
		return nil, err
	}
	entry.Field = append(entry.Field, vf)
	scope.NestedType = append(scope.NestedType, entry)
	return entry, nil
}

func validMapKey(t descriptorpb.FieldDescriptorProto_Type) bool {
	switch t {
	case descriptorpb.FieldDescriptorProto_TYPE_FLOAT, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE,
		descriptorpb.FieldDescriptorProto_TYPE_BYTES, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE,
		descriptorpb.FieldDescriptorProto_TYPE_GROUP, descriptorpb.FieldDescriptorProto_TYPE_ENUM:
		return false
	}
	return true
}

// mapEntryName is protobuf's name for the entry message of map field name:
// underscores removed, the following letter and the first letter upper-cased,
// "Entry" appended.
func mapEntryName(name string) string {
	var b strings.Builder
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			upper = true
		case upper:
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
			upper = false
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString("Entry")
	return b.String()
}

// checkEntryNames rejects a message whose map entry names collide with each
// other or with a field name (protobuf derives entry names from field names,
// so maps "a_b" and "aB" cannot live in one message, nor map "tags" next to a
// field "TagsEntry").
func checkEntryNames(msg *descriptorpb.DescriptorProto, path string) error {
	names := make(map[string]bool, len(msg.Field))
	for _, f := range msg.Field {
		names[f.GetName()] = true
	}
	for _, f := range msg.Field {
		if f.GetLabel() != descriptorpb.FieldDescriptorProto_LABEL_REPEATED || f.GetTypeName() != mapEntryName(f.GetName()) {
			continue
		}
		if names[f.GetTypeName()] {
			return schemaErr(ErrInvalidName, childPath(path, f.GetName()), "the map's entry message %s collides with another name in the same message", f.GetTypeName())
		}
		names[f.GetTypeName()] = true
	}
	return nil
}
