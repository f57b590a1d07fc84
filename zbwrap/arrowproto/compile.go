package arrowproto

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

type (
	pbField = descriptorpb.FieldDescriptorProto
	pbType  = descriptorpb.FieldDescriptorProto_Type
)

const (
	tMessage = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	lRepeat  = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	lRequire = descriptorpb.FieldDescriptorProto_LABEL_REQUIRED
)

// checkProtodesc builds d with the protobuf runtime, as a server would: a
// last guard that a generated descriptor is valid protobuf.
func checkProtodesc(d *descriptorpb.DescriptorProto) error {
	if _, err := protodesc.NewFile(wrapFile(d), nil); err != nil {
		return schemaErr(ErrInvalidName, "", "descriptor is not valid protobuf: %v", err)
	}
	return nil
}

// wrapFile puts d alone in a package-less proto2 file, as the service does.
func wrapFile(d *descriptorpb.DescriptorProto) *descriptorpb.FileDescriptorProto {
	return &descriptorpb.FileDescriptorProto{
		Name:        proto.String(d.GetName() + ".proto"),
		Syntax:      proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{d},
	}
}

// msgInfo is a message of the descriptor with its fields by name.
type msgInfo struct {
	d      *descriptorpb.DescriptorProto
	full   string
	byName map[string]*pbField
}

type compiler struct {
	specs []colSpec
	slots []int // leaf spec of each size table
	msgs  map[string]*msgInfo
}

func compile(s *arrow.Schema, d *descriptorpb.DescriptorProto, cfg config) (*Schema, error) {
	c := &compiler{msgs: map[string]*msgInfo{}}
	if err := c.index(d, "", 0); err != nil {
		return nil, err
	}
	top := c.msgs[d.GetName()]
	fields := s.Fields()
	if len(fields) > MaxColumns {
		return nil, schemaErr(ErrSchemaLimit, "", "%d columns, more than the limit of %d", len(fields), MaxColumns)
	}
	sc := &Schema{arrow: s, desc: d, maxRecord: cfg.maxRecordSize}
	seen := map[string]bool{}
	for _, af := range fields {
		if seen[af.Name] {
			return nil, schemaErr(ErrInvalidName, af.Name, "duplicate column name")
		}
		seen[af.Name] = true
		spec, err := c.spec(af.Type, af.Name, 0)
		if err != nil {
			return nil, err
		}
		pf := top.byName[af.Name]
		if pf == nil {
			return nil, schemaErr(ErrIncompatibleDescriptor, af.Name, "message %s has no field named %q", top.full, af.Name)
		}
		f, err := c.field(spec, pf, top, af.Name, 0)
		if err != nil {
			return nil, err
		}
		f.top = len(sc.top)
		if f.fast = c.fastKind(f); f.fast != fastNone {
			assignNV(f, &sc.nnv)
		}
		sc.top = append(sc.top, f)
	}
	if err := checkRequired(top, seen, ""); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(d)
	if err != nil {
		return nil, schemaErr(ErrIncompatibleDescriptor, "", "cannot serialize descriptor: %v", err)
	}
	sc.descBytes = b
	sc.specs = c.specs
	sc.nslots = len(c.slots)
	sc.slotLeaf = c.slots
	sc.key = schemaKey(s)
	return sc, nil
}

// index validates the service limits on message d (declared at nesting depth
// depth inside scope) and its nested types, and records them by full name.
func (c *compiler) index(d *descriptorpb.DescriptorProto, scope string, depth int) error {
	full := d.GetName()
	if scope != "" {
		full = scope + "." + full
	}
	if d.GetName() == "" {
		return schemaErr(ErrIncompatibleDescriptor, "", "message in %q has no name", scope)
	}
	if depth > MaxNestingDepth {
		return schemaErr(ErrIncompatibleDescriptor, "", "message %s is nested %d deep, more than the limit of %d", full, depth, MaxNestingDepth)
	}
	if len(d.GetField()) > MaxColumns {
		return schemaErr(ErrIncompatibleDescriptor, "", "message %s has %d fields, more than the limit of %d", full, len(d.GetField()), MaxColumns)
	}
	if c.msgs[full] != nil {
		return schemaErr(ErrIncompatibleDescriptor, "", "message %s is declared twice", full)
	}
	m := &msgInfo{d: d, full: full, byName: make(map[string]*pbField, len(d.GetField()))}
	nums := make(map[int32]bool, len(d.GetField()))
	for _, f := range d.GetField() {
		n := f.GetNumber()
		switch {
		case f.GetName() == "":
			return schemaErr(ErrIncompatibleDescriptor, "", "message %s has a field with no name", full)
		case n < 1 || n > MaxFieldNumber:
			return schemaErr(ErrIncompatibleDescriptor, "", "field %s.%s has number %d, outside 1..%d", full, f.GetName(), n, MaxFieldNumber)
		case n >= 19000 && n <= 19999:
			return schemaErr(ErrIncompatibleDescriptor, "", "field %s.%s has number %d, reserved by protobuf (19000-19999)", full, f.GetName(), n)
		case nums[n]:
			return schemaErr(ErrIncompatibleDescriptor, "", "field number %d is used twice in message %s", n, full)
		case m.byName[f.GetName()] != nil:
			return schemaErr(ErrIncompatibleDescriptor, "", "field name %q is used twice in message %s", f.GetName(), full)
		}
		nums[n] = true
		m.byName[f.GetName()] = f
	}
	c.msgs[full] = m
	for _, n := range d.GetNestedType() {
		if err := c.index(n, full, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// resolve finds the message a field of scope refers to. Fully qualified names
// may carry a package prefix the bare descriptor lost; relative names follow
// protobuf's scoping rules (innermost scope first).
func (c *compiler) resolve(pf *pbField, scope *msgInfo, path string) (*msgInfo, error) {
	tn := pf.GetTypeName()
	if strings.HasPrefix(tn, ".") {
		name := tn[1:]
		for {
			if m := c.msgs[name]; m != nil {
				return m, nil
			}
			i := strings.IndexByte(name, '.')
			if i < 0 {
				break
			}
			name = name[i+1:]
		}
	} else if tn != "" {
		for s := scope.full; ; {
			if m := c.msgs[s+"."+tn]; m != nil {
				return m, nil
			}
			i := strings.LastIndexByte(s, '.')
			if i < 0 {
				break
			}
			s = s[:i]
		}
		if m := c.msgs[tn]; m != nil {
			return m, nil
		}
	}
	return nil, schemaErr(ErrIncompatibleDescriptor, path, "field %s.%s refers to message %q, which the descriptor does not declare", scope.full, pf.GetName(), tn)
}

// checkRequired rejects required fields of m that no Arrow column fills.
func checkRequired(m *msgInfo, present map[string]bool, path string) error {
	for _, f := range m.d.GetField() {
		if f.GetLabel() == lRequire && !present[f.GetName()] {
			return schemaErr(ErrIncompatibleDescriptor, childPath(path, f.GetName()), "required field %s.%s has no Arrow column", m.full, f.GetName())
		}
	}
	return nil
}

func (c *compiler) newSlot(leaf int) int {
	c.slots = append(c.slots, leaf)
	return len(c.slots) - 1
}

// leaf follows dictionary and run-end layers to the spec holding the values.
func (c *compiler) leaf(spec int) int {
	for c.specs[spec].lay != layPlain {
		spec = c.specs[spec].children[0]
	}
	return spec
}

// spec records the array layers of type dt and returns the index of the top one.
func (c *compiler) spec(dt arrow.DataType, path string, depth int) (int, error) {
	if depth > 4*MaxNestingDepth+8 {
		return 0, schemaErr(ErrSchemaLimit, path, "type nested too deeply")
	}
	for {
		ext, ok := dt.(arrow.ExtensionType)
		if !ok {
			break
		}
		dt = ext.StorageType()
	}
	id := len(c.specs)
	c.specs = append(c.specs, colSpec{}) // placeholder, filled below
	sp := colSpec{typeID: int(dt.ID()), path: path}
	var children []arrow.DataType
	var childPaths []string
	switch t := dt.(type) {
	case *arrow.DictionaryType:
		sp.lay = layDict
		k, ok := intKind(t.IndexType)
		if !ok {
			return 0, schemaErr(ErrUnsupportedType, path, "dictionary index type %s", t.IndexType)
		}
		sp.kind = k
		children, childPaths = []arrow.DataType{t.ValueType}, []string{path}
	case *arrow.RunEndEncodedType:
		sp.lay = layREE
		k, ok := intKind(t.RunEnds())
		if !ok || (k != kInt16 && k != kInt32 && k != kInt64) {
			return 0, schemaErr(ErrUnsupportedType, path, "run-end type %s", t.RunEnds())
		}
		sp.kind = k
		children, childPaths = []arrow.DataType{t.Encoded()}, []string{path}
	case *arrow.StructType:
		sp.kind = kStruct
		for _, f := range t.Fields() {
			children = append(children, f.Type)
			childPaths = append(childPaths, childPath(path, f.Name))
			sp.names = append(sp.names, f.Name)
		}
	case *arrow.MapType:
		sp.kind = kMap
		children, childPaths = []arrow.DataType{t.Elem()}, []string{path}
	case *arrow.ListType:
		sp.kind = kList
		children, childPaths = []arrow.DataType{t.Elem()}, []string{path + "[]"}
	case *arrow.LargeListType:
		sp.kind = kLargeList
		children, childPaths = []arrow.DataType{t.Elem()}, []string{path + "[]"}
	case *arrow.ListViewType:
		sp.kind = kListView
		children, childPaths = []arrow.DataType{t.Elem()}, []string{path + "[]"}
	case *arrow.LargeListViewType:
		sp.kind = kLargeListView
		children, childPaths = []arrow.DataType{t.Elem()}, []string{path + "[]"}
	case *arrow.FixedSizeListType:
		sp.kind = kFixedList
		sp.width = int(t.Len())
		children, childPaths = []arrow.DataType{t.Elem()}, []string{path + "[]"}
	default:
		if err := scalarSpec(&sp, dt); err != nil {
			return 0, err
		}
	}
	// A map's child is its entries struct, whose children are key and value.
	if sp.kind == kMap {
		st := children[0].(*arrow.StructType)
		eid := len(c.specs)
		c.specs = append(c.specs, colSpec{typeID: int(arrow.STRUCT), kind: kStruct, path: path, names: []string{keyField, valueField}})
		k, err := c.spec(st.Field(0).Type, path+"."+keyField, depth+1)
		if err != nil {
			return 0, err
		}
		v, err := c.spec(st.Field(1).Type, path+"."+valueField, depth+1)
		if err != nil {
			return 0, err
		}
		c.specs[eid].children = []int{k, v}
		sp.children = []int{eid}
		c.specs[id] = sp
		return id, nil
	}
	for i, ct := range children {
		cid, err := c.spec(ct, childPaths[i], depth+1)
		if err != nil {
			return 0, err
		}
		sp.children = append(sp.children, cid)
	}
	c.specs[id] = sp
	return id, nil
}

// intKind maps an Arrow integer type to its kind.
func intKind(dt arrow.DataType) (vkind, bool) {
	switch dt.ID() {
	case arrow.INT8:
		return kInt8, true
	case arrow.INT16:
		return kInt16, true
	case arrow.INT32:
		return kInt32, true
	case arrow.INT64:
		return kInt64, true
	case arrow.UINT8:
		return kUint8, true
	case arrow.UINT16:
		return kUint16, true
	case arrow.UINT32:
		return kUint32, true
	case arrow.UINT64:
		return kUint64, true
	}
	return 0, false
}

var unitMicros = [...]int64{arrow.Second: 1_000_000, arrow.Millisecond: 1_000, arrow.Microsecond: 1, arrow.Nanosecond: 0}

// timeKind sets sp for an int64 count of unit, converted to microseconds.
func timeKind(sp *colSpec, unit arrow.TimeUnit) {
	switch unit {
	case arrow.Nanosecond:
		sp.kind, sp.div = kFloor64, 1000
	case arrow.Microsecond:
		sp.kind = kInt64
	default:
		sp.kind, sp.mult = kScaled64, unitMicros[unit]
	}
	sp.width = 8
}

func scalarSpec(sp *colSpec, dt arrow.DataType) error {
	if k, ok := intKind(dt); ok {
		sp.kind, sp.width = k, dt.(arrow.FixedWidthDataType).BitWidth()/8
		return nil
	}
	switch t := dt.(type) {
	case *arrow.NullType:
		sp.kind = kNull
	case *arrow.BooleanType:
		sp.kind = kBool
	case *arrow.Float16Type:
		sp.kind, sp.width = kFloat16, 2
	case *arrow.Float32Type:
		sp.kind, sp.width = kFloat32, 4
	case *arrow.Float64Type:
		sp.kind, sp.width = kFloat64, 8
	case *arrow.Date32Type:
		sp.kind, sp.width = kInt32, 4
	case *arrow.Date64Type:
		sp.kind, sp.width, sp.div = kDate64, 8, 86_400_000
	case *arrow.TimestampType:
		timeKind(sp, t.Unit)
	case *arrow.Time64Type:
		timeKind(sp, t.Unit)
	case *arrow.DurationType:
		timeKind(sp, t.Unit)
	case *arrow.Time32Type:
		sp.kind, sp.width, sp.mult = kScaled32, 4, unitMicros[t.Unit]
	case *arrow.Decimal32Type:
		sp.kind, sp.width, sp.scale = kDecimal32, 4, t.Scale
	case *arrow.Decimal64Type:
		sp.kind, sp.width, sp.scale = kDecimal64, 8, t.Scale
	case *arrow.Decimal128Type:
		sp.kind, sp.width, sp.scale = kDecimal128, 16, t.Scale
	case *arrow.Decimal256Type:
		sp.kind, sp.width, sp.scale = kDecimal256, 32, t.Scale
	case *arrow.StringType, *arrow.BinaryType:
		sp.kind = kBinary
	case *arrow.LargeStringType, *arrow.LargeBinaryType:
		sp.kind = kLargeBinary
	case *arrow.StringViewType, *arrow.BinaryViewType:
		sp.kind = kBinaryView
	case *arrow.FixedSizeBinaryType:
		sp.kind, sp.width = kFixedBinary, t.ByteWidth
	default:
		return schemaErr(ErrUnsupportedType, sp.path, "type %s has no protobuf mapping", dt)
	}
	if sp.kind >= kDecimal32 && sp.kind <= kDecimal256 && (sp.scale > maxDecimalScale || sp.scale < -maxDecimalScale) {
		return schemaErr(ErrUnsupportedType, sp.path, "decimal scale %d is outside -%d..%d", sp.scale, maxDecimalScale, maxDecimalScale)
	}
	return nil
}

// field compiles Arrow column spec against descriptor field pf of message
// scope. depth is the message nesting depth of scope.
func (c *compiler) field(spec int, pf *pbField, scope *msgInfo, path string, depth int) (*field, error) {
	ls := &c.specs[c.leaf(spec)]
	f := &field{path: path, num: pf.GetNumber(), col: spec, slot: -1}
	repeated := pf.GetLabel() == lRepeat
	// A list where the field is a single message (a map value, or a user's
	// choice) is a wrapper message holding the list.
	if !ls.kind.isList() || (!repeated && pf.GetType() == tMessage) {
		if repeated {
			return nil, schemaErr(ErrIncompatibleDescriptor, path, "field %s.%s is repeated but the column is not a list", scope.full, pf.GetName())
		}
		f.required = pf.GetLabel() == lRequire
		v, err := c.value(spec, pf, scope, path, depth)
		if err != nil {
			return nil, err
		}
		f.val = v
		f.setTag(v.wire.wireType())
		return f, nil
	}
	if !repeated {
		return nil, schemaErr(ErrIncompatibleDescriptor, path, "the column is a list or map but field %s.%s is not repeated", scope.full, pf.GetName())
	}
	f.rep = true
	f.ecol = ls.children[0]
	var err error
	if ls.kind == kMap {
		f.elemNull, f.epath = "null map entry", path
		f.val, err = c.entry(f.ecol, pf, scope, path, depth)
	} else {
		f.elemNull, f.epath = "null list element", path+"[]"
		f.val, err = c.value(f.ecol, pf, scope, path+"[]", depth)
	}
	if err != nil {
		return nil, err
	}
	if f.val.wire.packable() {
		f.packed = true
		f.packFast = c.specs[f.ecol].lay == layPlain && packFastKind(c.specs[f.ecol].kind, f.val)
		f.slot = c.newSlot(c.leaf(spec))
		f.setTag(2)
	} else {
		f.setTag(f.val.wire.wireType())
	}
	return f, nil
}

// message resolves the message type of pf, which must be a message field.
func (c *compiler) message(pf *pbField, scope *msgInfo, path, what string, depth int) (*msgInfo, error) {
	if pf.GetType() != tMessage {
		return nil, schemaErr(ErrIncompatibleDescriptor, path, "the column is %s but field %s.%s is %s, not a message", what, scope.full, pf.GetName(), typeName(pf.GetType()))
	}
	if depth+1 > MaxNestingDepth {
		return nil, schemaErr(ErrSchemaLimit, path, "nested deeper than %d messages", MaxNestingDepth)
	}
	return c.resolve(pf, scope, path)
}

// entry compiles the entry message of a map column.
func (c *compiler) entry(entries int, pf *pbField, scope *msgInfo, path string, depth int) (*value, error) {
	m, err := c.message(pf, scope, path, "a map", depth)
	if err != nil {
		return nil, err
	}
	es := &c.specs[entries]
	v := &value{wire: wMessage, slot: c.newSlot(entries)}
	for i, name := range []string{keyField, valueField} {
		cpf := m.byName[name]
		if cpf == nil {
			return nil, schemaErr(ErrIncompatibleDescriptor, path, "map entry message %s has no field named %q", m.full, name)
		}
		cf, err := c.field(es.children[i], cpf, m, path+"."+name, depth+1)
		if err != nil {
			return nil, err
		}
		cf.nullErr = "null map " + name
		v.fields = append(v.fields, cf)
	}
	if err := checkRequired(m, map[string]bool{keyField: true, valueField: true}, path); err != nil {
		return nil, err
	}
	// A protobuf map keeps one value per key: the server would silently drop
	// all but the last entry of a key. (A plain repeated message keeps them.)
	switch v.fields[0].val.wire {
	case wVarint, wZigzag, wFixed32, wFixed64, wBool, wBytes:
		v.mapKeys = m.d.GetOptions().GetMapEntry() && !v.fields[0].rep
	}
	return v, nil
}

// value compiles how one value of spec is encoded as the type of pf.
func (c *compiler) value(spec int, pf *pbField, scope *msgInfo, path string, depth int) (*value, error) {
	leaf := c.leaf(spec)
	ls := &c.specs[leaf]
	switch {
	case ls.kind == kStruct:
		m, err := c.message(pf, scope, path, "a struct", depth)
		if err != nil {
			return nil, err
		}
		v := &value{wire: wMessage, slot: c.newSlot(leaf)}
		present := make(map[string]bool, len(ls.names))
		for i, name := range ls.names {
			cp := childPath(path, name)
			if present[name] {
				return nil, schemaErr(ErrInvalidName, cp, "duplicate field name")
			}
			present[name] = true
			cpf := m.byName[name]
			if cpf == nil {
				return nil, schemaErr(ErrIncompatibleDescriptor, cp, "message %s has no field named %q", m.full, name)
			}
			cf, err := c.field(c.specs[leaf].children[i], cpf, m, cp, depth+1)
			if err != nil {
				return nil, err
			}
			v.fields = append(v.fields, cf)
		}
		if err := checkRequired(m, present, path); err != nil {
			return nil, err
		}
		return v, nil
	case ls.kind.isList():
		// A list where a repeated field cannot go (a list element, a map
		// value): a message with exactly one field, itself repeated.
		m, err := c.message(pf, scope, path, "a list inside a list or map", depth)
		if err != nil {
			return nil, err
		}
		if len(m.d.GetField()) != 1 {
			return nil, schemaErr(ErrIncompatibleDescriptor, path, "message %s must have exactly one (repeated) field to hold a nested list, it has %d", m.full, len(m.d.GetField()))
		}
		cf, err := c.field(leaf, m.d.GetField()[0], m, path, depth+1)
		if err != nil {
			return nil, err
		}
		return &value{wire: wMessage, slot: c.newSlot(leaf), fields: []*field{cf}}, nil
	case ls.kind == kNull:
		if pf.GetType() == descriptorpb.FieldDescriptorProto_TYPE_GROUP {
			return nil, schemaErr(ErrIncompatibleDescriptor, path, "group fields are not supported")
		}
		return &value{wire: wNever, slot: -1}, nil
	}
	v := &value{slot: -1, fastKind: ls.kind}
	if !scalarWire(ls.kind, pf.GetType(), v) {
		return nil, schemaErr(ErrIncompatibleDescriptor, path, "column type %s cannot be encoded as field %s.%s of type %s", arrow.Type(ls.typeID), scope.full, pf.GetName(), typeName(pf.GetType()))
	}
	// Protobuf strings must be UTF-8, which Arrow producers do not always
	// check (decimal text always is; a bytes field takes any bytes).
	ls.utf8 = pf.GetType() == descriptorpb.FieldDescriptorProto_TYPE_STRING &&
		(ls.kind == kBinary || ls.kind == kLargeBinary || ls.kind == kBinaryView)
	return v, nil
}

func typeName(t pbType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "TYPE_"))
}

// Integer value classes, for the compatibility of integer columns with
// integer fields.
const (
	cSigned32   = iota // fits int32
	cUnsigned16        // fits int32 and uint32
	cUnsigned32        // fits int64 and uint32
	cSigned64          // fits int64
	cUnsigned64        // fits uint64
	cDays64            // date64 as days: int32 with a row error beyond
	cNotInt
)

func intClass(k vkind) int {
	switch k {
	case kInt8, kInt16, kInt32:
		return cSigned32
	case kUint8, kUint16:
		return cUnsigned16
	case kUint32:
		return cUnsigned32
	case kInt64, kScaled32, kScaled64, kFloor64:
		return cSigned64
	case kUint64:
		return cUnsigned64
	case kDate64:
		return cDays64
	}
	return cNotInt
}

// scalarWire sets v's wire encoding for a leaf of kind k in a field of type t,
// or reports that the two are incompatible.
func scalarWire(k vkind, t pbType, v *value) bool {
	cls := intClass(k)
	switch t {
	case descriptorpb.FieldDescriptorProto_TYPE_BOOL:
		v.wire = wBool
		return k == kBool
	case descriptorpb.FieldDescriptorProto_TYPE_FLOAT:
		v.wire = wFloat
		return k == kFloat16 || k == kFloat32
	case descriptorpb.FieldDescriptorProto_TYPE_DOUBLE:
		v.wire = wDouble
		return k == kFloat16 || k == kFloat32 || k == kFloat64
	case descriptorpb.FieldDescriptorProto_TYPE_STRING:
		v.wire = wBytes
		return k == kBinary || k == kLargeBinary || k == kBinaryView || (k >= kDecimal32 && k <= kDecimal256)
	case descriptorpb.FieldDescriptorProto_TYPE_BYTES:
		v.wire = wBytes
		return k == kBinary || k == kLargeBinary || k == kBinaryView || k == kFixedBinary
	case descriptorpb.FieldDescriptorProto_TYPE_INT32, descriptorpb.FieldDescriptorProto_TYPE_SINT32, descriptorpb.FieldDescriptorProto_TYPE_SFIXED32:
		v.wire = map[pbType]wireKind{
			descriptorpb.FieldDescriptorProto_TYPE_INT32:    wVarint,
			descriptorpb.FieldDescriptorProto_TYPE_SINT32:   wZigzag,
			descriptorpb.FieldDescriptorProto_TYPE_SFIXED32: wFixed32,
		}[t]
		v.check32 = cls == cDays64
		return cls == cSigned32 || cls == cUnsigned16 || cls == cDays64
	case descriptorpb.FieldDescriptorProto_TYPE_INT64, descriptorpb.FieldDescriptorProto_TYPE_SINT64, descriptorpb.FieldDescriptorProto_TYPE_SFIXED64:
		v.wire = map[pbType]wireKind{
			descriptorpb.FieldDescriptorProto_TYPE_INT64:    wVarint,
			descriptorpb.FieldDescriptorProto_TYPE_SINT64:   wZigzag,
			descriptorpb.FieldDescriptorProto_TYPE_SFIXED64: wFixed64,
		}[t]
		v.ovf64 = cls == cUnsigned64
		return cls != cNotInt
	case descriptorpb.FieldDescriptorProto_TYPE_UINT32, descriptorpb.FieldDescriptorProto_TYPE_FIXED32:
		v.wire = wVarint
		if t == descriptorpb.FieldDescriptorProto_TYPE_FIXED32 {
			v.wire = wFixed32
		}
		return cls == cUnsigned16 || cls == cUnsigned32
	case descriptorpb.FieldDescriptorProto_TYPE_UINT64, descriptorpb.FieldDescriptorProto_TYPE_FIXED64:
		v.wire = wVarint
		if t == descriptorpb.FieldDescriptorProto_TYPE_FIXED64 {
			v.wire = wFixed64
		}
		return cls == cUnsigned16 || cls == cUnsigned32 || cls == cUnsigned64
	}
	return false
}

// schemaKey identifies the plan of an Arrow schema: column names and storage
// types (extension types are encoded as their storage).
func schemaKey(s *arrow.Schema) string {
	var b strings.Builder
	for _, f := range s.Fields() {
		b.WriteString(f.Name)
		b.WriteByte(':')
		typeKey(&b, f.Type)
		b.WriteByte(';')
	}
	return b.String()
}

func typeKey(b *strings.Builder, dt arrow.DataType) {
	switch t := dt.(type) {
	case arrow.ExtensionType:
		typeKey(b, t.StorageType())
	case *arrow.DictionaryType:
		fmt.Fprintf(b, "dict<%s,", t.IndexType)
		typeKey(b, t.ValueType)
		b.WriteByte('>')
	case *arrow.RunEndEncodedType:
		fmt.Fprintf(b, "ree<%s,", t.RunEnds())
		typeKey(b, t.Encoded())
		b.WriteByte('>')
	case *arrow.MapType:
		b.WriteString("map<")
		typeKey(b, t.KeyType())
		b.WriteByte(',')
		typeKey(b, t.ItemType())
		b.WriteByte('>')
	case *arrow.FixedSizeListType:
		fmt.Fprintf(b, "fixed_size_list<%d,", t.Len())
		typeKey(b, t.Elem())
		b.WriteByte('>')
	case arrow.ListLikeType:
		b.WriteString(t.ID().String())
		b.WriteByte('<')
		typeKey(b, t.Elem())
		b.WriteByte('>')
	case *arrow.StructType:
		b.WriteString("struct<")
		for _, f := range t.Fields() {
			b.WriteString(f.Name)
			b.WriteByte(':')
			typeKey(b, f.Type)
			b.WriteByte(',')
		}
		b.WriteByte('>')
	default:
		b.WriteString(dt.String())
	}
}
